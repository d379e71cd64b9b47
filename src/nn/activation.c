/* activation.c - relu, sigmoid, tanh and softmax, forward in place and backward from the output,
 * and the standalone Activation layer. Dense and Conv2D call these for their fused activation. */
#include "nn/layer.h"

#include "core/internal.h"

#include <math.h>

void am__activation_forward_serial(enum am__activation a, float *y, int64_t rows, int64_t width)
{
    int64_t n = rows * width;
    switch (a) {
    case AM__ACT_LINEAR:
        break;
    case AM__ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case AM__ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case AM__ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(y[i]);
        break;
    case AM__ACT_SOFTMAX:
        for (int64_t r = 0; r < rows; r++) {
            float *row = y + r * width, max = row[0];
            for (int64_t j = 1; j < width; j++)
                max = row[j] > max ? row[j] : max;
            double sum = 0;
            for (int64_t j = 0; j < width; j++) {
                row[j] = expf(row[j] - max);
                sum += row[j];
            }
            float inv = (float)(1.0 / sum);
            for (int64_t j = 0; j < width; j++)
                row[j] *= inv;
        }
        break;
    }
}

void am__activation_backward_serial(enum am__activation a, const float *y, const float *dy,
                                    float *dz, int64_t rows, int64_t width)
{
    int64_t n = rows * width;
    switch (a) {
    case AM__ACT_LINEAR:
        for (int64_t i = 0; i < n; i++)
            dz[i] = dy[i];
        break;
    case AM__ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case AM__ACT_SIGMOID:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dz[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case AM__ACT_TANH:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dz[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case AM__ACT_SOFTMAX:
        /* dz_j = y_j * (dy_j - sum_k dy_k y_k) */
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = y + r * width, *dyr = dy + r * width;
            float *dzr = dz + r * width;
            double dot = 0;
            for (int64_t j = 0; j < width; j++)
                dot += (double)dyr[j] * yr[j];
            for (int64_t j = 0; j < width; j++)
                dzr[j] = yr[j] * (dyr[j] - (float)dot);
        }
        break;
    }
}

/* The parallel versions hand each thread a block of whole rows. */
#define ROW_BLOCK(rows, width) ((16384 + (width)-1) / (width))

void am__activation_forward(enum am__activation a, float *y, int64_t rows, int64_t width)
{
    if (a == AM__ACT_LINEAR)
        return;
    int64_t block = ROW_BLOCK(rows, width);
#pragma omp parallel for schedule(static) if (rows > block)
    for (int64_t r = 0; r < rows; r += block)
        am__activation_forward_serial(a, y + r * width, rows - r < block ? rows - r : block,
                                      width);
}

void am__activation_backward(enum am__activation a, const float *y, const float *dy, float *dz,
                             int64_t rows, int64_t width)
{
    int64_t block = ROW_BLOCK(rows, width);
#pragma omp parallel for schedule(static) if (rows > block)
    for (int64_t r = 0; r < rows; r += block) {
        int64_t n = rows - r < block ? rows - r : block;
        am__activation_backward_serial(a, y + r * width, dy + r * width, dz + r * width, n, width);
    }
}

/* ---------------------------------------------------------------- Activation layer
 * (batch, ...) -> (batch, ...); softmax acts on the last axis. */

/* The Activation layer's settings (l->cfg). */
struct activation_config {
    enum am__activation activation;
};

static enum am__activation layer_activation(const struct am__layer *l)
{
    return ((const struct activation_config *)l->cfg)->activation;
}

static int activation_configure(struct am__layer *l, const cJSON *cfg)
{
    struct activation_config *a = l->cfg;
    if (!cJSON_GetObjectItemCaseSensitive(cfg, "activation"))
        return am__layer_fail(l, AMUSE_EFORMAT, "missing key 'activation'");
    return am__cfg_activation(l, cfg, "activation", &a->activation);
}

static int same_shape_build(struct am__layer *l)
{
    l->out_shape[0] = l->in_shape[0];
    return AMUSE_OK;
}

static size_t activation_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(amuse_shape_size(&l->out_shape[0]) * batch) * sizeof(float);
}

static void activation_forward(struct am__layer *l, struct am__call *c)
{
    const struct amuse_shape *s = &l->out_shape[0];
    int64_t width = s->dim[s->ndim - 1], n = amuse_shape_size(s) * c->batch;
    for (int64_t i = 0; i < n; i++)
        c->out[0][i] = c->in[0][i];
    am__activation_forward(layer_activation(l), c->out[0], n / width, width);
}

static void activation_backward(struct am__layer *l, struct am__call *c)
{
    if (!c->din[0])
        return;
    const struct amuse_shape *s = &l->out_shape[0];
    int64_t width = s->dim[s->ndim - 1], n = amuse_shape_size(s) * c->batch;
    const float *dz = c->dout[0];
    if (!l->fused_loss_grad) {
        am__activation_backward(layer_activation(l), c->out[0], c->dout[0], c->work, n / width,
                                width);
        dz = c->work;
    }
    float *dx = c->din[0];
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++)
        dx[i] += dz[i];
}

const struct am__layer_type am__activation_layer = {
    .class_name = "Activation",
    .config_size = sizeof(struct activation_config),
    .flags = AM__LAYER_FUSES_SOFTMAX_LOSS | AM__LAYER_PASSES_MASK,
    .output_activation = layer_activation,
    .base_name = "activation",
    .configure = activation_configure,
    .build = same_shape_build,
    .workspace = activation_workspace,
    .forward = activation_forward,
    .backward = activation_backward,
};
