/* batchnorm.c - BatchNormalization over the last axis (Keras axis=-1): every other axis, batch
 * included, is a row. Training: y = gamma (x - mean) / sqrt(var + epsilon) + beta with the
 * batch's mean and (biased) variance, and the moving statistics follow
 * moving = momentum moving + (1 - momentum) batch, the variance with Bessel's correction
 * (n / (n - 1)), as TensorFlow's fused kernel and PyTorch do. Inference uses the moving ones.
 * moving_mean and moving_variance are non-trainable weights: saved in the model file, never
 * touched by the optimizer.
 *
 * Other axes, renorm, virtual batches and adjustment are not supported. */
#include "nn/layer.h"

#include "core/internal.h"

#include <math.h>
#include <string.h>

/* BatchNormalization's settings (l->cfg). */
struct batchnorm_config {
    float momentum, epsilon;
    int center, scale;
    struct am__init beta_init, gamma_init, mean_init, variance_init;
};

static int batchnorm_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    struct batchnorm_config *k = l->cfg;
    k->momentum = 0.99f;
    k->epsilon = 0.001f;
    k->center = k->scale = 1;
    k->beta_init = (struct am__init){AM__INIT_ZEROS, 0, 0};
    k->gamma_init = (struct am__init){AM__INIT_ONES, 0, 0};
    k->mean_init = (struct am__init){AM__INIT_ZEROS, 0, 0};
    k->variance_init = (struct am__init){AM__INIT_ONES, 0, 0};
    if ((rc = am__cfg_float(l, cfg, "momentum", 0.0, 1.0, &k->momentum)) ||
        (rc = am__cfg_float(l, cfg, "epsilon", 1e-12, 1.0, &k->epsilon)) ||
        (rc = am__cfg_bool(l, cfg, "center", &k->center)) ||
        (rc = am__cfg_bool(l, cfg, "scale", &k->scale)) ||
        (rc = am__cfg_initializer(l, cfg, "beta_initializer", &k->beta_init)) ||
        (rc = am__cfg_initializer(l, cfg, "gamma_initializer", &k->gamma_init)) ||
        (rc = am__cfg_initializer(l, cfg, "moving_mean_initializer", &k->mean_init)) ||
        (rc = am__cfg_initializer(l, cfg, "moving_variance_initializer", &k->variance_init)))
        return rc;
    const cJSON *axis = cJSON_GetObjectItemCaseSensitive(cfg, "axis");
    if (cJSON_IsArray(axis) && cJSON_GetArraySize(axis) == 1)
        axis = cJSON_GetArrayItem(axis, 0);
    if (axis && !cJSON_IsNull(axis) && !(cJSON_IsNumber(axis) && axis->valueint == -1))
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "axis must be -1 (the last axis)");
    const cJSON *renorm = cJSON_GetObjectItemCaseSensitive(cfg, "renorm");
    if (cJSON_IsTrue(renorm))
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "renorm is not supported");
    return AMUSE_OK;
}

static int64_t channels(const struct am__layer *l)
{
    const struct amuse_shape *in = &l->in_shape[0];
    return in->dim[in->ndim - 1];
}

static int batchnorm_build(struct am__layer *l)
{
    const struct batchnorm_config *k = l->cfg;
    if (l->in_shape[0].ndim < 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "input has no axis to normalise");
    int64_t ch = channels(l);
    l->out_shape[0] = l->in_shape[0];
    if (k->scale)
        am__layer_add_weight(l, "gamma", 1, &ch, k->gamma_init, ch, ch);
    if (k->center)
        am__layer_add_weight(l, "beta", 1, &ch, k->beta_init, ch, ch);
    am__layer_add_weight(l, "moving_mean", 1, &ch, k->mean_init, ch, ch)->frozen = 1;
    am__layer_add_weight(l, "moving_variance", 1, &ch, k->variance_init, ch, ch)->frozen = 1;
    return AMUSE_OK;
}

/* Workspace: x-hat (the normalised input, rows x ch), then per channel 1 / sqrt(var + eps)
 * and the mean used. */
