/* embedding.c - Embedding: token ids (any shape) -> vectors, embeddings (input_dim, output_dim)
 * as Keras; mask_zero makes a step mask (id 0 = padding) that flows to the layers downstream.
 * Ids come from an int32 input (InputLayer dtype int32) or from whole-number floats. An id
 * outside [0, input_dim) is an error before the forward pass (the check hook), not a silent
 * zero row. Not supported: embeddings regularizers and constraints (ignored keys). */
#include "nn/layer.h"

#include "core/internal.h"

#include <math.h>
#include <string.h>

/* Embedding's settings (l->cfg). */
struct embedding_config {
    int input_dim, output_dim, mask_zero;
    struct am__init init;
};

static int embedding_configure(struct am__layer *l, const cJSON *cfg)
{
    struct embedding_config *e = l->cfg;
    e->init = (struct am__init){AM__INIT_RANDOM_UNIFORM, -0.05f, 0.05f}; /* Keras's default */
    int rc;
    if ((rc = am__cfg_int(l, cfg, "input_dim", 1, 1, 1 << 24, &e->input_dim)) ||
        (rc = am__cfg_int(l, cfg, "output_dim", 1, 1, 1 << 16, &e->output_dim)) ||
        (rc = am__cfg_bool(l, cfg, "mask_zero", &e->mask_zero)) ||
        (rc = am__cfg_initializer(l, cfg, "embeddings_initializer", &e->init)))
        return rc;
    return AMUSE_OK;
}

static int embedding_build(struct am__layer *l)
{
    const struct embedding_config *e = l->cfg;
    const struct amuse_shape *in = &l->in_shape[0];
    if (in->ndim + 1 > AMUSE_MAX_DIMS - 1)
        return am__layer_fail(l, AMUSE_ESHAPE, "input has too many axes");
    l->out_shape[0] = *in;
    l->out_shape[0].dim[in->ndim] = e->output_dim;
    l->out_shape[0].ndim = in->ndim + 1;
    int64_t dims[2] = {e->input_dim, e->output_dim};
    am__layer_add_weight(l, "embeddings", 2, dims, e->init, e->input_dim, e->output_dim);
    l->makes_mask = e->mask_zero;
    return AMUSE_OK;
}

static size_t embedding_workspace(const struct am__layer *l, int64_t batch)
{
    (void)l;
    (void)batch;
    return 0;
}

/* The id at position i of the input (int32 ids or whole-number floats); -1 if not an id. */
static int64_t id_at(const struct am__layer *l, const float *in, int64_t i)
{
    if (l->in_dtype[0] == AMUSE_INT32)
        return ((const int32_t *)(const void *)in)[i];
    float v = in[i];
    return v >= 0.0f && v < 16777216.0f && v == floorf(v) ? (int64_t)v : -1;
}

static int embedding_check(const struct am__layer *l, const struct am__call *c)
{
    const struct embedding_config *e = l->cfg;
    int64_t n = c->batch * amuse_shape_size(&l->in_shape[0]);
    for (int64_t i = 0; i < n; i++) {
        int64_t id = id_at(l, c->in[0], i);
        if (id < 0 || id >= e->input_dim)
            return am__layer_fail(
                l, AMUSE_EINVAL, "sample %lld, position %lld: id %g is outside [0, %d)",
                (long long)(i / amuse_shape_size(&l->in_shape[0])),
                (long long)(i % amuse_shape_size(&l->in_shape[0])),
                l->in_dtype[0] == AMUSE_INT32 ? (double)id : (double)c->in[0][i], e->input_dim);
    }
    return AMUSE_OK;
}

/* ids (B, ...) -> out (B, ..., D): row copies; mask (B, ...) = id != 0. */
static void embedding_forward(struct am__layer *l, struct am__call *c)
{
    const struct embedding_config *e = l->cfg;
    const float *table = am__layer_weight(l, "embeddings")->value;
    int64_t n = c->batch * amuse_shape_size(&l->in_shape[0]), d = e->output_dim;
#pragma omp parallel for schedule(static) if (n * d > 65536)
    for (int64_t i = 0; i < n; i++) {
        int64_t id = id_at(l, c->in[0], i);
        memcpy(c->out[0] + i * d, table + id * d, (size_t)d * sizeof(float));
    }
    if (c->mask_out)
        for (int64_t i = 0; i < n; i++)
            c->mask_out[i] = id_at(l, c->in[0], i) != 0 ? 1.0f : 0.0f;
}

/* d(embeddings)[id] += dout row; serial, since ids repeat. Ids have no gradient. */
static void embedding_backward(struct am__layer *l, struct am__call *c)
{
    const struct embedding_config *e = l->cfg;
    float *grad = am__layer_weight(l, "embeddings")->grad;
    int64_t n = c->batch * amuse_shape_size(&l->in_shape[0]), d = e->output_dim;
    for (int64_t i = 0; i < n; i++) {
        int64_t id = id_at(l, c->in[0], i);
        const float *dy = c->dout[0] + i * d;
        float *g = grad + id * d;
        for (int64_t j = 0; j < d; j++)
            g[j] += dy[j];
    }
}

const struct am__layer_type am__embedding_layer = {
    .class_name = "Embedding",
    .base_name = "embedding",
    .config_size = sizeof(struct embedding_config),
    .flags = AM__LAYER_TAKES_IDS,
    .configure = embedding_configure,
    .build = embedding_build,
    .workspace = embedding_workspace,
    .forward = embedding_forward,
    .backward = embedding_backward,
    .check = embedding_check,
};
