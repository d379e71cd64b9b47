/* schedule.c - Keras's LearningRateSchedule objects for an optimizer's "learning_rate":
 * ExponentialDecay, CosineDecay (with Keras 3's linear warmup) and PiecewiseConstantDecay, parsed
 * from {"class_name": ..., "config": {...}} and evaluated at an optimizer step (a batch), as Keras
 * does: the step is the number of updates already made, so the first update uses step 0.
 *
 * Values are computed in double and rounded to float once. It does not do Keras's other
 * schedules (InverseTimeDecay, PolynomialDecay, CosineDecayRestarts) or user-defined ones. */
#define _DEFAULT_SOURCE /* M_PI */
#include "nn/model_internal.h"

#include "core/internal.h"

#include <math.h>
#include <string.h>

/* One number at path.key, required or optional, in [lo, hi]; `*out` keeps its default if absent. */
static int schedule_number(const cJSON *cfg, const char *path, const char *key, int required,
                           double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return am__fail(AMUSE_EFORMAT, "%s.config.%s is missing", path, key);
        return AMUSE_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return am__fail(AMUSE_EFORMAT, "%s.config.%s must be a number", path, key);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi)) {
        if (hi >= 1e300)
            return am__fail(AMUSE_EFORMAT, "%s.config.%s must be >= %g (got %g)", path, key, lo,
                            v->valuedouble);
        return am__fail(AMUSE_EFORMAT, "%s.config.%s must be in [%g, %g] (got %g)", path, key, lo,
                        hi, v->valuedouble);
    }
    *out = v->valuedouble;
    return AMUSE_OK;
}

/* A number list at path.config.key with at least min_n and at most AM__MAX_PIECES + 1 entries. */
static int schedule_list(const cJSON *cfg, const char *path, const char *key, int min_n,
                         double *out, int *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key), *item;
    if (!v)
        return am__fail(AMUSE_EFORMAT, "%s.config.%s is missing", path, key);
    if (!cJSON_IsArray(v))
        return am__fail(AMUSE_EFORMAT, "%s.config.%s must be a list of numbers", path, key);
    int count = cJSON_GetArraySize(v);
    if (count < min_n || count > AM__MAX_PIECES + 1)
        return am__fail(AMUSE_EFORMAT, "%s.config.%s must have %d to %d entries (has %d)", path,
                        key, min_n, AM__MAX_PIECES + 1, count);
    int i = 0;
    cJSON_ArrayForEach(item, v)
    {
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
            return am__fail(AMUSE_EFORMAT, "%s.config.%s[%d] must be a number", path, key, i);
        out[i++] = item->valuedouble;
    }
    *n = count;
    return AMUSE_OK;
}