static size_t batchnorm_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(batch * amuse_shape_size(&l->in_shape[0]) + 2 * channels(l)) * sizeof(float);
}

/* x (rows, ch) -> y (rows, ch) */
static void batchnorm_forward(struct am__layer *l, struct am__call *c)
{
    const struct batchnorm_config *k = l->cfg;
    int64_t ch = channels(l), rows = c->batch * amuse_shape_size(&l->in_shape[0]) / ch;
    const struct am__weight *gamma = am__layer_weight(l, "gamma"),
                            *beta = am__layer_weight(l, "beta");
    float *mmean = am__layer_weight(l, "moving_mean")->value;
    float *mvar = am__layer_weight(l, "moving_variance")->value;
    float *xhat = c->work, *inv = xhat + rows * ch, *mean_of = inv + ch;
    const float *x = c->in[0];
    float *y = c->out[0];
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < ch; j++) {
        double mean, var;
        if (c->training) {
            double s = 0.0, s2 = 0.0;
            for (int64_t r = 0; r < rows; r++)
                s += x[r * ch + j];
            mean = s / (double)rows;
            for (int64_t r = 0; r < rows; r++) {
                double d = x[r * ch + j] - mean;
                s2 += d * d;
            }
            var = s2 / (double)rows;
            double unbiased = rows > 1 ? s2 / (double)(rows - 1) : var;
            mmean[j] = (float)(k->momentum * mmean[j] + (1.0 - k->momentum) * mean);
            mvar[j] = (float)(k->momentum * mvar[j] + (1.0 - k->momentum) * unbiased);
        } else {
            mean = mmean[j];
            var = mvar[j];
        }
        mean_of[j] = (float)mean;
        inv[j] = (float)(1.0 / sqrt(var + k->epsilon));
    }
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < ch; j++) {
        float g = gamma ? gamma->value[j] : 1.0f, b = beta ? beta->value[j] : 0.0f;
        for (int64_t r = 0; r < rows; r++) {
            float h = (x[r * ch + j] - mean_of[j]) * inv[j];
            xhat[r * ch + j] = h;
            y[r * ch + j] = g * h + b;
        }
    }
}

static void batchnorm_backward(struct am__layer *l, struct am__call *c)
{
    int64_t ch = channels(l), rows = c->batch * amuse_shape_size(&l->in_shape[0]) / ch;
    struct am__weight *gamma = am__layer_weight(l, "gamma"), *beta = am__layer_weight(l, "beta");
    const float *xhat = c->work, *inv = xhat + rows * ch, *dy = c->dout[0];
    float *dx = c->din[0];
    int training = l->forward_training;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < ch; j++) {
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            sum_dy += dy[r * ch + j];
            sum_dy_xhat += (double)dy[r * ch + j] * xhat[r * ch + j];
        }
        if (gamma)
            gamma->grad[j] += (float)sum_dy_xhat;
        if (beta)
            beta->grad[j] += (float)sum_dy;
        if (!dx)
            continue;
        float g = gamma ? gamma->value[j] : 1.0f;
        if (!training) { /* the statistics are constants: a per-channel scale */
            for (int64_t r = 0; r < rows; r++)
                dx[r * ch + j] += dy[r * ch + j] * g * inv[j];
            continue;
        }
        /* dx = g inv / n (n dy - sum(dy) - x-hat sum(dy x-hat)) */
        double n = (double)rows, scale = g * inv[j] / n;
        for (int64_t r = 0; r < rows; r++)
            dx[r * ch + j] +=
                (float)(scale * (n * dy[r * ch + j] - sum_dy - xhat[r * ch + j] * sum_dy_xhat));
    }
}

const struct am__layer_type am__batchnorm_layer = {
    .class_name = "BatchNormalization",
    .base_name = "batch_normalization",
    .config_size = sizeof(struct batchnorm_config),
    .flags = AM__LAYER_PASSES_MASK,
    .configure = batchnorm_configure,
    .build = batchnorm_build,
    .workspace = batchnorm_workspace,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
};
