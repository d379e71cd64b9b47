/* pooling.c - MaxPooling2D and AveragePooling2D, channels-last, pool_size / strides (default:
 * the pool size) / "valid" or "same" padding, and GlobalAveragePooling2D. MaxPooling2D's forward
 * remembers where each maximum came from; backward routes the gradient there. Ties go to the
 * first maximum in scan order. AveragePooling2D divides by the number of window cells inside
 * the input (TensorFlow's rule: padding is not counted). GlobalAveragePooling2D supports only
 * keepdims false. */
#include "nn/layer.h"

#include "core/internal.h"

/* MaxPooling2D's settings (l->cfg). */
struct pool_config {
    int pool[2], strides[2], padding_same;
};

static struct am__window2d pool_geometry(const struct am__layer *l)
{
    const struct pool_config *p = l->cfg;
    return am__window2d_of(l, p->pool, p->strides, p->padding_same, l->in_shape[0].dim[2]);
}

static int pool_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc;
    struct pool_config *p = l->cfg;
    p->pool[0] = p->pool[1] = 2;
    if ((rc = am__cfg_pair(l, cfg, "pool_size", 0, p->pool)))
        return rc;
    p->strides[0] = p->pool[0];
    p->strides[1] = p->pool[1];
    if ((rc = am__cfg_pair(l, cfg, "strides", 0, p->strides)) ||
        (rc = am__cfg_padding(l, cfg, &p->padding_same)) ||
        (rc = am__cfg_require_string(l, cfg, "data_format", "channels_last")))
        return rc;
    return AMUSE_OK;
}

static int pool_build(struct am__layer *l)
{
    if (l->in_shape[0].ndim != 3)
        return am__layer_fail(l, AMUSE_ESHAPE,
                              "input must be (height, width, channels), got %d axes",
                              l->in_shape[0].ndim);
    struct am__window2d g = pool_geometry(l);
    if (g.oh < 1 || g.ow < 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "pool %lldx%lld is larger than the input %lldx%lld",
                              (long long)g.kh, (long long)g.kw, (long long)g.h, (long long)g.w);
    int64_t out[3] = {g.oh, g.ow, g.c};
    return amuse_shape_make(&l->out_shape[0], 3, out);
}

static size_t pool_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(batch * amuse_shape_size(&l->out_shape[0])) * sizeof(int32_t);
}

/* x (batch, h, w, c) -> y (batch, oh, ow, c); work[i] = index within the sample of the max.
 * The channel loop is innermost so it runs over contiguous memory. */
static void pool_forward(struct am__layer *l, struct am__call *c)
{
    struct am__window2d g = pool_geometry(l);
    int32_t *arg = c->work;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t oy = 0; oy < g.oh; oy++) {
            const float *xb = c->in[0] + b * g.h * g.w * g.c;
            for (int64_t ox = 0; ox < g.ow; ox++) {
                int64_t o = ((b * g.oh + oy) * g.ow + ox) * g.c;
                float *best = c->out[0] + o;
                int32_t *where = arg + o;
                int first = 1;
                for (int64_t ky = 0; ky < g.kh; ky++) {
                    int64_t iy = oy * g.sh - g.pad_top + ky;
                    if (iy < 0 || iy >= g.h)
                        continue;
                    for (int64_t kx = 0; kx < g.kw; kx++) {
                        int64_t ix = ox * g.sw - g.pad_left + kx;
                        if (ix < 0 || ix >= g.w)
                            continue;
                        int32_t base = (int32_t)((iy * g.w + ix) * g.c);
                        const float *x = xb + base;
                        if (first) {
                            for (int64_t ci = 0; ci < g.c; ci++) {
                                best[ci] = x[ci];
                                where[ci] = base + (int32_t)ci;
                            }
                            first = 0;
                            continue;
                        }
                        if (!c->training) { /* inference needs no argmax: a plain max */
                            for (int64_t ci = 0; ci < g.c; ci++)
                                best[ci] = x[ci] > best[ci] ? x[ci] : best[ci];
                            continue;
                        }
                        for (int64_t ci = 0; ci < g.c; ci++) {
                            int take = x[ci] > best[ci]; /* branch-free, so it vectorises */
                            best[ci] = take ? x[ci] : best[ci];
                            where[ci] = take ? base + (int32_t)ci : where[ci];
                        }
                    }
                }
            }
        }
}

static void pool_backward(struct am__layer *l, struct am__call *c)
{
    if (!c->din[0])
        return;
    struct am__window2d g = pool_geometry(l);
    if (!l->forward_training) {
        /* An inference-mode forward kept no argmax: find it again (same outputs). */
        struct am__call again = *c;
        again.training = 1;
        pool_forward(l, &again);
    }
    const int32_t *arg = c->work;
    int64_t per_out = g.oh * g.ow * g.c, per_in = g.h * g.w * g.c;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t i = 0; i < per_out; i++)
            c->din[0][b * per_in + arg[b * per_out + i]] += c->dout[0][b * per_out + i];
}

const struct am__layer_type am__maxpool2d_layer = {
    .class_name = "MaxPooling2D",
    .config_size = sizeof(struct pool_config),
    .base_name = "max_pooling2d",
    .configure = pool_configure,
    .build = pool_build,
    .workspace = pool_workspace,
    .forward = pool_forward,
    .backward = pool_backward,
    .per_sample = 1,
};

