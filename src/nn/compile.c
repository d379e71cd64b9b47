/* compile.c - what Keras's compile() sets: the loss, the accuracy metric and the optimizer, with
 * Keras's defaults and Keras's (TensorFlow 2) update rules, so a recipe trains the same way here.
 *
 * Losses clip probabilities to [1e-7, 1 - 1e-7] and average over the batch. With a softmax output
 * and a cross-entropy loss the gradient is fused: d(loss)/d(logits) = (p - y) / batch. */
#define _DEFAULT_SOURCE
#include "nn/model_internal.h"

#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define EPSILON 1e-7f

static int parse_loss(const cJSON *v, enum am__loss *out)
{
    static const struct {
        const char *name;
        enum am__loss loss;
    } known[] = {{"categorical_crossentropy", AM__LOSS_CATEGORICAL_CROSSENTROPY},
                 {"sparse_categorical_crossentropy", AM__LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
                 {"binary_crossentropy", AM__LOSS_BINARY_CROSSENTROPY},
                 {"mean_squared_error", AM__LOSS_MEAN_SQUARED_ERROR},
                 {"mse", AM__LOSS_MEAN_SQUARED_ERROR}};
    if (!cJSON_IsString(v))
        return am__fail(AMUSE_EFORMAT, "compile.loss must be a string");
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(v->valuestring, known[i].name) == 0) {
            *out = known[i].loss;
            return AMUSE_OK;
        }
    return am__fail(AMUSE_EUNSUPPORTED,
                    "compile.loss: unknown loss '%s' (known: categorical_crossentropy, "
                    "sparse_categorical_crossentropy, binary_crossentropy, mean_squared_error)",
                    v->valuestring);
}

static int opt_number(const cJSON *cfg, const char *key, const char *alt, double lo, double hi,
                      float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v && alt)
        v = cJSON_GetObjectItemCaseSensitive(cfg, alt);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return am__fail(AMUSE_EFORMAT, "compile.optimizer.config.%s must be a number in [%g, %g]",
                        key, lo, hi);
    *out = (float)v->valuedouble;
    return AMUSE_OK;
}

static int parse_optimizer(const cJSON *v, struct am__optimizer *o)
{
    const char *name;
    const cJSON *cfg = NULL;
    if (cJSON_IsString(v)) {
        name = v->valuestring;
    } else if (cJSON_IsObject(v) &&
               cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "class_name"))) {
        name = cJSON_GetObjectItemCaseSensitive(v, "class_name")->valuestring;
        cfg = cJSON_GetObjectItemCaseSensitive(v, "config");
        if (cfg && !cJSON_IsObject(cfg))
            return am__fail(AMUSE_EFORMAT, "compile.optimizer.config must be an object");
    } else {
        return am__fail(AMUSE_EFORMAT,
                        "compile.optimizer must be a name or {\"class_name\": ..., \"config\": ...}");
    }
    memset(o, 0, sizeof *o);
    o->epsilon = EPSILON;
    if (strcasecmp(name, "sgd") == 0) {
        o->kind = AM__OPT_SGD;
        o->learning_rate = 0.01f;
    } else if (strcasecmp(name, "adam") == 0) {
        o->kind = AM__OPT_ADAM;
        o->learning_rate = 0.001f;
        o->beta_1 = 0.9f;
        o->beta_2 = 0.999f;
    } else if (strcasecmp(name, "rmsprop") == 0) {
        o->kind = AM__OPT_RMSPROP;
        o->learning_rate = 0.001f;
        o->rho = 0.9f;
    } else {
        return am__fail(AMUSE_EUNSUPPORTED,
                        "compile.optimizer: unknown optimizer '%s' (known: SGD, Adam, RMSprop)",
                        name);
    }
    if (!cfg)
        return AMUSE_OK;
    int rc;
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(cfg, "learning_rate");
    const char *lr_key = "learning_rate";
    if (!lr) {
        lr = cJSON_GetObjectItemCaseSensitive(cfg, "lr");
        lr_key = "lr";
    }
    if (cJSON_IsObject(lr)) { /* a LearningRateSchedule */
        char path[64];
        snprintf(path, sizeof path, "compile.optimizer.config.%s", lr_key);
        if ((rc = am__schedule_parse(lr, path, &o->schedule)))
            return rc;
        o->learning_rate = (float)am__schedule_value(&o->schedule, 0);
    } else if ((rc = opt_number(cfg, "learning_rate", "lr", 0, 1e3, &o->learning_rate))) {
        return rc;
    }
    if ((rc = opt_number(cfg, "momentum", NULL, 0, 1, &o->momentum)) ||
        (rc = opt_number(cfg, "beta_1", NULL, 0, 1, &o->beta_1)) ||
        (rc = opt_number(cfg, "beta_2", NULL, 0, 1, &o->beta_2)) ||
        (rc = opt_number(cfg, "epsilon", NULL, 0, 1, &o->epsilon)) ||
        (rc = opt_number(cfg, "rho", NULL, 0, 1, &o->rho)))
        return rc;
    const cJSON *nesterov = cJSON_GetObjectItemCaseSensitive(cfg, "nesterov");
    o->nesterov = cJSON_IsTrue(nesterov);
    const cJSON *amsgrad = cJSON_GetObjectItemCaseSensitive(cfg, "amsgrad");
    const cJSON *centered = cJSON_GetObjectItemCaseSensitive(cfg, "centered");
    if (cJSON_IsTrue(amsgrad) || cJSON_IsTrue(centered))
        return am__fail(AMUSE_EUNSUPPORTED,
                        "compile.optimizer: amsgrad and centered are not supported");
    return AMUSE_OK;
}

