/* fuzz_fasttext.c - libFuzzer harness for fastText .bin models (amuse_fasttext_load). The loader
 * reads from a path, so each input goes through a private temporary file; the first byte's low bit
 * asks for the output matrix (AMUSE_FASTTEXT_KEEP_OUTPUT). A loaded model must compose an unseen
 * word and answer a similarity query without reading out of bounds. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/word2vec.h"

#include "fuzz_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *path = fuzz_input_file("fasttext", data, size);
    if (!path)
        return 0;
    struct amuse_word_vectors *wv = NULL;
    int flags = data[0] & 1 ? AMUSE_FASTTEXT_KEEP_OUTPUT : 0;
    if (amuse_fasttext_load(path, flags, &wv) == AMUSE_OK) {
        float *v = malloc((size_t)wv->dim * sizeof *v), s;
        const char *w = amuse_vocab_word(wv->vocab, 0);
        if (v) {
            (void)amuse_word_vectors_lookup(wv, "unseen-wörd", v, NULL);
            (void)amuse_word_vectors_lookup(wv, w, v, NULL);
        }
        (void)amuse_w2v_similarity(wv, w, "unseen-wörd", &s);
        free(v);
    }
    amuse_word_vectors_free(wv);
    unlink(path);
    return 0;
}
