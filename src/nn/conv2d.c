/* conv2d.c - Conv2D, channels-last, kernel (kh, kw, in, out) as Keras, "valid" or "same" padding
 * (TensorFlow's rule: the odd extra row/column of padding goes at the bottom/right), any stride.
 *
 * Computed as im2col + one GEMM per direction: the patch matrix has one row per output pixel and
 * one column per (ky, kx, channel), which is exactly the kernel's memory order, so the kernel is
 * used as a (kh*kw*in, out) matrix without any copy. conv2d_reference_forward in the tests is the
 * direct 7-loop version this is checked against. Dilation and groups are not supported. */
#include "nn/layer.h"

#include "core/blas.h"
#include "core/internal.h"

#include <string.h>

struct conv_geometry {
    int64_t h, w, c, oh, ow, f, kh, kw, sh, sw, pad_top, pad_left;
};

static struct conv_geometry geometry(const struct am__layer *l)
{
    struct conv_geometry g;
    const struct amuse_shape *in = &l->in_shape[0];
    g.h = in->dim[0];
    g.w = in->dim[1];
    g.c = in->dim[2];
    g.f = l->cfg.filters;
    g.kh = l->cfg.kernel[0];
    g.kw = l->cfg.kernel[1];
    g.sh = l->cfg.strides[0];
    g.sw = l->cfg.strides[1];
    if (l->cfg.padding_same) {
        g.oh = (g.h + g.sh - 1) / g.sh;
        g.ow = (g.w + g.sw - 1) / g.sw;
        int64_t ph = (g.oh - 1) * g.sh + g.kh - g.h, pw = (g.ow - 1) * g.sw + g.kw - g.w;
        g.pad_top = ph > 0 ? ph / 2 : 0;
        g.pad_left = pw > 0 ? pw / 2 : 0;
    } else {
        g.oh = g.h >= g.kh ? (g.h - g.kh) / g.sh + 1 : 0;
        g.ow = g.w >= g.kw ? (g.w - g.kw) / g.sw + 1 : 0;
        g.pad_top = g.pad_left = 0;
    }
    return g;
}

static int conv_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    l->cfg.strides[0] = l->cfg.strides[1] = 1;
    l->cfg.use_bias = 1;
    l->cfg.kernel_init = AM__INIT_GLOROT_UNIFORM;
    l->cfg.bias_init = AM__INIT_ZEROS;
    int dilation[2] = {1, 1}, groups = 1;
    if ((rc = am__cfg_int(l, cfg, "filters", 1, 1, 1 << 16, &l->cfg.filters)) ||
        (rc = am__cfg_pair(l, cfg, "kernel_size", 1, l->cfg.kernel)) ||
        (rc = am__cfg_pair(l, cfg, "strides", 0, l->cfg.strides)) ||
        (rc = am__cfg_padding(l, cfg, &l->cfg.padding_same)) ||
        (rc = am__cfg_activation(l, cfg, "activation", &l->cfg.activation)) ||
        (rc = am__cfg_bool(l, cfg, "use_bias", &l->cfg.use_bias)) ||
        (rc = am__cfg_initializer(l, cfg, "kernel_initializer", &l->cfg.kernel_init)) ||
        (rc = am__cfg_initializer(l, cfg, "bias_initializer", &l->cfg.bias_init)) ||
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
    struct conv_geometry g = geometry(l);
    if (g.oh < 1 || g.ow < 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "kernel %lldx%lld is larger than the input %lldx%lld",
                              (long long)g.kh, (long long)g.kw, (long long)g.h, (long long)g.w);
    int64_t out[3] = {g.oh, g.ow, g.f}, kdims[4] = {g.kh, g.kw, g.c, g.f};
    amuse_shape_make(&l->out_shape[0], 3, out);
    am__layer_add_weight(l, "kernel", 4, kdims, l->cfg.kernel_init, g.kh * g.kw * g.c,
                         g.kh * g.kw * g.f);
    if (l->cfg.use_bias)
        am__layer_add_weight(l, "bias", 1, &g.f, l->cfg.bias_init, g.kh * g.kw * g.c,
                             g.kh * g.kw * g.f);
    return AMUSE_OK;
}