int am__compile_from_json(struct amuse_model *m, const cJSON *compile)
{
    if (!compile)
        return AMUSE_OK; /* inference-only model; compile later */
    if (!cJSON_IsObject(compile))
        return am__fail(AMUSE_EFORMAT, "'compile' must be an object");
    int rc;
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(compile, "loss");
    if (loss && (rc = parse_loss(loss, &m->loss)))
        return rc;
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(compile, "optimizer");
    if (opt && (rc = parse_optimizer(opt, &m->opt)))
        return rc;
    if (!opt) { /* Keras's default */
        cJSON *name = cJSON_CreateString("rmsprop");
        rc = name ? parse_optimizer(name, &m->opt) : am__fail(AMUSE_ENOMEM, "out of memory");
        cJSON_Delete(name);
        if (rc)
            return rc;
    }
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(compile, "metrics"), *v;
    if (metrics && !cJSON_IsArray(metrics))
        return am__fail(AMUSE_EFORMAT, "compile.metrics must be a list");
    m->metric_accuracy = 0;
    cJSON_ArrayForEach(v, metrics)
    {
        if (cJSON_IsString(v) && (strcmp(v->valuestring, "accuracy") == 0 ||
                                  strcmp(v->valuestring, "acc") == 0))
            m->metric_accuracy = 1;
        else
            return am__fail(AMUSE_EUNSUPPORTED, "compile.metrics: only \"accuracy\" is supported");
    }
    memset(m->opt_state, 0, 2 * (size_t)m->n_params * sizeof(float));
    m->opt.iterations = 0;
    return AMUSE_OK;
}

int amuse_model_compile(struct amuse_model *m, const char *compile_json)
{
    cJSON *c = cJSON_Parse(compile_json);
    if (!c || !cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return am__fail(AMUSE_EFORMAT, "compile: invalid JSON object");
    }
    int rc = am__compile_from_json(m, c);
    if (rc == AMUSE_OK) {
        if (cJSON_GetObjectItemCaseSensitive(m->doc, "compile"))
            cJSON_ReplaceItemInObjectCaseSensitive(m->doc, "compile", c);
        else
            cJSON_AddItemToObject(m->doc, "compile", c);
    } else
        cJSON_Delete(c);
    return rc;
}

/* ---------------------------------------------------------------- losses */

static inline float clip(float p)
{
    return p < EPSILON ? EPSILON : (p > 1.0f - EPSILON ? 1.0f - EPSILON : p);
}

