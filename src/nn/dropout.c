/* dropout.c - Dropout (inverted, as Keras): in training each value is kept with probability
 * 1 - rate and scaled by 1 / (1 - rate); at inference the layer is the identity. Masks come from
 * the layer's own seeded RNG, drawn serially so results do not depend on the thread count. */
#include "nn/layer.h"

#include "core/internal.h"

#include <string.h>

/* Dropout's settings (l->cfg). */
struct dropout_config {
    float rate;
};

static int dropout_configure(struct am__layer *l, const cJSON *cfg)
{
    struct dropout_config *d = l->cfg;
    if (!cJSON_GetObjectItemCaseSensitive(cfg, "rate"))
        return am__layer_fail(l, AMUSE_EFORMAT, "missing key 'rate'");
    int rc = am__cfg_float(l, cfg, "rate", 0.0, 0.999, &d->rate);
    if (rc)
        return rc;
    double seed = 0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, "seed");
    if (cJSON_IsNumber(s))
        seed = s->valuedouble;
    amuse_rng_seed(&l->rng, (uint64_t)seed ^ 0x64726f706f7574ULL);
    return AMUSE_OK;
}

static int dropout_build(struct am__layer *l)
{
    l->out_shape[0] = l->in_shape[0];
    return AMUSE_OK;
}

static size_t dropout_workspace(const struct am__layer *l, int64_t batch)
{
    return (size_t)(batch * amuse_shape_size(&l->in_shape[0])) * sizeof(float);
}

static void dropout_forward(struct am__layer *l, struct am__call *c)
{
    int64_t n = c->batch * amuse_shape_size(&l->in_shape[0]);
    float *mask = c->work;
    float rate = ((const struct dropout_config *)l->cfg)->rate;
    if (!c->training || rate == 0.0f) {
        memcpy(c->out[0], c->in[0], (size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            mask[i] = 1.0f;
        return;
    }
    float keep = 1.0f - rate, scale = 1.0f / keep;
    for (int64_t i = 0; i < n; i++)
        mask[i] = amuse_rng_uniform(&l->rng) < keep ? scale : 0.0f;
    for (int64_t i = 0; i < n; i++)
        c->out[0][i] = c->in[0][i] * mask[i];
}

static void dropout_backward(struct am__layer *l, struct am__call *c)
{
    if (!c->din[0])
        return;
    int64_t n = c->batch * amuse_shape_size(&l->in_shape[0]);
    const float *mask = c->work;
    for (int64_t i = 0; i < n; i++)
        c->din[0][i] += c->dout[0][i] * mask[i];
}

const struct am__layer_type am__dropout_layer = {
    .class_name = "Dropout",
    .flags = AM__LAYER_PASSES_MASK,
    .config_size = sizeof(struct dropout_config),
    .base_name = "dropout",
    .configure = dropout_configure,
    .build = dropout_build,
    .workspace = dropout_workspace,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
