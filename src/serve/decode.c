/* decode.c - image decoding for the server, off the HTTP threads: a pool of decode workers (each
 * an am__batcher that runs one job at a time), and the job that decodes a request's images into
 * a model's input. Before a job is made, each image's declared size (its header only) is checked
 * against the model's pixel budget and the request's total against max_request_pixels, so an
 * image bomb costs a header read and a 413. The decode itself runs with a decoder memory cap
 * (amuse_image_options.max_decoder_bytes, enforced in image.c), stops between images once its
 * waiter has given up (deadline or client gone), and writes into the job's own buffer, which
 * am__run_job moves into the model's job.
 * Not here: the HTTP side of waiting (handlers.c, am__run_job) and base64 (v2.c). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/image.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A model taking h x w pixels may be sent images of up to PIXELS_PER_INPUT_PIXEL times that
 * (photos are larger than what a model looks at), but never less than MIN_PIXEL_BUDGET, unless
 * the operator set max_image_pixels. */
#define PIXELS_PER_INPUT_PIXEL 256
#define MIN_PIXEL_BUDGET       ((uint64_t)4 << 20)

/* What a decode job carries (its task_arg, one block): the images back to back after the table. */
struct decode_work {
    struct amuse_image_options io;
    int64_t input_size;
    int n;
    char names[48];
    size_t offset[]; /* n + 1 offsets into the bytes that follow the table */
};

static unsigned char *work_bytes(struct decode_work *w)
{
    return (unsigned char *)(w->offset + w->n + 1);
}

uint64_t am__model_pixel_budget(const struct amuse_server *s, const struct am__model *m)
{
    if (s->opt.max_image_pixels) /* the operator's choice, for every model */
        return s->opt.max_image_pixels < AMUSE_IMAGE_MAX_PIXELS ? s->opt.max_image_pixels
                                                                : AMUSE_IMAGE_MAX_PIXELS;
    uint64_t need = (uint64_t)m->input_shape.dim[0] * (uint64_t)m->input_shape.dim[1];
    uint64_t budget = need * PIXELS_PER_INPUT_PIXEL;
    if (budget < MIN_PIXEL_BUDGET)
        budget = MIN_PIXEL_BUDGET;
    if (budget > AMUSE_IMAGE_MAX_PIXELS)
        budget = AMUSE_IMAGE_MAX_PIXELS;
    return budget;
}

static void image_name(const struct decode_work *w, int i, char *buf, size_t size)
{
    if (w->n == 1 && strchr(w->names, '[') == NULL)
        snprintf(buf, size, "%s", w->names);
    else
        snprintf(buf, size, "%s[%d]", w->names, i);
}

/* Worker side: decode every image into j->input; stop early when the waiter has left. */
static void decode_task(const struct am__model *unused, struct am__job *j)
{
    (void)unused;
    struct decode_work *w = j->task_arg;
    unsigned char *bytes = work_bytes(w);
    for (int i = 0; i < w->n; i++) {
        if (am__job_cancelled(j))
            return;
        char name[64];
        image_name(w, i, name, sizeof name);
        int rc = amuse_image_decode(bytes + w->offset[i], w->offset[i + 1] - w->offset[i], name,
                                    &w->io, j->input + (int64_t)i * w->input_size);
        if (rc) {
            j->status = rc;
            snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
            return;
        }
    }
}

static void decode_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    (void)ctx;
    (void)samples;
    for (int i = 0; i < n; i++)
        jobs[i]->task(NULL, jobs[i]);
}

int am__decode_job_new(const struct amuse_server *s, const struct am__model *m,
                       const unsigned char *const *images, const size_t *lens, int n,
                       const char *names, struct am__job **out)
{
    *out = NULL;
    uint64_t budget = am__model_pixel_budget(s, m), total = 0;
    size_t bytes = 0;
    struct decode_work probe_names = {.n = n};
    snprintf(probe_names.names, sizeof probe_names.names, "%s", names);
    for (int i = 0; i < n; i++) {
        char name[64];
        image_name(&probe_names, i, name, sizeof name);
        int w, h;
        int rc = amuse_image_info(images[i], lens[i], name, &w, &h);
        if (rc)
            return rc;
        uint64_t px = (uint64_t)w * (uint64_t)h;
        if (px > budget)
            return am__fail(AMUSE_ETOOBIG,
                            "%s: %d x %d pixels is over model '%s''s budget of %llu pixels an "
                            "image (it looks at %lld x %lld; send a smaller image)",
                            name, w, h, m->name, (unsigned long long)budget,
                            (long long)m->input_shape.dim[0], (long long)m->input_shape.dim[1]);
        total += px;
        if (total > (uint64_t)s->opt.max_request_pixels)
            return am__fail(AMUSE_ETOOBIG,
                            "%s: the request's images add up to more than %lld pixels "
                            "(max_request_pixels); send fewer or smaller images",
                            name, (long long)s->opt.max_request_pixels);
        bytes += lens[i];
    }
    struct am__job *j = am__job_new();
    struct decode_work *w = malloc(sizeof *w + (size_t)(n + 1) * sizeof(size_t) + bytes);
    float *input = malloc((size_t)n * (size_t)m->input_size * sizeof(float));
    if (!j || !w || !input) {
        am__job_unref(j);
        free(w);
        free(input);
        return am__fail(AMUSE_ENOMEM, "out of memory for %d images", n);
    }
    memset(w, 0, sizeof *w);
    w->io.height = (int)m->input_shape.dim[0];
    w->io.width = (int)m->input_shape.dim[1];
    w->io.channels = (int)m->input_shape.dim[2];
    w->io.invert = m->image_invert;
    w->io.max_pixels = budget;
    w->input_size = m->input_size;
    w->n = n;
    snprintf(w->names, sizeof w->names, "%s", names);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        w->offset[i] = at;
        memcpy(work_bytes(w) + at, images[i], lens[i]);
        at += lens[i];
    }
    w->offset[n] = at;
    j->samples = 1; /* one unit of work for the pool, whatever n is */
    j->input = input;
    j->task = decode_task;
    j->task_arg = w;
    *out = j;
    return AMUSE_OK;
}

int am__decode_submit(struct amuse_server *s, struct am__job *j)
{
    /* The least busy worker, starting from a rotating position so ties spread out. */
    unsigned start = atomic_fetch_add(&s->decode_next, 1);
    int best = -1, best_queued = 0;
    for (int k = 0; k < s->n_decoders; k++) {
        int i = (int)((start + (unsigned)k) % (unsigned)s->n_decoders);
        int queued = am__batcher_queued(s->decoders[i]);
        if (best < 0 || queued < best_queued) {
            best = i;
            best_queued = queued;
        }
    }
    return am__batcher_submit(s->decoders[best], j);
}

int am__decoders_start(struct amuse_server *s)
{
    int n = s->opt.threads;
    s->decoders = calloc((size_t)n, sizeof *s->decoders);
    if (!s->decoders)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    /* Each worker takes one job at a time; its queue holds what max_queue_size allows a model. */
    struct am__batcher_options bo = {1, 0, s->opt.max_queue_size, 0};
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "decode-%d", i);
        int rc = am__batcher_start(&s->decoders[i], &bo, decode_run, NULL, name);
        if (rc)
            return rc;
        s->n_decoders++;
    }
    return AMUSE_OK;
}

void am__decoders_stop(struct amuse_server *s)
{
    for (int i = 0; i < s->n_decoders; i++)
        am__batcher_stop(s->decoders[i]);
    free(s->decoders);
    s->decoders = NULL;
    s->n_decoders = 0;
}