int am__schedule_parse(const cJSON *v, const char *path, struct am__schedule *s)
{
    memset(s, 0, sizeof *s);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(v, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(v, "config");
    if (!cJSON_IsObject(v) || !cJSON_IsString(cls))
        return am__fail(AMUSE_EFORMAT,
                        "%s must be a number or {\"class_name\": ..., \"config\": {...}}", path);
    if (!cJSON_IsObject(cfg))
        return am__fail(AMUSE_EFORMAT, "%s.config must be an object", path);
    const char *name = cls->valuestring;
    /* Keras's upper bound on a learning rate here is ours for a constant one. */
    const double lr_max = 1e3, big = 1e300;
    int rc;
    if (strcmp(name, "ExponentialDecay") == 0) {
        s->kind = AM__SCHEDULE_EXPONENTIAL;
        if ((rc = schedule_number(cfg, path, "initial_learning_rate", 1, 0, lr_max, &s->initial)) ||
            (rc = schedule_number(cfg, path, "decay_steps", 1, 0, big, &s->decay_steps)) ||
            (rc = schedule_number(cfg, path, "decay_rate", 1, 0, big, &s->decay_rate)))
            return rc;
        const cJSON *stair = cJSON_GetObjectItemCaseSensitive(cfg, "staircase");
        if (stair && !cJSON_IsBool(stair))
            return am__fail(AMUSE_EFORMAT, "%s.config.staircase must be true or false", path);
        s->staircase = cJSON_IsTrue(stair);
    } else if (strcmp(name, "CosineDecay") == 0) {
        s->kind = AM__SCHEDULE_COSINE;
        if ((rc = schedule_number(cfg, path, "initial_learning_rate", 1, 0, lr_max, &s->initial)) ||
            (rc = schedule_number(cfg, path, "decay_steps", 1, 0, big, &s->decay_steps)) ||
            (rc = schedule_number(cfg, path, "alpha", 0, 0, 1, &s->alpha)))
            return rc;
        const cJSON *target = cJSON_GetObjectItemCaseSensitive(cfg, "warmup_target");
        if (target && !cJSON_IsNull(target)) {
            s->warmup = 1;
            if ((rc = schedule_number(cfg, path, "warmup_target", 1, 0, lr_max,
                                      &s->warmup_target)) ||
                (rc = schedule_number(cfg, path, "warmup_steps", 0, 0, big, &s->warmup_steps)))
                return rc;
            if (s->warmup_steps != floor(s->warmup_steps))
                return am__fail(AMUSE_EFORMAT, "%s.config.warmup_steps must be a whole number",
                                path);
        } else {
            double steps = 0;
            if ((rc = schedule_number(cfg, path, "warmup_steps", 0, 0, big, &steps)))
                return rc;
            if (steps > 0)
                return am__fail(AMUSE_EFORMAT,
                                "%s.config.warmup_steps needs a warmup_target to warm up to", path);
        }
    } else if (strcmp(name, "PiecewiseConstantDecay") == 0) {
        s->kind = AM__SCHEDULE_PIECEWISE;
        int nb = 0, nv = 0;
        if ((rc = schedule_list(cfg, path, "boundaries", 1, s->boundaries, &nb)) ||
            (rc = schedule_list(cfg, path, "values", 2, s->values, &nv)))
            return rc;
        if (nb > AM__MAX_PIECES)
            return am__fail(AMUSE_EFORMAT, "%s.config.boundaries must have at most %d entries",
                            path, AM__MAX_PIECES);
        if (nv != nb + 1)
            return am__fail(AMUSE_EFORMAT,
                            "%s.config.values must have one more entry than boundaries (%d "
                            "boundaries, %d values)",
                            path, nb, nv);
        for (int i = 0; i < nb; i++) {
            if (s->boundaries[i] < 0)
                return am__fail(AMUSE_EFORMAT, "%s.config.boundaries[%d] must be >= 0", path, i);
            if (i > 0 && !(s->boundaries[i] > s->boundaries[i - 1]))
                return am__fail(AMUSE_EFORMAT,
                                "%s.config.boundaries must increase (entry %d is %g after %g)",
                                path, i, s->boundaries[i], s->boundaries[i - 1]);
        }
        for (int i = 0; i < nv; i++)
            if (!(s->values[i] >= 0 && s->values[i] <= lr_max))
                return am__fail(AMUSE_EFORMAT, "%s.config.values[%d] must be in [0, %g]", path, i,
                                lr_max);
        s->n_boundaries = nb;
    } else {
        return am__fail(AMUSE_EUNSUPPORTED,
                        "%s: unknown schedule '%s' (known: ExponentialDecay, CosineDecay, "
                        "PiecewiseConstantDecay)",
                        path, name);
    }
    if ((s->kind == AM__SCHEDULE_EXPONENTIAL || s->kind == AM__SCHEDULE_COSINE) &&
        !(s->decay_steps > 0))
        return am__fail(AMUSE_EFORMAT, "%s.config.decay_steps must be > 0", path);
    return AMUSE_OK;
}

/* Keras's formulas, with step = updates made so far:
 *   ExponentialDecay: initial * decay_rate ^ (step / decay_steps)   (staircase: floor the power)
 *   CosineDecay:      no warmup: initial * ((1 - alpha) * c + alpha) with
 *                       c = (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2;
 *                     warmup: initial + (target - initial) * step / warmup_steps while
 *                       step < warmup_steps, then the same decay from target over
 *                       step - warmup_steps (capped at decay_steps)
 *   PiecewiseConstantDecay: values[i] for boundaries[i-1] < step <= boundaries[i]. */
double am__schedule_value(const struct am__schedule *s, int64_t step)
{
    double t = (double)step;
    switch (s->kind) {
    case AM__SCHEDULE_EXPONENTIAL: {
        double p = t / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return s->initial * pow(s->decay_rate, p);
    }
    case AM__SCHEDULE_COSINE: {
        double from = s->initial;
        if (s->warmup) {
            if (t < s->warmup_steps)
                return s->initial + (s->warmup_target - s->initial) * (t / s->warmup_steps);
            from = s->warmup_target;
            t -= s->warmup_steps;
        }
        if (t > s->decay_steps)
            t = s->decay_steps;
        double c = 0.5 * (1.0 + cos(M_PI * t / s->decay_steps));
        return from * ((1.0 - s->alpha) * c + s->alpha);
    }
    case AM__SCHEDULE_PIECEWISE: {
        int i = 0;
        while (i < s->n_boundaries && t > s->boundaries[i])
            i++;
        return s->values[i];
    }
    case AM__SCHEDULE_NONE:
        break;
    }
    return 0;
}

const char *am__schedule_name(const struct am__schedule *s)
{
    switch (s->kind) {
    case AM__SCHEDULE_EXPONENTIAL:
        return "ExponentialDecay";
    case AM__SCHEDULE_COSINE:
        return "CosineDecay";
    case AM__SCHEDULE_PIECEWISE:
        return "PiecewiseConstantDecay";
    case AM__SCHEDULE_NONE:
        break;
    }
    return "constant";
}
