/* layer.c - the layer registry, weight declaration and the typed readers of Keras config keys.
 * Readers report errors as "layer 'conv2d' (Conv2D): key 'kernel_size': ..." so a user can find
 * the line of their config at fault. No layer math lives here. */
#include "nn/layer.h"

#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct am__layer_type *const registry[] = {
    &am__input_layer,       &am__dense_layer,   &am__conv2d_layer, &am__maxpool2d_layer,
    &am__flatten_layer,     &am__dropout_layer, &am__activation_layer,
    &am__concatenate_layer, &am__add_layer,     &am__embedding_layer, &am__lstm_layer,
    &am__gru_layer,         &am__time_distributed_layer,
    &am__depthwise_conv2d_layer, &am__batchnorm_layer, &am__avgpool2d_layer,
    &am__global_avgpool2d_layer, NULL};

const struct am__layer_type *am__layer_type_find(const char *class_name)
{
    for (int i = 0; registry[i]; i++)
        if (strcmp(registry[i]->class_name, class_name) == 0)
            return registry[i];
    return NULL;
}

const char *am__layer_type_names(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; registry[i] && at < len; i++) {
        int n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", registry[i]->class_name);
        if (n < 0)
            break;
        at += (size_t)n;
    }
    return buf;
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
                                        const int64_t *dims, struct am__init init, int64_t fan_in,
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

struct am__weight *am__layer_weight(struct am__layer *l, const char *name)
{
    for (int k = 0; k < l->n_weights; k++)
        if (strcmp(l->w[k].name, name) == 0)
            return &l->w[k];
    return NULL;
}

/* ---------------------------------------------------------------- initializers */

/* Keras's Orthogonal: a (rows, cols) matrix with rows = product of all axes but the last; draw it
 * normal, orthonormalise the shorter side (Gram-Schmidt in double, which is QR with a positive
 * diagonal of R, as Keras's sign correction makes it), scale by the gain. */
static void init_orthogonal(struct am__weight *w, struct amuse_rng *rng)
{
    int64_t n = amuse_shape_size(&w->shape);
    int64_t cols = w->shape.ndim > 0 ? w->shape.dim[w->shape.ndim - 1] : 1;
    int64_t rows = cols > 0 ? n / cols : 0;
    /* Orthonormal vectors of length `len`, `count` of them (count <= len). */
    int transpose = rows < cols;
    int64_t count = transpose ? rows : cols, len = transpose ? cols : rows;
    double *q = malloc((size_t)(count * len + 1) * sizeof *q);
    if (!q) { /* out of memory: fall back to a scaled normal draw, still a valid start */
        for (int64_t i = 0; i < n; i++)
            w->value[i] = w->init.a * amuse_rng_normal(rng) / (float)sqrt((double)(len ? len : 1));
        return;
    }
    for (int64_t i = 0; i < count * len; i++)
        q[i] = amuse_rng_normal(rng);
    for (int64_t v = 0; v < count; v++) {
        double *qv = q + v * len;
        for (int pass = 0; pass < 2; pass++) /* twice is enough for float accuracy */
            for (int64_t u = 0; u < v; u++) {
                const double *qu = q + u * len;
                double dot = 0;
                for (int64_t i = 0; i < len; i++)
                    dot += qu[i] * qv[i];
                for (int64_t i = 0; i < len; i++)
                    qv[i] -= dot * qu[i];
            }
        double norm = 0;
        for (int64_t i = 0; i < len; i++)
            norm += qv[i] * qv[i];
        norm = sqrt(norm);
        for (int64_t i = 0; i < len; i++)
            qv[i] = norm > 0 ? qv[i] / norm : 0.0;
    }
    /* Vector v is column v of the (rows, cols) matrix, or row v when transposed. */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            w->value[r * cols + c] =
                (float)(w->init.a * (transpose ? q[r * len + c] : q[c * len + r]));
    free(q);
}

void am__weight_init(struct am__weight *w, struct amuse_rng *rng)
{
    int64_t n = amuse_shape_size(&w->shape);
    double limit = 0;
    switch (w->init.kind) {
    case AM__INIT_ORTHOGONAL: init_orthogonal(w, rng); return;
    case AM__INIT_GLOROT_UNIFORM: limit = sqrt(6.0 / (double)(w->fan_in + w->fan_out)); break;
    case AM__INIT_HE_UNIFORM: limit = sqrt(6.0 / (double)w->fan_in); break;
    default: break;
    }
    for (int64_t j = 0; j < n; j++) {
        switch (w->init.kind) {
        case AM__INIT_ZEROS: w->value[j] = 0.0f; break;
        case AM__INIT_ONES: w->value[j] = 1.0f; break;
        case AM__INIT_UNIT_FORGET:
            w->value[j] = j >= (int64_t)w->init.a && j < 2 * (int64_t)w->init.a ? 1.0f : 0.0f;
            break;
        case AM__INIT_RANDOM_UNIFORM:
            w->value[j] = w->init.a + (w->init.b - w->init.a) * amuse_rng_uniform(rng);
            break;
        case AM__INIT_RANDOM_NORMAL: w->value[j] = w->init.a + w->init.b * amuse_rng_normal(rng); break;
        default: w->value[j] = (float)((2.0 * amuse_rng_uniform(rng) - 1.0) * limit); break;
        }
    }
}

