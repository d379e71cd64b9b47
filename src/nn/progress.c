/* progress.c - the Keras progress bar:
 *   Epoch 1/10
 *   375/375 [==============================] - 12s 31ms/step - loss: 0.3012 - accuracy: 0.8921
 * redrawn in place on a terminal; when the output is not a terminal only the epoch header and the
 * final line are printed, so logs stay readable. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h" /* am__now */
#include "nn/progress.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

static void bar(FILE *out, int64_t step, int64_t steps)
{
    int width = 30, done = steps ? (int)(width * step / steps) : width;
    fprintf(out, "%*lld/%lld [", (int)snprintf(NULL, 0, "%lld", (long long)steps),
            (long long)step, (long long)steps);
    for (int i = 0; i < width; i++)
        fputc(i < done ? '=' : (i == done && step < steps ? '>' : '.'), out);
    fputc(']', out);
}

void am__progress_begin(struct am__progress *p, FILE *out, int epoch, int epochs, int64_t steps)
{
    p->out = out;
    p->tty = isatty(fileno(out));
    p->steps = steps;
    p->start = p->last_draw = am__now();
    fprintf(out, "Epoch %d/%d\n", epoch, epochs);
    fflush(out);
}

void am__progress_step(struct am__progress *p, int64_t step, double loss, double accuracy)
{
    if (!p->tty)
        return;
    double t = am__now();
    if (t - p->last_draw < 0.1 && step < p->steps)
        return;
    p->last_draw = t;
    double eta = step ? (t - p->start) / step * (p->steps - step) : 0;
    fputc('\r', p->out);
    bar(p->out, step, p->steps);
    fprintf(p->out, " - ETA: %.0fs - loss: %.4f", eta, loss);
    if (!isnan(accuracy))
        fprintf(p->out, " - accuracy: %.4f", accuracy);
    fputs("\033[K", p->out);
    fflush(p->out);
}

void am__progress_end(struct am__progress *p, const struct amuse_epoch_log *e, int show_accuracy,
                      double learning_rate)
{
    double elapsed = e->train_seconds + e->val_seconds;
    if (p->tty)
        fputc('\r', p->out);
    bar(p->out, p->steps, p->steps);
    double per_step = p->steps ? elapsed / p->steps : 0;
    fprintf(p->out, " - %.0fs %.0f%s/step - loss: %.4f", elapsed,
            per_step >= 1 ? per_step : per_step * 1e3, per_step >= 1 ? "s" : "ms", e->loss);
    if (show_accuracy)
        fprintf(p->out, " - accuracy: %.4f", e->accuracy);
    if (!isnan(e->val_loss)) {
        fprintf(p->out, " - val_loss: %.4f", e->val_loss);
        if (show_accuracy)
            fprintf(p->out, " - val_accuracy: %.4f", e->val_accuracy);
    }
    if (!isnan(learning_rate))
        fprintf(p->out, " - learning_rate: %.4e", learning_rate);
    if (p->tty)
        fputs("\033[K", p->out);
    fputc('\n', p->out);
    fflush(p->out);
}
