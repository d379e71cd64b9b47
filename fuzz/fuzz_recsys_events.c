/* fuzz_recsys_events.c - libFuzzer harness for the recommender's events file (user, item, value,
 * time lines, tab or comma separated) and items file (id, title, tags). The readers take a path,
 * so each input goes through a private temporary file; the first byte picks the reader. An events
 * file that loads is also split, turned into both CSR matrices and trained on (popularity). */
#define _POSIX_C_SOURCE 200809L
#include "amuse/recsys.h"

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
    const char *path = fuzz_input_file("recsys", data, size);
    if (!path)
        return 0;
    struct amuse_rec_data *d = NULL, *tr = NULL, *te = NULL;
    struct amuse_rec_model *m = NULL;
    if (data[0] % 2 == 0) {
        if (amuse_rec_data_read(path, NULL, &d) == AMUSE_OK) {
            struct amuse_rec_csr *a = NULL, *b = NULL;
            if (amuse_rec_csr_build(d, 0, &a) == AMUSE_OK && amuse_rec_csr_build(d, 1, &b) == AMUSE_OK &&
                a->nnz != b->nnz)
                abort(); /* both orientations hold the same merged pairs */
            amuse_rec_csr_free(a);
            amuse_rec_csr_free(b);
            (void)amuse_rec_split(d, AMUSE_REC_SPLIT_TIME, 0.75, 1, &tr, &te);
            struct amuse_rec_options o;
            amuse_rec_options_default(&o, AMUSE_REC_POP);
            o.neighbours = 4;
            if (d->n < 2000 && amuse_rec_train(d, &o, &m) == AMUSE_OK) {
                struct amuse_rec_hit hits[3];
                int n;
                struct amuse_rec_query q = {.user = 0, .k = 3, .filter_seen = 1, .explain = 1};
                (void)amuse_rec_recommend(m, &q, hits, &n, NULL);
            }
        }
    } else {
        /* a fixed tiny model, then the items file */
        if (amuse_rec_data_new(&d) == AMUSE_OK && amuse_rec_data_add(d, "u", "1", 1, 0) == AMUSE_OK &&
            amuse_rec_data_add(d, "u", "2", 1, 0) == AMUSE_OK) {
            struct amuse_rec_options o;
            amuse_rec_options_default(&o, AMUSE_REC_POP);
            if (amuse_rec_train(d, &o, &m) == AMUSE_OK &&
                amuse_rec_attach_items(m, path, NULL, NULL) == AMUSE_OK) {
                struct amuse_rec_hit hits[2];
                int n;
                struct amuse_rec_query q = {.user = 0, .k = 2, .tag = "a"};
                (void)amuse_rec_recommend(m, &q, hits, &n, NULL);
            }
        }
    }
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
    amuse_rec_data_free(tr);
    amuse_rec_data_free(te);
    unlink(path);
    return 0;
}
