/* fuzz_recsys_eval.c - libFuzzer harness for a recommender's eval.json (the held-out figures a
 * model directory carries; amuse_rec_eval_load, which the server runs when it loads a version).
 * The input (all of it) becomes eval.json in a private temporary directory. A file that loads is
 * saved again and reloaded: the figures must come back the same (the writer keeps 6 significant
 * digits, so compared with that tolerance). Findings: crashes, sanitizer reports, a round trip
 * that changes the figures. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/recsys.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int close_enough(double a, double b)
{
    return fabs(a - b) <= 1e-5 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[96], file[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/amuse-fuzz-receval-%ld", (long)getpid());
        snprintf(file, sizeof file, "%s/eval.json", dir);
        mkdir(dir, 0700);
    }
    FILE *f = fopen(file, "wb");
    if (!f)
        return 0;
    size_t wrote = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || wrote != size)
        return 0;
    struct amuse_rec_eval e, back;
    if (amuse_rec_eval_load(dir, &e) == AMUSE_OK) {
        if (amuse_rec_eval_save(&e, dir) != AMUSE_OK || amuse_rec_eval_load(dir, &back) != AMUSE_OK)
            abort(); /* what loaded must save and load again */
        const struct amuse_rec_metrics *a = &e.metrics, *b = &back.metrics;
        if (strcmp(e.split, back.split) != 0 || e.k != back.k || a->users != b->users ||
            !close_enough(a->precision, b->precision) || !close_enough(a->ndcg, b->ndcg) ||
            !close_enough(a->coverage, b->coverage) || !close_enough(a->gini, b->gini) ||
            !close_enough(a->arp, b->arp) || !close_enough(a->novelty, b->novelty))
            abort();
    }
    unlink(file);
    return 0;
}
