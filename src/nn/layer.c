/* layer.c - the layer registry, weight declaration and the typed readers of Keras config keys.
 * Readers report errors as "layer 'conv2d' (Conv2D): key 'kernel_size': ..." so a user can find
 * the line of their config at fault. No layer math lives here. */
#include "nn/layer.h"

#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct am__layer_type *const registry[] = {
    &am__input_layer,   &am__dense_layer,      &am__conv2d_layer,
    &am__maxpool2d_layer, &am__flatten_layer,  &am__dropout_layer,
    &am__activation_layer, &am__concatenate_layer, &am__add_layer, NULL};

const struct am__layer_type *am__layer_type_find(const char *class_name)
{
    for (int i = 0; registry[i]; i++)
        if (strcmp(registry[i]->class_name, class_name) == 0)
            return registry[i];
    return NULL;
}

int am__layer_fail(const struct am__layer *l, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return am__fail(status, "layer '%s' (%s): %s", l->name, l->type->class_name, msg);
}

struct am__weight *am__layer_add_weight(struct am__layer *l, const char *name, int ndim,
                                        const int64_t *dims, enum am__init init, int64_t fan_in,
                                        int64_t fan_out)
{
    if (l->n_weights >= AM__MAX_WEIGHTS)
        return NULL;
    struct am__weight *w = &l->w[l->n_weights++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    amuse_shape_make(&w->shape, ndim, dims);
    w->init = init;
    w->fan_in = fan_in;
    w->fan_out = fan_out;
    return w;
}

static void window_axis(int64_t in, int64_t k, int64_t stride, int same, int64_t *out,
                        int64_t *pad_before)
{
    if (same) {
        *out = (in + stride - 1) / stride;
        int64_t total = (*out - 1) * stride + k - in;
        *pad_before = total > 0 ? total / 2 : 0;
    } else {
        *out = in >= k ? (in - k) / stride + 1 : 0;
        *pad_before = 0;
    }
}

struct am__window2d am__window2d_of(const struct am__layer *l, const int kernel[2],
                                    int64_t out_channels)
{
    struct am__window2d g;
    const struct amuse_shape *in = &l->in_shape[0];
    g.h = in->dim[0];
    g.w = in->dim[1];
    g.c = in->dim[2];
    g.kh = kernel[0];
    g.kw = kernel[1];
    g.sh = l->cfg.strides[0];
    g.sw = l->cfg.strides[1];
    g.oc = out_channels;
    window_axis(g.h, g.kh, g.sh, l->cfg.padding_same, &g.oh, &g.pad_top);
    window_axis(g.w, g.kw, g.sw, l->cfg.padding_same, &g.ow, &g.pad_left);
    return g;
}

int am__cfg_int(const struct am__layer *l, const cJSON *cfg, const char *key, int required,
                int lo, int hi, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return am__layer_fail(l, AMUSE_EFORMAT, "missing key '%s'", key);
        return AMUSE_OK;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = cJSON_GetArrayItem(v, 0);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' is %g, outside [%d, %d]", key,
                              v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
    return AMUSE_OK;
}

int am__cfg_pair(const struct am__layer *l, const cJSON *cfg, const char *key, int required,
                 int out[2])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return am__layer_fail(l, AMUSE_EFORMAT, "missing key '%s'", key);
        return AMUSE_OK;
    }
    const cJSON *a = v, *b = v;
    if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2)
            return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be an integer or a pair", key);
        a = cJSON_GetArrayItem(v, 0);
        b = cJSON_GetArrayItem(v, 1);
    }
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble != floor(a->valuedouble) ||
        b->valuedouble != floor(b->valuedouble))
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be an integer or a pair", key);
    if (a->valuedouble < 1 || b->valuedouble < 1 || a->valuedouble > 4096 ||
        b->valuedouble > 4096)
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' values must be in [1, 4096]", key);
    out[0] = (int)a->valuedouble;
    out[1] = (int)b->valuedouble;
    return AMUSE_OK;
}

int am__cfg_float(const struct am__layer *l, const cJSON *cfg, const char *key, double lo, double hi,
                  float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsNumber(v))
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be a number", key);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' is %g, outside [%g, %g]", key,
                              v->valuedouble, lo, hi);
    *out = (float)v->valuedouble;
    return AMUSE_OK;
}

int am__cfg_bool(const struct am__layer *l, const cJSON *cfg, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsBool(v))
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be true or false", key);
    *out = cJSON_IsTrue(v);
    return AMUSE_OK;
}

static const char *const activation_names[] = {"linear", "relu", "sigmoid", "tanh", "softmax"};

const char *am__activation_name(enum am__activation a)
{
    return activation_names[a];
}

int am__cfg_activation(const struct am__layer *l, const cJSON *cfg, const char *key,
                       enum am__activation *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsString(v))
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be a string", key);
    for (int i = 0; i < (int)(sizeof activation_names / sizeof *activation_names); i++)
        if (strcmp(v->valuestring, activation_names[i]) == 0) {
            *out = (enum am__activation)i;
            return AMUSE_OK;
        }
    return am__layer_fail(l, AMUSE_EUNSUPPORTED,
                          "key '%s': unknown activation '%s' (known: linear, relu, sigmoid, "
                          "tanh, softmax)",
                          key, v->valuestring);
}

int am__cfg_padding(const struct am__layer *l, const cJSON *cfg, int *same)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "padding");
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "valid") == 0)
        *same = 0;
    else if (cJSON_IsString(v) && strcmp(v->valuestring, "same") == 0)
        *same = 1;
    else
        return am__layer_fail(l, AMUSE_EFORMAT, "key 'padding' must be \"valid\" or \"same\"");
    return AMUSE_OK;
}

int am__cfg_initializer(const struct am__layer *l, const cJSON *cfg, const char *key,
                        enum am__init *out)
{
    static const struct {
        const char *name, *class_name;
        enum am__init init;
    } known[] = {{"zeros", "Zeros", AM__INIT_ZEROS},
                 {"ones", "Ones", AM__INIT_ONES},
                 {"glorot_uniform", "GlorotUniform", AM__INIT_GLOROT_UNIFORM},
                 {"he_uniform", "HeUniform", AM__INIT_HE_UNIFORM}};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    const char *name = NULL;
    if (cJSON_IsString(v))
        name = v->valuestring;
    else if (cJSON_IsObject(v) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "class_name")))
        name = cJSON_GetObjectItemCaseSensitive(v, "class_name")->valuestring;
    if (!name)
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be a name or {\"class_name\": ...}",
                              key);
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name, known[i].name) == 0 || strcmp(name, known[i].class_name) == 0) {
            *out = known[i].init;
            return AMUSE_OK;
        }
    return am__layer_fail(l, AMUSE_EUNSUPPORTED,
                          "key '%s': unknown initializer '%s' (known: zeros, ones, "
                          "glorot_uniform, he_uniform)",
                          key, name);
}

int am__cfg_require_string(const struct am__layer *l, const cJSON *cfg, const char *key,
                           const char *supported)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsString(v) || strcmp(v->valuestring, supported) != 0)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "key '%s': only \"%s\" is supported", key,
                              supported);
    return AMUSE_OK;
}
