/* fuzz_fasttext.c - libFuzzer harness for fastText .bin models (amuse_fasttext_load). The loader
 * reads from a path, so each input goes through a private temporary file; the first byte's low bit
 * asks for the output matrix (AMUSE_FASTTEXT_KEEP_OUTPUT). A loaded model must compose an unseen
 * word and answer a similarity query without reading out of bounds. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/word2vec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/amuse-fuzz-fasttext-%ld", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) {
        fclose(f);
        return 0;
    }
    fclose(f);
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
