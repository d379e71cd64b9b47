/* conv2d.c - Conv2D, channels-last, kernel (kh, kw, in, out) as Keras, "valid" or "same" padding
 * (TensorFlow's rule: the odd extra row/column of padding goes at the bottom/right), any stride.
 *
 * Computed as im2col + one GEMM per direction: the patch matrix has one row per output pixel and
 * one column per (ky, kx, channel), which is exactly the kernel's memory order, so the kernel is
 * used as a (kh*kw*in, out) matrix without any copy. tests/test_layers.c checks it against a
 * direct 7-loop convolution. Dilation and groups are not supported. */
#include "nn/layer.h"

#include "core/blas.h"
#include "core/internal.h"

#include <omp.h>
#include <string.h>

/* Conv2D's settings (l->cfg). */
struct conv_config {
    int filters, kernel[2], strides[2], padding_same, use_bias;
    enum am__activation activation;
    struct am__init kernel_init, bias_init;
};

static struct am__window2d geometry(const struct am__layer *l)
{
    const struct conv_config *k = l->cfg;
    return am__window2d_of(l, k->kernel, k->strides, k->padding_same, k->filters);
}

static int conv_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    struct conv_config *k = l->cfg;
    k->strides[0] = k->strides[1] = 1;
    k->use_bias = 1;
    k->kernel_init = (struct am__init){AM__INIT_GLOROT_UNIFORM, 0, 0};
    k->bias_init = (struct am__init){AM__INIT_ZEROS, 0, 0};
    int dilation[2] = {1, 1}, groups = 1;
    if ((rc = am__cfg_int(l, cfg, "filters", 1, 1, 1 << 16, &k->filters)) ||
        (rc = am__cfg_pair(l, cfg, "kernel_size", 1, k->kernel)) ||
        (rc = am__cfg_pair(l, cfg, "strides", 0, k->strides)) ||
        (rc = am__cfg_padding(l, cfg, &k->padding_same)) ||
        (rc = am__cfg_activation(l, cfg, "activation", &k->activation)) ||
        (rc = am__cfg_bool(l, cfg, "use_bias", &k->use_bias)) ||
        (rc = am__cfg_initializer(l, cfg, "kernel_initializer", &k->kernel_init)) ||
        (rc = am__cfg_initializer(l, cfg, "bias_initializer", &k->bias_init)) ||
        (rc = am__cfg_require_string(l, cfg, "data_format", "channels_last")) ||
        (rc = am__cfg_pair(l, cfg, "dilation_rate", 0, dilation)) ||
        (rc = am__cfg_int(l, cfg, "groups", 0, 1, 1 << 16, &groups)))
        return rc;
    if (dilation[0] != 1 || dilation[1] != 1 || groups != 1)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "dilation_rate and groups must be 1");
    return AMUSE_OK;
}

static int conv_build(struct am__layer *l)
{
    if (l->in_shape[0].ndim != 3)
        return am__layer_fail(l, AMUSE_ESHAPE,
                              "input must be (height, width, channels), got %d axes",
                              l->in_shape[0].ndim);
    const struct conv_config *k = l->cfg;
    struct am__window2d g = geometry(l);
    if (g.oh < 1 || g.ow < 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "kernel %lldx%lld is larger than the input %lldx%lld",
                              (long long)g.kh, (long long)g.kw, (long long)g.h, (long long)g.w);
    int64_t out[3] = {g.oh, g.ow, g.oc}, kdims[4] = {g.kh, g.kw, g.c, g.oc};
    amuse_shape_make(&l->out_shape[0], 3, out);
    am__layer_add_weight(l, "kernel", 4, kdims, k->kernel_init, g.kh * g.kw * g.c,
                         g.kh * g.kw * g.oc);
    if (k->use_bias)
        am__layer_add_weight(l, "bias", 1, &g.oc, k->bias_init, g.kh * g.kw * g.c,
                             g.kh * g.kw * g.oc);
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- chunked execution
 * The batch is cut into chunks of whole samples, about CHUNK_ROWS output pixels each, and each
 * OpenMP thread takes whole chunks: im2col, a single-threaded GEMM (OpenBLAS runs sequentially
 * inside a parallel region), bias and activation, all while the chunk's patch matrix is still in
 * the core's cache. Backward rebuilds the patch matrix per chunk rather than keeping the whole
 * batch's (85 MB for the seed CNN's second layer at batch 128), and each thread accumulates its
 * own kernel/bias gradient, summed in a fixed order at the end, so a given thread count always
 * gives the same bits. */

#define CHUNK_ROWS 512

struct conv_plan {
    struct am__window2d g;
    int64_t kdim, chunk, n_chunks, rows_per_chunk;
    int threads;
};

