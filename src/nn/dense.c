/* dense.c - Dense: y = activation(x . kernel + bias) on the last axis, kernel (in, out) as Keras.
 * Inputs of rank > 1 are treated as rows (Keras applies Dense to the last axis), so the same layer
 * serves per-timestep outputs of sequence models. Math is one GEMM each way. */
#include "nn/layer.h"

#include "core/blas.h"
#include "core/internal.h"

#include <string.h>

/* Dense's settings (l->cfg). */
struct dense_config {
    int units, use_bias;
    enum am__activation activation;
    struct am__init kernel_init, bias_init;
};

static int dense_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    struct dense_config *d = l->cfg;
    d->use_bias = 1;
    d->kernel_init = (struct am__init){AM__INIT_GLOROT_UNIFORM, 0, 0};
    d->bias_init = (struct am__init){AM__INIT_ZEROS, 0, 0};
    if ((rc = am__cfg_int(l, cfg, "units", 1, 1, 1 << 24, &d->units)) ||
        (rc = am__cfg_activation(l, cfg, "activation", &d->activation)) ||
        (rc = am__cfg_bool(l, cfg, "use_bias", &d->use_bias)) ||
        (rc = am__cfg_initializer(l, cfg, "kernel_initializer", &d->kernel_init)) ||
        (rc = am__cfg_initializer(l, cfg, "bias_initializer", &d->bias_init)))
        return rc;
    return AMUSE_OK;
}

/* TimeDistributed(Dense) is Dense on the last axis: the same layer, configured from the inner
 * layer's config. Other wrapped layers are not supported. */
static int time_distributed_configure(struct am__layer *l, const cJSON *cfg)
{
    const cJSON *inner = cJSON_GetObjectItemCaseSensitive(cfg, "layer");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(inner, "class_name");
    const cJSON *icfg = cJSON_GetObjectItemCaseSensitive(inner, "config");
    if (!cJSON_IsObject(inner) || !cJSON_IsString(cls) || !cJSON_IsObject(icfg))
        return am__layer_fail(l, AMUSE_EFORMAT,
                              "key 'layer' must be {\"class_name\": \"Dense\", \"config\": {...}}");
    if (strcmp(cls->valuestring, "Dense") != 0)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED,
                              "only TimeDistributed(Dense) is supported, "
                              "not TimeDistributed(%s)",
                              cls->valuestring);
    return dense_configure(l, icfg);
}

static int dense_build(struct am__layer *l)
{
    const struct dense_config *d = l->cfg;
    const struct amuse_shape *in = &l->in_shape[0];
    if (in->ndim < 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "input must have at least one axis");
    int64_t fan_in = in->dim[in->ndim - 1], units = d->units;
    l->out_shape[0] = *in;
    l->out_shape[0].dim[in->ndim - 1] = units;
    int64_t kdims[2] = {fan_in, units};
    am__layer_add_weight(l, "kernel", 2, kdims, d->kernel_init, fan_in, units);
    if (d->use_bias)
        am__layer_add_weight(l, "bias", 1, &units, d->bias_init, fan_in, units);
    return AMUSE_OK;
}

static int64_t dense_rows(const struct am__layer *l, int64_t batch)
{
    const struct amuse_shape *in = &l->in_shape[0];
    return batch * amuse_shape_size(in) / in->dim[in->ndim - 1];
}

static size_t dense_workspace(const struct am__layer *l, int64_t batch)
{
    const struct dense_config *d = l->cfg;
    return (size_t)(dense_rows(l, batch) * d->units) * sizeof(float);
}

/* x (rows, in) . kernel (in, units) + bias -> y (rows, units) */
static void dense_forward(struct am__layer *l, struct am__call *c)
{
    const struct dense_config *d = l->cfg;
    const struct am__weight *kernel = am__layer_weight(l, "kernel");
    const struct am__weight *bias = am__layer_weight(l, "bias");
    int64_t rows = dense_rows(l, c->batch), units = d->units;
    int64_t in = kernel->shape.dim[0];
    float *y = c->out[0];
    am__sgemm_rows(c->row_products, (int)rows, (int)units, (int)in, 1.0f, c->in[0], (int)in,
                   kernel->value, (int)units, 0.0f, y, (int)units);
    if (bias) {
        const float *b = bias->value;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < units; j++)
                y[r * units + j] += b[j];
    }
    am__activation_forward(d->activation, y, rows, units);
}

static void dense_backward(struct am__layer *l, struct am__call *c)
{
    const struct dense_config *d = l->cfg;
    struct am__weight *kernel = am__layer_weight(l, "kernel"), *bias = am__layer_weight(l, "bias");
    int64_t rows = dense_rows(l, c->batch), units = d->units;
    int64_t in = kernel->shape.dim[0];
    const float *dz = c->dout[0];
    if (!l->fused_loss_grad && d->activation != AM__ACT_LINEAR) {
        am__activation_backward(d->activation, c->out[0], c->dout[0], c->work, rows, units);
        dz = c->work;
    }
    /* dkernel += x^T . dz */
    am__sgemm(1, 0, (int)in, (int)units, (int)rows, 1.0f, c->in[0], (int)in, dz, (int)units, 1.0f,
              kernel->grad, (int)units);
    if (bias) {
        float *db = bias->grad;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < units; j++)
                db[j] += dz[r * units + j];
    }
    /* dx += dz . kernel^T */
    if (c->din[0])
        am__sgemm(0, 1, (int)rows, (int)in, (int)units, 1.0f, dz, (int)units, kernel->value,
                  (int)units, 1.0f, c->din[0], (int)in);
}

static enum am__activation dense_activation(const struct am__layer *l)
{
    return ((const struct dense_config *)l->cfg)->activation;
}

const struct am__layer_type am__time_distributed_layer = {
    .class_name = "TimeDistributed",
    .base_name = "time_distributed",
    .config_size = sizeof(struct dense_config),
    .flags = AM__LAYER_FUSES_SOFTMAX_LOSS | AM__LAYER_PASSES_MASK,
    .output_activation = dense_activation,
    .configure = time_distributed_configure,
    .build = dense_build,
    .workspace = dense_workspace,
    .forward = dense_forward,
    .backward = dense_backward,
};

const struct am__layer_type am__dense_layer = {
    .class_name = "Dense",
    .base_name = "dense",
    .config_size = sizeof(struct dense_config),
    .flags = AM__LAYER_FUSES_SOFTMAX_LOSS | AM__LAYER_PASSES_MASK,
    .output_activation = dense_activation,
    .configure = dense_configure,
    .build = dense_build,
    .workspace = dense_workspace,
    .forward = dense_forward,
    .backward = dense_backward,
};
