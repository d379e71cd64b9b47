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

/* Workspace: two per-channel double accumulators, then x-hat (the normalised input, rows x ch),
 * then per channel 1 / sqrt(var + eps) and the mean used. Every pass runs over rows with the
 * channels innermost (contiguous): a channel-outer loop strides through megabytes. */
static size_t batchnorm_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(batch * amuse_shape_size(&l->in_shape[0]) + 2 * channels(l)) * sizeof(float) +
           2 * (size_t)channels(l) * sizeof(double);
}

struct bn_work {
    double *acc1, *acc2;
    float *xhat, *inv, *mean;
};

static struct bn_work work_of(void *work, int64_t rows, int64_t ch)
{
    struct bn_work w;
    w.acc1 = work;
    w.acc2 = w.acc1 + ch;
    w.xhat = (float *)(w.acc2 + ch);
    w.inv = w.xhat + rows * ch;
    w.mean = w.inv + ch;
    return w;
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
    struct bn_work w = work_of(c->work, rows, ch);
    const float *x = c->in[0];
    float *y = c->out[0];
    if (c->training) {
        for (int64_t j = 0; j < ch; j++)
            w.acc1[j] = w.acc2[j] = 0.0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < ch; j++)
                w.acc1[j] += x[r * ch + j];
        for (int64_t j = 0; j < ch; j++)
            w.acc1[j] /= (double)rows;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < ch; j++) {
                double d = x[r * ch + j] - w.acc1[j];
                w.acc2[j] += d * d;
            }
        for (int64_t j = 0; j < ch; j++) {
            double var = w.acc2[j] / (double)rows;
            double unbiased = rows > 1 ? w.acc2[j] / (double)(rows - 1) : var;
            mmean[j] = (float)(k->momentum * mmean[j] + (1.0 - k->momentum) * w.acc1[j]);
            mvar[j] = (float)(k->momentum * mvar[j] + (1.0 - k->momentum) * unbiased);
            w.mean[j] = (float)w.acc1[j];
            w.inv[j] = (float)(1.0 / sqrt(var + k->epsilon));
        }
    } else {
        for (int64_t j = 0; j < ch; j++) {
            w.mean[j] = mmean[j];
            w.inv[j] = (float)(1.0 / sqrt((double)mvar[j] + k->epsilon));
        }
    }
    const float *g = gamma ? gamma->value : NULL, *b = beta ? beta->value : NULL;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < ch; j++) {
            float h = (x[r * ch + j] - w.mean[j]) * w.inv[j];
            w.xhat[r * ch + j] = h;
            y[r * ch + j] = (g ? g[j] : 1.0f) * h + (b ? b[j] : 0.0f);
        }
}

static void batchnorm_backward(struct am__layer *l, struct am__call *c)
{
    int64_t ch = channels(l), rows = c->batch * amuse_shape_size(&l->in_shape[0]) / ch;
    struct am__weight *gamma = am__layer_weight(l, "gamma"), *beta = am__layer_weight(l, "beta");
    struct bn_work w = work_of(c->work, rows, ch);
    const float *dy = c->dout[0];
    float *dx = c->din[0];
    double *sum_dy = w.acc1, *sum_dy_xhat = w.acc2;
    for (int64_t j = 0; j < ch; j++)
        sum_dy[j] = sum_dy_xhat[j] = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < ch; j++) {
            sum_dy[j] += dy[r * ch + j];
            sum_dy_xhat[j] += (double)dy[r * ch + j] * w.xhat[r * ch + j];
        }
    for (int64_t j = 0; j < ch; j++) {
        if (gamma)
            gamma->grad[j] += (float)sum_dy_xhat[j];
        if (beta)
            beta->grad[j] += (float)sum_dy[j];
    }
    if (!dx)
        return;
    const float *g = gamma ? gamma->value : NULL;
    if (!l->forward_training) { /* the statistics were constants: a per-channel scale */
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < ch; j++)
                dx[r * ch + j] += dy[r * ch + j] * (g ? g[j] : 1.0f) * w.inv[j];
        return;
    }
    /* dx = g inv / n (n dy - sum(dy) - x-hat sum(dy x-hat)) */
    float n = (float)rows;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < ch; j++) {
            float scale = (g ? g[j] : 1.0f) * w.inv[j] / n;
            dx[r * ch + j] += scale * (n * dy[r * ch + j] - (float)sum_dy[j] -
                                       w.xhat[r * ch + j] * (float)sum_dy_xhat[j]);
        }
}

void am__batchnorm_fold(struct am__layer *bn, const float *kernel, const float *bias,
                        int64_t kernel_size, int64_t channels, float *fold_kernel,
                        float *fold_bias)
{
    const struct batchnorm_config *k = bn->cfg;
    const struct am__weight *gamma = am__layer_weight(bn, "gamma"),
                            *beta = am__layer_weight(bn, "beta");
    const float *mmean = am__layer_weight(bn, "moving_mean")->value;
    const float *mvar = am__layer_weight(bn, "moving_variance")->value;
    /* The scale goes in fold_bias first (the same arithmetic as inference above), then the
     * kernel is scaled and fold_bias becomes the shift. */
    for (int64_t j = 0; j < channels; j++)
        fold_bias[j] = (gamma ? gamma->value[j] : 1.0f) *
                       (float)(1.0 / sqrt((double)mvar[j] + k->epsilon));
    for (int64_t i = 0; i < kernel_size; i += channels)
        for (int64_t j = 0; j < channels; j++)
            fold_kernel[i + j] = kernel[i + j] * fold_bias[j];
    for (int64_t j = 0; j < channels; j++)
        fold_bias[j] = ((bias ? bias[j] : 0.0f) - mmean[j]) * fold_bias[j] +
                       (beta ? beta->value[j] : 0.0f);
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