static struct conv_plan plan(const struct am__layer *l, int64_t batch)
{
    struct conv_plan p;
    p.g = geometry(l);
    p.kdim = p.g.kh * p.g.kw * p.g.c;
    int64_t per_sample = p.g.oh * p.g.ow;
    p.chunk = (CHUNK_ROWS + per_sample - 1) / per_sample;
    if (p.chunk > batch)
        p.chunk = batch;
    if (p.chunk < 1)
        p.chunk = 1;
    p.n_chunks = (batch + p.chunk - 1) / p.chunk;
    p.rows_per_chunk = p.chunk * per_sample;
    p.threads = omp_get_max_threads();
    return p;
}

/* Per thread: patch matrix, d(pre-activation), kernel+bias gradient partials. */
static size_t thread_floats(const struct conv_plan *p)
{
    size_t n = (size_t)(p->rows_per_chunk * (p->kdim + p->g.oc) + p->kdim * p->g.oc + p->g.oc);
    return (n + 15) & ~(size_t)15;
}

static size_t conv_workspace(const struct am__layer *l, int64_t batch)
{
    struct conv_plan p = plan(l, batch);
    return (size_t)p.threads * thread_floats(&p) * sizeof(float);
}

static void im2col(const struct am__window2d *g, int64_t b0, int64_t nb, const float *x,
                   float *cols)
{
    int64_t kdim = g->kh * g->kw * g->c, run = g->kw * g->c;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + (b0 + b) * g->h * g->w * g->c;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float *row = cols + ((b * g->oh + oy) * g->ow + ox) * kdim;
                int64_t iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
                for (int64_t ky = 0; ky < g->kh; ky++) {
                    int64_t iy = iy0 + ky;
                    float *dst = row + ky * run;
                    if (iy < 0 || iy >= g->h) {
                        memset(dst, 0, (size_t)run * sizeof(float));
                    } else if (ix0 >= 0 && ix0 + g->kw <= g->w) {
                        /* A plain loop: runs are often a few floats (3 for a 3x3 grey kernel),
                         * where a memcpy call costs more than the copy. */
                        const float *src = xb + (iy * g->w + ix0) * g->c;
                        for (int64_t i = 0; i < run; i++)
                            dst[i] = src[i];
                    } else {
                        for (int64_t kx = 0; kx < g->kw; kx++) {
                            int64_t ix = ix0 + kx;
                            if (ix < 0 || ix >= g->w)
                                memset(dst + kx * g->c, 0, (size_t)g->c * sizeof(float));
                            else
                                memcpy(dst + kx * g->c, xb + (iy * g->w + ix) * g->c,
                                       (size_t)g->c * sizeof(float));
                        }
                    }
                }
            }
    }
}

/* Scatter-add patch gradients back into samples [b0, b0 + nb) of dx. */
static void col2im_add(const struct am__window2d *g, int64_t b0, int64_t nb, const float *cols,
                       float *dx)
{
    int64_t kdim = g->kh * g->kw * g->c;
    for (int64_t b = 0; b < nb; b++) {
        float *xb = dx + (b0 + b) * g->h * g->w * g->c;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const float *row = cols + ((b * g->oh + oy) * g->ow + ox) * kdim;
                int64_t iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
                for (int64_t ky = 0; ky < g->kh; ky++) {
                    int64_t iy = iy0 + ky;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        int64_t ix = ix0 + kx;
                        if (ix < 0 || ix >= g->w)
                            continue;
                        float *dst = xb + (iy * g->w + ix) * g->c;
                        const float *src = row + (ky * g->kw + kx) * g->c;
                        for (int64_t ci = 0; ci < g->c; ci++)
                            dst[ci] += src[ci];
                    }
                }
            }
    }
}

