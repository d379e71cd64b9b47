/* history.c - training curves as a standalone SVG: loss on the left, accuracy on the right, a
 * solid line for training and a dashed one for validation. No plotting library; just the few
 * SVG elements this needs. */
#include "amuse/model.h"

#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void panel(struct am__buf *s, double x0, const char *title, const double *train,
                  const double *val, int n)
{
    const double w = 360, h = 240, left = 50, top = 30;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (isfinite(train[i])) {
            lo = fmin(lo, train[i]);
            hi = fmax(hi, train[i]);
        }
        if (isfinite(val[i])) {
            lo = fmin(lo, val[i]);
            hi = fmax(hi, val[i]);
        }
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    if (hi - lo < 1e-9) {
        hi += 0.5;
        lo -= 0.5;
    }
    am__buf_printf(s, "<g transform=\"translate(%g,0)\">\n", x0);
    am__buf_printf(s, "<text x=\"%g\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
                   left + w / 2, title);
    am__buf_printf(
        s, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#888\"/>\n",
        left, top, w, h);
    for (int t = 0; t <= 4; t++) {
        double v = lo + (hi - lo) * t / 4, y = top + h - h * t / 4;
        am__buf_printf(s,
                       "<text x=\"%g\" y=\"%g\" font-size=\"10\" text-anchor=\"end\">%.3f</text>\n",
                       left - 4, y + 3, v);
    }
    am__buf_printf(s,
                   "<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">epoch</text>\n",
                   left + w / 2, top + h + 28);
    for (int i = 0; i < n; i++) {
        double x = left + (n > 1 ? w * i / (n - 1) : w / 2);
        am__buf_printf(
            s, "<text x=\"%g\" y=\"%g\" font-size=\"10\" text-anchor=\"middle\">%d</text>\n", x,
            top + h + 14, i + 1);
    }
    const double *series[2] = {train, val};
    const char *style[2] = {"stroke=\"#1f77b4\"", "stroke=\"#ff7f0e\" stroke-dasharray=\"6,4\""};
    for (int k = 0; k < 2; k++) {
        am__buf_printf(s, "<polyline fill=\"none\" stroke-width=\"2\" %s points=\"", style[k]);
        for (int i = 0; i < n; i++)
            if (isfinite(series[k][i]))
                am__buf_printf(s, "%.1f,%.1f ", left + (n > 1 ? w * i / (n - 1) : w / 2),
                               top + h - h * (series[k][i] - lo) / (hi - lo));
        am__buf_printf(s, "\"/>\n");
    }
    am__buf_printf(s, "</g>\n");
}

int amuse_history_write_svg(const char *path, const struct amuse_epoch_log *history, int n)
{
    struct am__buf s = {0}; /* core/buf.c: the one growable buffer */
    double *v = malloc(sizeof(double) * 4 * (size_t)(n > 0 ? n : 1));
    int rc;
    if (!v) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        v[i] = history[i].loss;
        v[n + i] = history[i].val_loss;
        v[2 * n + i] = history[i].accuracy;
        v[3 * n + i] = history[i].val_accuracy;
    }
    am__buf_printf(
        &s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"330\" "
        "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    panel(&s, 0, "loss", v, v + n, n);
    panel(&s, 430, "accuracy", v + 2 * n, v + 3 * n, n);
    am__buf_printf(
        &s, "<g font-size=\"11\"><line x1=\"60\" y1=\"318\" x2=\"90\" y2=\"318\" "
            "stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"95\" y=\"322\">training</text>"
            "<line x1=\"170\" y1=\"318\" x2=\"200\" y2=\"318\" stroke=\"#ff7f0e\" "
            "stroke-width=\"2\" stroke-dasharray=\"6,4\"/><text x=\"205\" y=\"322\">validation"
            "</text></g>\n</svg>\n");
    if (s.failed) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    rc = am__write_file_atomic(path, s.data, s.len);
out:
    am__buf_release(&s);
    free(v);
    return rc;
}