static inline float target_of(const float *targets, const int32_t *labels, int64_t i, int64_t j,
                              int64_t width)
{
    if (targets)
        return targets[i * width + j];
    return labels[i] == j ? 1.0f : 0.0f;
}

float am__loss_forward(struct amuse_model *m, const float *p, const float *targets,
                       const int32_t *labels, const float *weights, int64_t rows, int64_t width,
                       float *grad, int fused)
{
    double total = 0, denom = 0;
    if (weights)
        for (int64_t i = 0; i < rows; i++)
            denom += weights[i];
    else
        denom = (double)rows;
    /* No row counts (everything masked): loss 0 and no gradient. */
    float inv = denom > 0 ? (float)(1.0 / denom) : 0.0f;
    for (int64_t i = 0; i < rows; i++) {
        const float *pi = p + i * width;
        float *gi = grad + i * width;
        float wi = weights ? weights[i] : 1.0f;
        if (wi == 0.0f) {
            memset(gi, 0, (size_t)width * sizeof(float));
            continue;
        }
        float scale = wi * inv;
        double sample = 0;
        /* The fused gradient of -sum y log softmax(z) is p * sum(y) - y; sum(y) is 1 for
         * one-hot targets, but soft targets need not sum to 1. */
        float ysum = 1.0f;
        if (fused && targets && m->loss == AM__LOSS_CATEGORICAL_CROSSENTROPY) {
            double t = 0;
            for (int64_t j = 0; j < width; j++)
                t += targets[i * width + j];
            ysum = (float)t;
        }
        for (int64_t j = 0; j < width; j++) {
            /* Binary cross-entropy takes a label as the target value of every output (as
             * am__count_correct does), not as a class index. */
            float y = m->loss == AM__LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && targets
                          ? ((int64_t)targets[i] == j ? 1.0f : 0.0f)
                      : m->loss == AM__LOSS_BINARY_CROSSENTROPY && !targets
                          ? (float)labels[i]
                          : target_of(targets, labels, i, j, width);
            float pc = clip(pi[j]);
            switch (m->loss) {
            case AM__LOSS_CATEGORICAL_CROSSENTROPY:
            case AM__LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
                if (y != 0.0f) /* pc >= 1e-7, so a zero target adds exactly 0: skip the log */
                    sample -= y * log(pc);
                /* Unfused: d/dp of -y log(clip(p)); zero where clipping is active. */
                gi[j] = fused ? (pi[j] * ysum - y) * scale
                              : (pc == pi[j] ? -y / pc * scale : 0.0f);
                break;
            case AM__LOSS_BINARY_CROSSENTROPY:
                sample -= y * log(pc) + (1 - y) * log(1 - pc);
                gi[j] = pc == pi[j] ? (pc - y) / (pc * (1 - pc)) * scale / (float)width : 0.0f;
                break;
            case AM__LOSS_MEAN_SQUARED_ERROR:
                sample += (double)(pi[j] - y) * (pi[j] - y);
                gi[j] = 2.0f * (pi[j] - y) * scale / (float)width;
                break;
            default:
                gi[j] = 0;
            }
        }
        if (m->loss == AM__LOSS_BINARY_CROSSENTROPY || m->loss == AM__LOSS_MEAN_SQUARED_ERROR)
            sample /= (double)width;
        total += wi * sample;
    }
    return denom > 0 ? (float)(total / denom) : 0.0f;
}

