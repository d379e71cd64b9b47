/* depthwise.c - DepthwiseConv2D, channels-last: each input channel is convolved with its own
 * depth_multiplier kernels (Keras's depthwise_kernel (kh, kw, in, depth_multiplier)); output
 * channel c * depth_multiplier + m comes from input channel c and kernel m. "valid" or "same"
 * padding (TensorFlow's rule, as Conv2D), any stride.
 *
 * Direct loops with the channel axis innermost (contiguous, vectorises): a depthwise kernel has
 * too few multiply-adds per output for im2col + GEMM to pay; the common 3x3 stride-1 case has
 * an unrolled path for pixels away from the border. Dilation is not supported. */
#include "nn/layer.h"

#include "core/internal.h"

#include <string.h>

/* DepthwiseConv2D's settings (l->cfg). */
struct depthwise_config {
    int multiplier, kernel[2], strides[2], padding_same, use_bias;
    enum am__activation activation;
    struct am__init kernel_init, bias_init;
};

static struct am__window2d geometry(const struct am__layer *l)
{
    const struct depthwise_config *k = l->cfg;
    return am__window2d_of(l, k->kernel, k->strides, k->padding_same,
                           l->in_shape[0].dim[2] * k->multiplier);
}

static int depthwise_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    struct depthwise_config *k = l->cfg;
    k->multiplier = 1;
    k->strides[0] = k->strides[1] = 1;
    k->use_bias = 1;
    k->kernel_init = (struct am__init){AM__INIT_GLOROT_UNIFORM, 0, 0};
    k->bias_init = (struct am__init){AM__INIT_ZEROS, 0, 0};
    int dilation[2] = {1, 1};
    if ((rc = am__cfg_pair(l, cfg, "kernel_size", 1, k->kernel)) ||
        (rc = am__cfg_int(l, cfg, "depth_multiplier", 0, 1, 1 << 10, &k->multiplier)) ||
        (rc = am__cfg_pair(l, cfg, "strides", 0, k->strides)) ||
        (rc = am__cfg_padding(l, cfg, &k->padding_same)) ||
        (rc = am__cfg_activation(l, cfg, "activation", &k->activation)) ||
        (rc = am__cfg_bool(l, cfg, "use_bias", &k->use_bias)) ||
        (rc = am__cfg_initializer(l, cfg, "depthwise_initializer", &k->kernel_init)) ||
        (rc = am__cfg_initializer(l, cfg, "bias_initializer", &k->bias_init)) ||
        (rc = am__cfg_require_string(l, cfg, "data_format", "channels_last")) ||
        (rc = am__cfg_pair(l, cfg, "dilation_rate", 0, dilation)))
        return rc;
    if (dilation[0] != 1 || dilation[1] != 1)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "dilation_rate must be 1");
    return AMUSE_OK;
}

static int depthwise_build(struct am__layer *l)
{
    if (l->in_shape[0].ndim != 3)
        return am__layer_fail(l, AMUSE_ESHAPE,
                              "input must be (height, width, channels), got %d axes",
                              l->in_shape[0].ndim);
    const struct depthwise_config *k = l->cfg;
    struct am__window2d g = geometry(l);
    if (g.oh < 1 || g.ow < 1)
        return am__layer_fail(l, AMUSE_ESHAPE,
                              "kernel %lldx%lld is larger than the input %lldx%lld",
                              (long long)g.kh, (long long)g.kw, (long long)g.h, (long long)g.w);
    int64_t out[3] = {g.oh, g.ow, g.oc}, kdims[4] = {g.kh, g.kw, g.c, k->multiplier};
    amuse_shape_make(&l->out_shape[0], 3, out);
    /* Keras's fans for a (kh, kw, in, m) kernel: receptive field times in, and times m. */
    am__layer_add_weight(l, "depthwise_kernel", 4, kdims, k->kernel_init, g.kh * g.kw * g.c,
                         g.kh * g.kw * k->multiplier);
    if (k->use_bias)
        am__layer_add_weight(l, "bias", 1, &g.oc, k->bias_init, g.kh * g.kw * g.c,
                             g.kh * g.kw * k->multiplier);
    return AMUSE_OK;
}

static size_t depthwise_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(batch * amuse_shape_size(&l->out_shape[0])) * sizeof(float);
}

/* One output pixel of a 3x3, stride-1, multiplier-1 kernel whose window lies inside the input:
 * x points at the window's top-left pixel; nine multiply-adds per channel, no bounds checks,
 * the sum kept in a register. */
static void pixel3x3(const float *restrict x, int64_t row, const float *restrict k,
                     const float *restrict bias, int64_t ch, float *restrict y)
{
    const float *x0 = x, *x1 = x + row, *x2 = x + 2 * row;
    for (int64_t i = 0; i < ch; i++)
        y[i] = (bias ? bias[i] : 0.0f) + x0[i] * k[i] + x0[ch + i] * k[ch + i] +
               x0[2 * ch + i] * k[2 * ch + i] + x1[i] * k[3 * ch + i] +
               x1[ch + i] * k[4 * ch + i] + x1[2 * ch + i] * k[5 * ch + i] +
               x2[i] * k[6 * ch + i] + x2[ch + i] * k[7 * ch + i] + x2[2 * ch + i] * k[8 * ch + i];
}

