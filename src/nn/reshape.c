/* reshape.c - layers that only move data: InputLayer (a graph source) and Flatten. */
#include "nn/layer.h"

#include "core/internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- InputLayer
 * A source node: the engine copies the model input into its output. Config: batch_input_shape
 * [null, d1, ...] (Keras) or shape [d1, ...], and dtype (float32, or int32 for token ids). */

static int input_configure(struct am__layer *l, const cJSON *cfg)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, "batch_input_shape");
    int skip = 1;
    if (!s) {
        s = cJSON_GetObjectItemCaseSensitive(cfg, "shape");
        skip = 0;
    }
    if (!cJSON_IsArray(s))
        return am__layer_fail(l, AMUSE_EFORMAT,
                              "missing key 'batch_input_shape' (or 'shape'): a list of sizes");
    int n = cJSON_GetArraySize(s) - skip;
    if (n < 1 || n > AMUSE_MAX_DIMS - 1)
        return am__layer_fail(l, AMUSE_EFORMAT, "input shape must have 1 to %d axes",
                              AMUSE_MAX_DIMS - 1);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(cfg, "dtype");
    if (dtype && !cJSON_IsNull(dtype)) {
        if (!cJSON_IsString(dtype))
            return am__layer_fail(l, AMUSE_EFORMAT, "key 'dtype' must be a string");
        if (strcmp(dtype->valuestring, "int32") == 0 || strcmp(dtype->valuestring, "int64") == 0)
            l->out_dtype[0] = AMUSE_INT32;
        else if (strcmp(dtype->valuestring, "float32") != 0)
            return am__layer_fail(l, AMUSE_EUNSUPPORTED,
                                  "key 'dtype': '%s' (known: float32, int32, int64 read as int32)",
                                  dtype->valuestring);
    }
    int64_t dims[AMUSE_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(s, i + skip);
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e7 ||
            d->valuedouble != floor(d->valuedouble))
            return am__layer_fail(l, AMUSE_EFORMAT,
                                  "input shape axis %d must be a positive integer", i + skip);
        dims[i] = (int64_t)d->valuedouble;
    }
    return amuse_shape_make(&l->out_shape[0], n, dims);
}

static int input_build(struct am__layer *l)
{
    (void)l;
    return AMUSE_OK;
}

static size_t no_workspace(const struct am__layer *l, int64_t batch)
{
    (void)l;
    (void)batch;
    return 0;
}

static void input_forward(struct am__layer *l, struct am__call *c)
{
    (void)l;
    (void)c; /* the engine fills the output */
}

static void input_backward(struct am__layer *l, struct am__call *c)
{
    (void)l;
    (void)c;
}

const struct am__layer_type am__input_layer = {
    .class_name = "InputLayer",
    .base_name = "input",
    .configure = input_configure,
    .build = input_build,
    .workspace = no_workspace,
    .forward = input_forward,
    .backward = input_backward,
};

/* ---------------------------------------------------------------- Flatten
 * (batch, d1, d2, ...) -> (batch, d1*d2*...), row-major, which for channels-last images is Keras's
 * (h, w, c) order. */

static int flatten_configure(struct am__layer *l, const cJSON *cfg)
{
    return am__cfg_require_string(l, cfg, "data_format", "channels_last");
}

static int flatten_build(struct am__layer *l)
{
    int64_t n = amuse_shape_size(&l->in_shape[0]);
    return amuse_shape_make(&l->out_shape[0], 1, &n);
}

/* Flatten aliases its input (alias_input), so there is nothing to copy either way. */
static void flatten_forward(struct am__layer *l, struct am__call *c)
{
    (void)l;
    (void)c;
}

static void flatten_backward(struct am__layer *l, struct am__call *c)
{
    (void)l;
    (void)c;
}

const struct am__layer_type am__flatten_layer = {
    .class_name = "Flatten",
    .base_name = "flatten",
    .configure = flatten_configure,
    .build = flatten_build,
    .workspace = no_workspace,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .alias_input = 1,
};