int64_t am__count_correct(const struct amuse_model *m, const float *p, const float *targets,
                          const int32_t *labels, const float *weights, int64_t rows, int64_t width,
                          int64_t *counted)
{
    int64_t correct = 0, n = 0;
    for (int64_t i = 0; i < rows; i++) {
        if (weights && weights[i] == 0.0f)
            continue;
        n++;
        const float *pi = p + i * width;
        if (m->loss == AM__LOSS_BINARY_CROSSENTROPY) {
            int64_t ok = 0;
            for (int64_t j = 0; j < width; j++) {
                float y = targets ? targets[i * width + j] : (float)labels[i];
                ok += (pi[j] > 0.5f) == (y > 0.5f);
            }
            correct += ok; /* divided by width below */
            continue;
        }
        int64_t best = 0, want = 0;
        for (int64_t j = 1; j < width; j++)
            if (pi[j] > pi[best])
                best = j;
        if (labels)
            want = labels[i];
        else if (m->loss == AM__LOSS_SPARSE_CATEGORICAL_CROSSENTROPY)
            want = (int64_t)targets[i];
        else
            for (int64_t j = 1; j < width; j++)
                if (targets[i * width + j] > targets[i * width + want])
                    want = j;
        correct += best == want;
    }
    if (counted)
        *counted = n;
    return m->loss == AM__LOSS_BINARY_CROSSENTROPY ? correct / (width > 0 ? width : 1) : correct;
}

/* ---------------------------------------------------------------- optimizers
 * Flat loops over the parameter block; lr is the constant rate or the schedule's value at the
 * step. Keras (TF2) rules:
 *   SGD:     v = momentum v - lr g; w += v            (nesterov: w += momentum v - lr g)
 *   Adam:    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *            w -= lr_t m / (sqrt(v) + eps)
 *   RMSprop: ms = rho ms + (1-rho) g^2; w -= lr g / (sqrt(ms) + eps)
 *            (momentum > 0: mom = momentum mom + lr g / sqrt(ms + eps); w -= mom, as TF does) */

float am__optimizer_learning_rate(const struct am__optimizer *o)
{
    if (o->schedule.kind == AM__SCHEDULE_NONE)
        return o->learning_rate;
    return (float)am__schedule_value(&o->schedule, o->iterations);
}

const char *am__optimizer_name(enum am__optimizer_kind kind)
{
    switch (kind) {
    case AM__OPT_SGD: return "SGD";
    case AM__OPT_ADAM: return "Adam";
    case AM__OPT_RMSPROP: return "RMSprop";
    }
    return "?";
}

float amuse_model_learning_rate(const struct amuse_model *m)
{
    return am__optimizer_learning_rate(&m->opt);
}

int64_t amuse_model_iterations(const struct amuse_model *m)
{
    return m->opt.iterations;
}

void am__optimizer_update(struct amuse_model *m)
{
    struct am__optimizer *o = &m->opt;
    int64_t n = m->n_trainable; /* moving statistics come after, never stepped */
    float *w = m->params, *g = m->grads, *s1 = m->opt_state, *s2 = m->opt_state + m->n_params;
    /* A schedule is evaluated at the updates made before this one, as Keras does. */
    float lr = am__optimizer_learning_rate(o), eps = o->epsilon;
    o->iterations++;
    switch (o->kind) {
    case AM__OPT_SGD: {
        float mu = o->momentum;
        if (mu == 0.0f) {
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; i++)
                w[i] -= lr * g[i];
        } else {
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; i++) {
                s1[i] = mu * s1[i] - lr * g[i];
                w[i] += o->nesterov ? mu * s1[i] - lr * g[i] : s1[i];
            }
        }
        break;
    }
    case AM__OPT_ADAM: {
        double t = (double)o->iterations;
        float b1 = o->beta_1, b2 = o->beta_2;
        float lr_t = (float)(lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)));
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; i++) {
            s1[i] = b1 * s1[i] + (1.0f - b1) * g[i];
            s2[i] = b2 * s2[i] + (1.0f - b2) * g[i] * g[i];
            w[i] -= lr_t * s1[i] / (sqrtf(s2[i]) + eps);
        }
        break;
    }
    case AM__OPT_RMSPROP: {
        float rho = o->rho, mu = o->momentum;
        if (mu == 0.0f) {
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; i++) {
                s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
                w[i] -= lr * g[i] / (sqrtf(s1[i]) + eps);
            }
        } else {
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < n; i++) {
                s1[i] = rho * s1[i] + (1.0f - rho) * g[i] * g[i];
                s2[i] = mu * s2[i] + lr * g[i] / sqrtf(s1[i] + eps);
                w[i] -= s2[i];
            }
        }
        break;
    }
    }
}
