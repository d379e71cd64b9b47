/* dense.c - Dense: y = activation(x . kernel + bias) on the last axis, kernel (in, out) as Keras.
 * Inputs of rank > 1 are treated as rows (Keras applies Dense to the last axis), so the same layer
 * serves per-timestep outputs of sequence models. Math is one GEMM each way. */
#include "nn/layer.h"

#include "core/blas.h"
#include "core/internal.h"

#include <string.h>

static int dense_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    l->cfg.use_bias = 1;
    l->cfg.kernel_init = AM__INIT_GLOROT_UNIFORM;
    l->cfg.bias_init = AM__INIT_ZEROS;
    if ((rc = am__cfg_int(l, cfg, "units", 1, 1, 1 << 24, &l->cfg.units)) ||
        (rc = am__cfg_activation(l, cfg, "activation", &l->cfg.activation)) ||
        (rc = am__cfg_bool(l, cfg, "use_bias", &l->cfg.use_bias)) ||
        (rc = am__cfg_initializer(l, cfg, "kernel_initializer", &l->cfg.kernel_init)) ||
        (rc = am__cfg_initializer(l, cfg, "bias_initializer", &l->cfg.bias_init)))
        return rc;
    return AMUSE_OK;
}

static int dense_build(struct am__layer *l)
{
    const struct amuse_shape *in = &l->in_shape[0];
    if (in->ndim < 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "input must have at least one axis");
    int64_t fan_in = in->dim[in->ndim - 1], units = l->cfg.units;
    l->out_shape[0] = *in;
    l->out_shape[0].dim[in->ndim - 1] = units;
    int64_t kdims[2] = {fan_in, units};
    am__layer_add_weight(l, "kernel", 2, kdims, l->cfg.kernel_init, fan_in, units);
    if (l->cfg.use_bias)
        am__layer_add_weight(l, "bias", 1, &units, l->cfg.bias_init, fan_in, units);
    return AMUSE_OK;
}

static int64_t dense_rows(const struct am__layer *l, int64_t batch)
{
    const struct amuse_shape *in = &l->in_shape[0];
    return batch * amuse_shape_size(in) / in->dim[in->ndim - 1];
}

static size_t dense_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(dense_rows(l, batch) * l->cfg.units) * sizeof(float);
}

/* x (rows, in) . kernel (in, units) + bias -> y (rows, units) */
static void dense_forward(struct am__layer *l, struct am__call *c)
{
    int64_t rows = dense_rows(l, c->batch), units = l->cfg.units;
    int64_t in = l->w[0].shape.dim[0];
    float *y = c->out[0];
    am__sgemm(0, 0, (int)rows, (int)units, (int)in, 1.0f, c->in[0], (int)in, l->w[0].value,
              (int)units, 0.0f, y, (int)units);
    if (l->cfg.use_bias) {
        const float *b = l->w[1].value;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < units; j++)
                y[r * units + j] += b[j];
    }
    am__activation_forward(l->cfg.activation, y, rows, units);
}

static void dense_backward(struct am__layer *l, struct am__call *c)
{
    int64_t rows = dense_rows(l, c->batch), units = l->cfg.units;
    int64_t in = l->w[0].shape.dim[0];
    const float *dz = c->dout[0];
    if (!l->fused_loss_grad && l->cfg.activation != AM__ACT_LINEAR) {
        am__activation_backward(l->cfg.activation, c->out[0], c->dout[0], c->work, rows, units);
        dz = c->work;
    }
    /* dkernel += x^T . dz */
    am__sgemm(1, 0, (int)in, (int)units, (int)rows, 1.0f, c->in[0], (int)in, dz, (int)units, 1.0f,
              l->w[0].grad, (int)units);
    if (l->cfg.use_bias) {
        float *db = l->w[1].grad;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < units; j++)
                db[j] += dz[r * units + j];
    }
    /* dx += dz . kernel^T */
    if (c->din[0])
        am__sgemm(0, 1, (int)rows, (int)in, (int)units, 1.0f, dz, (int)units, l->w[0].value,
                  (int)units, 1.0f, c->din[0], (int)in);
}

const struct am__layer_type am__dense_layer = {
    .class_name = "Dense",
    .base_name = "dense",
    .configure = dense_configure,
    .build = dense_build,
    .workspace = dense_workspace,
    .forward = dense_forward,
    .backward = dense_backward,
};