/* ---------------------------------------------------------------- AveragePooling2D */

static size_t no_workspace(const struct am__layer *l, int64_t batch)
{
    (void)l;
    (void)batch;
    return 0;
}

/* The cells of window (oy, ox) inside the input: [y0, y1) x [x0, x1). */
static void avg_window(const struct am__window2d *g, int64_t oy, int64_t ox, int64_t *y0,
                       int64_t *y1, int64_t *x0, int64_t *x1)
{
    *y0 = oy * g->sh - g->pad_top;
    *x0 = ox * g->sw - g->pad_left;
    *y1 = *y0 + g->kh < g->h ? *y0 + g->kh : g->h;
    *x1 = *x0 + g->kw < g->w ? *x0 + g->kw : g->w;
    *y0 = *y0 < 0 ? 0 : *y0;
    *x0 = *x0 < 0 ? 0 : *x0;
}

/* x (batch, h, w, c) -> y (batch, oh, ow, c) */
static void avgpool_forward(struct am__layer *l, struct am__call *c)
{
    struct am__window2d g = pool_geometry(l);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++) {
        const float *xb = c->in[0] + b * g.h * g.w * g.c;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                float *y = c->out[0] + ((b * g.oh + oy) * g.ow + ox) * g.c;
                int64_t y0, y1, x0, x1;
                avg_window(&g, oy, ox, &y0, &y1, &x0, &x1);
                for (int64_t ci = 0; ci < g.c; ci++)
                    y[ci] = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        for (int64_t ci = 0; ci < g.c; ci++)
                            y[ci] += xb[(iy * g.w + ix) * g.c + ci];
                float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int64_t ci = 0; ci < g.c; ci++)
                    y[ci] *= scale;
            }
    }
}

static void avgpool_backward(struct am__layer *l, struct am__call *c)
{
    if (!c->din[0])
        return;
    struct am__window2d g = pool_geometry(l);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++) {
        float *dxb = c->din[0] + b * g.h * g.w * g.c;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                const float *dy = c->dout[0] + ((b * g.oh + oy) * g.ow + ox) * g.c;
                int64_t y0, y1, x0, x1;
                avg_window(&g, oy, ox, &y0, &y1, &x0, &x1);
                float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        for (int64_t ci = 0; ci < g.c; ci++)
                            dxb[(iy * g.w + ix) * g.c + ci] += dy[ci] * scale;
            }
    }
}

const struct am__layer_type am__avgpool2d_layer = {
    .class_name = "AveragePooling2D",
    .config_size = sizeof(struct pool_config),
    .base_name = "average_pooling2d",
    .configure = pool_configure,
    .build = pool_build,
    .workspace = no_workspace,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

/* ---------------------------------------------------------------- GlobalAveragePooling2D */

static int global_avgpool_configure(struct am__layer *l, const cJSON *cfg)
{
    int rc, keepdims = 0;
    if ((rc = am__cfg_require_string(l, cfg, "data_format", "channels_last")) ||
        (rc = am__cfg_bool(l, cfg, "keepdims", &keepdims)))
        return rc;
    if (keepdims)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "keepdims must be false");
    return AMUSE_OK;
}

static int global_avgpool_build(struct am__layer *l)
{
    if (l->in_shape[0].ndim != 3)
        return am__layer_fail(l, AMUSE_ESHAPE,
                              "input must be (height, width, channels), got %d axes",
                              l->in_shape[0].ndim);
    return amuse_shape_make(&l->out_shape[0], 1, &l->in_shape[0].dim[2]);
}

/* x (batch, h, w, c) -> y (batch, c) */
static void global_avgpool_forward(struct am__layer *l, struct am__call *c)
{
    int64_t cells = l->in_shape[0].dim[0] * l->in_shape[0].dim[1], ch = l->in_shape[0].dim[2];
    float scale = 1.0f / (float)cells;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++) {
        const float *x = c->in[0] + b * cells * ch;
        float *y = c->out[0] + b * ch;
        for (int64_t ci = 0; ci < ch; ci++)
            y[ci] = 0.0f;
        for (int64_t p = 0; p < cells; p++)
            for (int64_t ci = 0; ci < ch; ci++)
                y[ci] += x[p * ch + ci];
        for (int64_t ci = 0; ci < ch; ci++)
            y[ci] *= scale;
    }
}

static void global_avgpool_backward(struct am__layer *l, struct am__call *c)
{
    if (!c->din[0])
        return;
    int64_t cells = l->in_shape[0].dim[0] * l->in_shape[0].dim[1], ch = l->in_shape[0].dim[2];
    float scale = 1.0f / (float)cells;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < c->batch; b++) {
        float *dx = c->din[0] + b * cells * ch;
        const float *dy = c->dout[0] + b * ch;
        for (int64_t p = 0; p < cells; p++)
            for (int64_t ci = 0; ci < ch; ci++)
                dx[p * ch + ci] += dy[ci] * scale;
    }
}

const struct am__layer_type am__global_avgpool2d_layer = {
    .class_name = "GlobalAveragePooling2D",
    .base_name = "global_average_pooling2d",
    .configure = global_avgpool_configure,
    .build = global_avgpool_build,
    .workspace = no_workspace,
    .forward = global_avgpool_forward,
    .backward = global_avgpool_backward,
};