/* x (batch, h, w, c) * kernel (kh, kw, c, m) + bias (c*m) -> y (batch, oh, ow, c*m) */
static void depthwise_forward(struct am__layer *l, struct am__call *c)
{
    const struct depthwise_config *k = l->cfg;
    struct am__window2d g = geometry(l);
    const float *kern = am__layer_weight(l, "depthwise_kernel")->value;
    const struct am__weight *bias_w = am__layer_weight(l, "bias");
    const float *bias = bias_w ? bias_w->value : NULL;
    if (c->fold_kernel) { /* a BatchNormalization folded in (inference) */
        kern = c->fold_kernel;
        bias = c->fold_bias;
    }
    int64_t m = k->multiplier;
    int fast = m == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++) {
        const float *xb = c->in[0] + b * g.h * g.w * g.c;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                float *y = c->out[0] + ((b * g.oh + oy) * g.ow + ox) * g.oc;
                int64_t iy0 = oy * g.sh - g.pad_top, ix0 = ox * g.sw - g.pad_left;
                if (fast && iy0 >= 0 && iy0 + 3 <= g.h && ix0 >= 0 && ix0 + 3 <= g.w) {
                    pixel3x3(xb + (iy0 * g.w + ix0) * g.c, g.w * g.c, kern, bias, g.c, y);
                    continue;
                }
                for (int64_t o = 0; o < g.oc; o++)
                    y[o] = bias ? bias[o] : 0.0f;
                for (int64_t ky = 0; ky < g.kh; ky++) {
                    int64_t iy = iy0 + ky;
                    if (iy < 0 || iy >= g.h)
                        continue;
                    for (int64_t kx = 0; kx < g.kw; kx++) {
                        int64_t ix = ix0 + kx;
                        if (ix < 0 || ix >= g.w)
                            continue;
                        const float *x = xb + (iy * g.w + ix) * g.c;
                        const float *kk = kern + (ky * g.kw + kx) * g.oc;
                        if (m == 1) {
                            for (int64_t ci = 0; ci < g.c; ci++)
                                y[ci] += x[ci] * kk[ci];
                        } else {
                            for (int64_t ci = 0; ci < g.c; ci++)
                                for (int64_t j = 0; j < m; j++)
                                    y[ci * m + j] += x[ci] * kk[ci * m + j];
                        }
                    }
                }
            }
    }
    am__activation_forward(k->activation, c->out[0], c->batch * g.oh * g.ow, g.oc);
}

static void depthwise_backward(struct am__layer *l, struct am__call *c)
{
    const struct depthwise_config *k = l->cfg;
    struct am__window2d g = geometry(l);
    struct am__weight *kernel = am__layer_weight(l, "depthwise_kernel");
    struct am__weight *bias = am__layer_weight(l, "bias");
    int64_t m = k->multiplier, n_out = c->batch * g.oh * g.ow;
    const float *dz = c->dout[0];
    if (!l->fused_loss_grad && k->activation != AM__ACT_LINEAR) {
        am__activation_backward(k->activation, c->out[0], c->dout[0], c->work, n_out, g.oc);
        dz = c->work;
    }
    if (bias)
        for (int64_t r = 0; r < n_out; r++)
            for (int64_t o = 0; o < g.oc; o++)
                bias->grad[o] += dz[r * g.oc + o];
    /* Kernel gradient: a serial pass (it sums over the whole batch); input gradient: samples
     * are independent, so in parallel. */
    for (int64_t b = 0; b < c->batch; b++) {
        const float *xb = c->in[0] + b * g.h * g.w * g.c;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                const float *d = dz + ((b * g.oh + oy) * g.ow + ox) * g.oc;
                for (int64_t ky = 0; ky < g.kh; ky++) {
                    int64_t iy = oy * g.sh - g.pad_top + ky;
                    if (iy < 0 || iy >= g.h)
                        continue;
                    for (int64_t kx = 0; kx < g.kw; kx++) {
                        int64_t ix = ox * g.sw - g.pad_left + kx;
                        if (ix < 0 || ix >= g.w)
                            continue;
                        const float *x = xb + (iy * g.w + ix) * g.c;
                        float *dk = kernel->grad + (ky * g.kw + kx) * g.oc;
                        for (int64_t ci = 0; ci < g.c; ci++)
                            for (int64_t j = 0; j < m; j++)
                                dk[ci * m + j] += x[ci] * d[ci * m + j];
                    }
                }
            }
    }
    if (!c->din[0])
        return;
    const float *kern = kernel->value;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++) {
        float *dxb = c->din[0] + b * g.h * g.w * g.c;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                const float *d = dz + ((b * g.oh + oy) * g.ow + ox) * g.oc;
                for (int64_t ky = 0; ky < g.kh; ky++) {
                    int64_t iy = oy * g.sh - g.pad_top + ky;
                    if (iy < 0 || iy >= g.h)
                        continue;
                    for (int64_t kx = 0; kx < g.kw; kx++) {
                        int64_t ix = ox * g.sw - g.pad_left + kx;
                        if (ix < 0 || ix >= g.w)
                            continue;
                        float *dx = dxb + (iy * g.w + ix) * g.c;
                        const float *kk = kern + (ky * g.kw + kx) * g.oc;
                        for (int64_t ci = 0; ci < g.c; ci++)
                            for (int64_t j = 0; j < m; j++)
                                dx[ci] += d[ci * m + j] * kk[ci * m + j];
                    }
                }
            }
    }
}

static enum am__activation depthwise_activation(const struct am__layer *l)
{
    return ((const struct depthwise_config *)l->cfg)->activation;
}

const struct am__layer_type am__depthwise_conv2d_layer = {
    .class_name = "DepthwiseConv2D",
    .base_name = "depthwise_conv2d",
    .config_size = sizeof(struct depthwise_config),
    .flags = AM__LAYER_FUSES_SOFTMAX_LOSS | AM__LAYER_FOLDS_BATCHNORM,
    .configure = depthwise_configure,
    .build = depthwise_build,
    .workspace = depthwise_workspace,
    .forward = depthwise_forward,
    .backward = depthwise_backward,
    .output_activation = depthwise_activation,
};
