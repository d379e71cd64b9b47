/* fuzz_glove.c - libFuzzer harness for the GloVe files amuse reads from outside: co-occurrence
 * record files (the reference tool's cooccur/shuffle output) through amuse_glove_records_read and
 * through the streaming shuffle, and the "word count" vocabulary file. The first byte picks the
 * reader and the vocabulary size the records are checked against; the rest is the file. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/glove.h"

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
    const char *path = fuzz_input_file("glove", data, size);
    if (!path)
        return 0;
    int64_t vocab_size = data[0] >> 2; /* 0 (unchecked) .. 63 */
    switch (data[0] & 3) {
    case 0: {
        struct amuse_glove_record *r = NULL;
        int64_t n = 0;
        if (amuse_glove_records_read(path, vocab_size, &r, &n) == AMUSE_OK && n > 0 &&
            vocab_size > 0) {
            /* Records that pass the checks train without reading out of bounds. */
            struct amuse_vocab *v = NULL;
            if (amuse_vocab_new(&v) == AMUSE_OK) {
                char w[8];
                for (int64_t i = 0; i < vocab_size; i++) {
                    snprintf(w, sizeof w, "w%d", (int)i);
                    amuse_vocab_add(v, w, 1, NULL);
                }
                struct amuse_glove_options o;
                struct amuse_word_vectors *wv = NULL;
                amuse_glove_options_default(&o);
                o.vector_size = 4;
                o.iter = 1;
                o.threads = 1;
                (void)amuse_glove_train(v, r, n < 64 ? n : 64, &o, &wv, NULL);
                amuse_word_vectors_free(wv);
                amuse_vocab_free(v);
            }
        }
        free(r);
        break;
    }
    case 1: {
        struct amuse_glove_options o;
        amuse_glove_options_default(&o);
        o.memory = 4096.0 * 16 / 1073741824.0; /* the smallest chunk: chunked for > 4096 records */
        FILE *in = fopen(path, "rb"), *out = fopen("/dev/null", "wb");
        if (in && out)
            (void)amuse_glove_shuffle(in, "input", out, &o, vocab_size);
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        break;
    }
    default: {
        struct amuse_vocab *v = NULL;
        (void)amuse_vocab_read(path, &v);
        amuse_vocab_free(v);
        break;
    }
    }
    unlink(path);
    return 0;
}
