/* merge.c - layers with several inputs: Concatenate (on the last axis) and Add. They are what a
 * functional graph needs to join branches; sequence models join encoder and decoder through
 * layer states instead. */
#include "nn/layer.h"

#include "core/internal.h"

#include <string.h>

static size_t no_workspace(const struct am__layer *l, int64_t batch)
{
    (void)l;
    (void)batch;
    return 0;
}

/* ---------------------------------------------------------------- Concatenate (axis -1) */

static int concat_configure(struct am__layer *l, const cJSON *cfg)
{
    int axis = -1;
    int rc = am__cfg_int(l, cfg, "axis", 0, -1, -1, &axis);
    if (rc)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "only axis -1 is supported");
    return AMUSE_OK;
}

static int concat_build(struct am__layer *l)
{
    if (l->n_inputs < 2)
        return am__layer_fail(l, AMUSE_ESHAPE, "needs at least two inputs");
    struct amuse_shape s = l->in_shape[0];
    int last = s.ndim - 1;
    s.dim[last] = 0;
    for (int i = 0; i < l->n_inputs; i++) {
        const struct amuse_shape *in = &l->in_shape[i];
        if (in->ndim != s.ndim)
            return am__layer_fail(l, AMUSE_ESHAPE, "input %d has %d axes, input 0 has %d", i,
                                  in->ndim, s.ndim);
        for (int d = 0; d < last; d++)
            if (in->dim[d] != s.dim[d])
                return am__layer_fail(l, AMUSE_ESHAPE, "input %d differs on axis %d", i, d);
        s.dim[last] += in->dim[last];
    }
    l->out_shape[0] = s;
    return AMUSE_OK;
}

static void concat_forward(struct am__layer *l, struct am__call *c)
{
    const struct amuse_shape *o = &l->out_shape[0];
    int64_t width = o->dim[o->ndim - 1], rows = c->batch * amuse_shape_size(o) / width, at = 0;
    for (int i = 0; i < l->n_inputs; i++) {
        int64_t wi = l->in_shape[i].dim[o->ndim - 1];
        for (int64_t r = 0; r < rows; r++)
            memcpy(c->out[0] + r * width + at, c->in[i] + r * wi, (size_t)wi * sizeof(float));
        at += wi;
    }
}

static void concat_backward(struct am__layer *l, struct am__call *c)
{
    const struct amuse_shape *o = &l->out_shape[0];
    int64_t width = o->dim[o->ndim - 1], rows = c->batch * amuse_shape_size(o) / width, at = 0;
    for (int i = 0; i < l->n_inputs; i++) {
        int64_t wi = l->in_shape[i].dim[o->ndim - 1];
        if (c->din[i])
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < wi; j++)
                    c->din[i][r * wi + j] += c->dout[0][r * width + at + j];
        at += wi;
    }
}

const struct am__layer_type am__concatenate_layer = {
    .class_name = "Concatenate",
    .base_name = "concatenate",
    .configure = concat_configure,
    .build = concat_build,
    .workspace = no_workspace,
    .forward = concat_forward,
    .backward = concat_backward,
};

/* ---------------------------------------------------------------- Add */

static int add_configure(struct am__layer *l, const cJSON *cfg)
{
    (void)l;
    (void)cfg;
    return AMUSE_OK;
}

static int add_build(struct am__layer *l)
{
    if (l->n_inputs < 2)
        return am__layer_fail(l, AMUSE_ESHAPE, "needs at least two inputs");
    for (int i = 1; i < l->n_inputs; i++)
        if (!amuse_shape_equal(&l->in_shape[i], &l->in_shape[0]))
            return am__layer_fail(l, AMUSE_ESHAPE, "input %d's shape differs from input 0's", i);
    l->out_shape[0] = l->in_shape[0];
    return AMUSE_OK;
}

static void add_forward(struct am__layer *l, struct am__call *c)
{
    int64_t n = c->batch * amuse_shape_size(&l->out_shape[0]);
    memcpy(c->out[0], c->in[0], (size_t)n * sizeof(float));
    for (int i = 1; i < l->n_inputs; i++)
        for (int64_t j = 0; j < n; j++)
            c->out[0][j] += c->in[i][j];
}

static void add_backward(struct am__layer *l, struct am__call *c)
{
    int64_t n = c->batch * amuse_shape_size(&l->out_shape[0]);
    for (int i = 0; i < l->n_inputs; i++)
        if (c->din[i])
            for (int64_t j = 0; j < n; j++)
                c->din[i][j] += c->dout[0][j];
}

const struct am__layer_type am__add_layer = {
    .class_name = "Add",
    .base_name = "add",
    .configure = add_configure,
    .build = add_build,
    .workspace = no_workspace,
    .forward = add_forward,
    .backward = add_backward,
};