/* x (batch, h, w, c) -> y (batch, oh, ow, f) */
static void conv_forward(struct am__layer *l, struct am__call *c)
{
    struct conv_plan p = plan(l, c->batch);
    const struct am__window2d *g = &p.g;
    const struct conv_config *cc = l->cfg;
    const struct am__weight *bias_w = am__layer_weight(l, "bias");
    const float *kernel = am__layer_weight(l, "kernel")->value;
    const float *bias = bias_w ? bias_w->value : NULL;
    if (c->fold_kernel) { /* a BatchNormalization folded in (inference) */
        kernel = c->fold_kernel;
        bias = c->fold_bias;
    }
    /* A 1x1 kernel at stride 1 (a pointwise convolution) reads its input as the patch matrix. */
    int pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1;
#pragma omp parallel for num_threads(p.threads) schedule(static) if (p.n_chunks > 1)
    for (int64_t k = 0; k < p.n_chunks; k++) {
        float *cols = (float *)c->work + (size_t)omp_get_thread_num() * thread_floats(&p);
        int64_t b0 = k * p.chunk, nb = c->batch - b0 < p.chunk ? c->batch - b0 : p.chunk;
        int64_t rows = nb * g->oh * g->ow;
        float *y = c->out[0] + b0 * g->oh * g->ow * g->oc;
        const float *patches = cols;
        if (pointwise)
            patches = c->in[0] + b0 * g->h * g->w * g->c;
        else
            im2col(g, b0, nb, c->in[0], cols);
        /* Start from the bias and let the GEMM add to it (beta = 1). */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < g->oc; j++)
                y[r * g->oc + j] = bias ? bias[j] : 0.0f;
        am__sgemm(0, 0, (int)rows, (int)g->oc, (int)p.kdim, 1.0f, patches, (int)p.kdim, kernel,
                  (int)g->oc, 1.0f, y, (int)g->oc);
        am__activation_forward_serial(cc->activation, y, rows, g->oc);
        if (c->epilogue)
            am__run_epilogue(c, c->out[0], b0, nb);
    }
}

static void conv_backward(struct am__layer *l, struct am__call *c)
{
    struct conv_plan p = plan(l, c->batch);
    const struct am__window2d *g = &p.g;
    size_t stride = thread_floats(&p);
    int64_t wsize = p.kdim * g->oc;
    const struct conv_config *cc = l->cfg;
    struct am__weight *kernel = am__layer_weight(l, "kernel"), *bias = am__layer_weight(l, "bias");
    int fused = l->fused_loss_grad || cc->activation == AM__ACT_LINEAR;
    for (int t = 0; t < p.threads; t++) {
        float *partial = (float *)c->work + (size_t)t * stride + p.rows_per_chunk * (p.kdim + g->oc);
        memset(partial, 0, (size_t)(wsize + g->oc) * sizeof(float));
    }
#pragma omp parallel for num_threads(p.threads) schedule(static) if (p.n_chunks > 1)
    for (int64_t k = 0; k < p.n_chunks; k++) {
        float *cols = (float *)c->work + (size_t)omp_get_thread_num() * stride;
        float *dz_buf = cols + p.rows_per_chunk * p.kdim;
        float *dkernel = dz_buf + p.rows_per_chunk * g->oc, *dbias = dkernel + wsize;
        int64_t b0 = k * p.chunk, nb = c->batch - b0 < p.chunk ? c->batch - b0 : p.chunk;
        int64_t rows = nb * g->oh * g->ow, at = b0 * g->oh * g->ow * g->oc;
        const float *dz = c->dout[0] + at;
        if (!fused) {
            am__activation_backward_serial(cc->activation, c->out[0] + at, dz, dz_buf, rows,
                                           g->oc);
            dz = dz_buf;
        }
        im2col(g, b0, nb, c->in[0], cols);
        am__sgemm(1, 0, (int)p.kdim, (int)g->oc, (int)rows, 1.0f, cols, (int)p.kdim, dz, (int)g->oc,
                  1.0f, dkernel, (int)g->oc);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < g->oc; j++)
                dbias[j] += dz[r * g->oc + j];
        if (c->din[0]) {
            am__sgemm(0, 1, (int)rows, (int)p.kdim, (int)g->oc, 1.0f, dz, (int)g->oc, kernel->value,
                      (int)g->oc, 0.0f, cols, (int)p.kdim);
            col2im_add(g, b0, nb, cols, c->din[0]);
        }
    }
    /* Sum the per-thread partials in thread order. */
    for (int t = 0; t < p.threads; t++) {
        const float *partial =
            (float *)c->work + (size_t)t * stride + p.rows_per_chunk * (p.kdim + g->oc);
        for (int64_t i = 0; i < wsize; i++)
            kernel->grad[i] += partial[i];
        if (bias)
            for (int64_t j = 0; j < g->oc; j++)
                bias->grad[j] += partial[wsize + j];
    }
}

static enum am__activation conv_activation(const struct am__layer *l)
{
    return ((const struct conv_config *)l->cfg)->activation;
}

const struct am__layer_type am__conv2d_layer = {
    .class_name = "Conv2D",
    .config_size = sizeof(struct conv_config),
    .flags = AM__LAYER_FUSES_SOFTMAX_LOSS | AM__LAYER_FOLDS_BATCHNORM,
    .output_activation = conv_activation,
    .base_name = "conv2d",
    .configure = conv_configure,
    .build = conv_build,
    .workspace = conv_workspace,
    .forward = conv_forward,
    .backward = conv_backward,
    .runs_epilogue = 1,
};