/* ---------------------------------------------------------------- geometry */

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
                                    const int strides[2], int padding_same, int64_t out_channels)
{
    struct am__window2d g;
    const struct amuse_shape *in = &l->in_shape[0];
    g.h = in->dim[0];
    g.w = in->dim[1];
    g.c = in->dim[2];
    g.kh = kernel[0];
    g.kw = kernel[1];
    g.sh = strides[0];
    g.sw = strides[1];
    g.oc = out_channels;
    window_axis(g.h, g.kh, g.sh, padding_same, &g.oh, &g.pad_top);
    window_axis(g.w, g.kw, g.sw, padding_same, &g.ow, &g.pad_left);
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

/* A number from an initializer's config object, keeping *out when absent. */
static int init_number(const struct am__layer *l, const char *key, const cJSON *icfg,
                       const char *name, float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(icfg, name);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e6)
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s': config.%s must be a finite number", key,
                              name);
    *out = (float)v->valuedouble;
    return AMUSE_OK;
}

int am__cfg_initializer(const struct am__layer *l, const cJSON *cfg, const char *key,
                        struct am__init *out)
{
    static const struct {
        const char *name, *class_name;
        enum am__init_kind kind;
        float a, b; /* Keras's defaults */
    } known[] = {{"zeros", "Zeros", AM__INIT_ZEROS, 0, 0},
                 {"ones", "Ones", AM__INIT_ONES, 0, 0},
                 {"glorot_uniform", "GlorotUniform", AM__INIT_GLOROT_UNIFORM, 0, 0},
                 {"he_uniform", "HeUniform", AM__INIT_HE_UNIFORM, 0, 0},
                 {"random_uniform", "RandomUniform", AM__INIT_RANDOM_UNIFORM, -0.05f, 0.05f},
                 {"random_normal", "RandomNormal", AM__INIT_RANDOM_NORMAL, 0.0f, 0.05f},
                 {"orthogonal", "Orthogonal", AM__INIT_ORTHOGONAL, 1.0f, 0}};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    const char *name = NULL;
    const cJSON *icfg = NULL;
    if (cJSON_IsString(v))
        name = v->valuestring;
    else if (cJSON_IsObject(v) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "class_name"))) {
        name = cJSON_GetObjectItemCaseSensitive(v, "class_name")->valuestring;
        icfg = cJSON_GetObjectItemCaseSensitive(v, "config");
    }
    if (!name)
        return am__layer_fail(l, AMUSE_EFORMAT, "key '%s' must be a name or {\"class_name\": ...}",
                              key);
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name, known[i].name) == 0 || strcmp(name, known[i].class_name) == 0) {
            struct am__init init = {known[i].kind, known[i].a, known[i].b};
            int rc = 0;
            if (init.kind == AM__INIT_RANDOM_UNIFORM)
                rc = init_number(l, key, icfg, "minval", &init.a) ||
                     init_number(l, key, icfg, "maxval", &init.b);
            else if (init.kind == AM__INIT_RANDOM_NORMAL)
                rc = init_number(l, key, icfg, "mean", &init.a) ||
                     init_number(l, key, icfg, "stddev", &init.b);
            else if (init.kind == AM__INIT_ORTHOGONAL)
                rc = init_number(l, key, icfg, "gain", &init.a);
            if (rc)
                return AMUSE_EFORMAT;
            if (init.kind == AM__INIT_RANDOM_UNIFORM && !(init.a <= init.b))
                return am__layer_fail(l, AMUSE_EFORMAT, "key '%s': minval is above maxval", key);
            if (init.kind == AM__INIT_RANDOM_NORMAL && !(init.b >= 0))
                return am__layer_fail(l, AMUSE_EFORMAT, "key '%s': stddev is negative", key);
            *out = init;
            return AMUSE_OK;
        }
    return am__layer_fail(l, AMUSE_EUNSUPPORTED,
                          "key '%s': unknown initializer '%s' (known: zeros, ones, "
                          "glorot_uniform, he_uniform, random_uniform, random_normal, orthogonal)",
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