/* Workspace: the patch matrix (rows x kh*kw*c), then d(pre-activation) (rows x f). */
static size_t conv_workspace(const struct am__layer *l, int64_t batch)
{
    struct conv_geometry g = geometry(l);
    int64_t rows = batch * g.oh * g.ow;
    return (size_t)(rows * (g.kh * g.kw * g.c + g.f)) * sizeof(float);
}

static void im2col(const struct conv_geometry *g, int64_t batch, const float *x, float *cols)
{
    int64_t kdim = g->kh * g->kw * g->c, run = g->kw * g->c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const float *xb = x + b * g->h * g->w * g->c;
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float *row = cols + ((b * g->oh + oy) * g->ow + ox) * kdim;
                int64_t iy0 = oy * g->sh - g->pad_top, ix0 = ox * g->sw - g->pad_left;
                for (int64_t ky = 0; ky < g->kh; ky++) {
                    int64_t iy = iy0 + ky;
                    float *dst = row + ky * run;
                    if (iy < 0 || iy >= g->h) {
                        memset(dst, 0, (size_t)run * sizeof(float));
                    } else if (ix0 >= 0 && ix0 + g->kw <= g->w) {
                        memcpy(dst, xb + (iy * g->w + ix0) * g->c, (size_t)run * sizeof(float));
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

/* Scatter-add patch gradients back to the input; one sample per thread, so no races. */
static void col2im_add(const struct conv_geometry *g, int64_t batch, const float *cols, float *dx)
{
    int64_t kdim = g->kh * g->kw * g->c;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < batch; b++) {
        float *xb = dx + b * g->h * g->w * g->c;
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
    struct conv_geometry g = geometry(l);
    int64_t rows = c->batch * g.oh * g.ow, kdim = g.kh * g.kw * g.c;
    float *cols = c->work, *y = c->out[0];
    im2col(&g, c->batch, c->in[0], cols);
    am__sgemm(0, 0, (int)rows, (int)g.f, (int)kdim, 1.0f, cols, (int)kdim, l->w[0].value, (int)g.f,
              0.0f, y, (int)g.f);
    if (l->cfg.use_bias) {
        const float *bias = l->w[1].value;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < g.f; j++)
                y[r * g.f + j] += bias[j];
    }
    am__activation_forward(l->cfg.activation, y, rows, g.f);
}

static void conv_backward(struct am__layer *l, struct am__call *c)
{
    struct conv_geometry g = geometry(l);
    int64_t rows = c->batch * g.oh * g.ow, kdim = g.kh * g.kw * g.c;
    float *cols = c->work, *dz_buf = cols + rows * kdim;
    const float *dz = c->dout[0];
    if (!l->fused_loss_grad && l->cfg.activation != AM__ACT_LINEAR) {
        am__activation_backward(l->cfg.activation, c->out[0], c->dout[0], dz_buf, rows, g.f);
        dz = dz_buf;
    }
    /* dkernel += cols^T . dz  (the patch matrix is still there from forward) */
    am__sgemm(1, 0, (int)kdim, (int)g.f, (int)rows, 1.0f, cols, (int)kdim, dz, (int)g.f, 1.0f,
              l->w[0].grad, (int)g.f);
    if (l->cfg.use_bias) {
        float *db = l->w[1].grad;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < g.f; j++)
                db[j] += dz[r * g.f + j];
    }
    if (!c->din[0])
        return;
    /* dcols = dz . kernel^T, reusing the patch buffer, then scatter-add into dx. */
    am__sgemm(0, 1, (int)rows, (int)kdim, (int)g.f, 1.0f, dz, (int)g.f, l->w[0].value, (int)g.f,
              0.0f, cols, (int)kdim);
    col2im_add(&g, c->batch, cols, c->din[0]);
}

const struct am__layer_type am__conv2d_layer = {"Conv2D",       "conv2d",       conv_configure,
                                                conv_build,     conv_workspace, conv_forward,
                                                conv_backward};
