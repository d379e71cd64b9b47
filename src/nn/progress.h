/* nn/progress.h - Keras-style per-epoch progress bar (internal). */
#ifndef AMUSE_NN_PROGRESS_H
#define AMUSE_NN_PROGRESS_H

#include "amuse/model.h"

#include <stdint.h>
#include <stdio.h>

struct am__progress {
    FILE *out;
    int tty;
    int64_t steps;
    double start, last_draw;
};

void am__progress_begin(struct am__progress *p, FILE *out, int epoch, int epochs, int64_t steps);
/* accuracy NAN: not shown. Redraws at most every 100 ms, and only on a terminal. */
void am__progress_step(struct am__progress *p, int64_t step, double loss, double accuracy);
/* The final line: "375/375 [====...] - 12s 31ms/step - loss: ... - val_accuracy: ..." and
 * " - learning_rate: 1.0000e-03" unless learning_rate is NAN. */
void am__progress_end(struct am__progress *p, const struct amuse_epoch_log *e, int show_accuracy,
                      double learning_rate);

#endif
