/* histogram.c - the fixed-bucket histograms the batchers fill and /metrics renders (Prometheus
 * "le" buckets): request latency and queue time in seconds, batch sizes in samples. A leaf: it
 * knows neither the batcher nor the metrics page, so both can use it.
 * Not here: locking (the owner of a histogram guards it), rendering (metrics.c). */
#include "serve/serve_internal.h"

const double am__time_bounds[AM__TIME_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const double am__batch_bounds[AM__BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

static void hist_add(int64_t *counts, const double *bounds, int n, double v)
{
    int i = 0;
    while (i < n && v > bounds[i])
        i++;
    counts[i]++;
}

void am__hist_time_add(struct am__hist_time *h, double v)
{
    hist_add(h->counts, am__time_bounds, AM__TIME_BUCKETS, v);
    h->sum += v;
}

void am__hist_batch_add(struct am__hist_batch *h, double v)
{
    hist_add(h->counts, am__batch_bounds, AM__BATCH_BUCKETS, v);
    h->sum += v;
}
