/* fuzz_word2vec.c - libFuzzer harness for word-vector files (word2vec.c / gensim text and binary
 * formats). The loader reads from a path, so each input goes through a private temporary file;
 * the first byte picks the format argument (auto, text, binary). */
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
    const char *path = fuzz_input_file("w2v", data, size);
    if (!path)
        return 0;
    struct amuse_word_vectors *wv = NULL;
    int format = data[0] % 3 == 2 ? AMUSE_W2V_AUTO : data[0] % 3;
    if (amuse_word_vectors_load(path, format, &wv) == AMUSE_OK) {
        /* A loaded file answers a query without reading out of bounds. */
        float s;
        if (amuse_word_vectors_normalise(wv) == AMUSE_OK && wv->vocab &&
            amuse_vocab_size(wv->vocab) > 0) {
            const char *w = amuse_vocab_word(wv->vocab, 0);
            (void)amuse_w2v_similarity(wv, w, w, &s);
        }
    }
    amuse_word_vectors_free(wv);
    unlink(path);
    return 0;
}
