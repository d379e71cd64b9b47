/* train_state.c - the training state a resumed fit continues from: one safetensors file,
 * AMUSE_TRAINING_STATE_FILE in a model directory, written atomically by the safetensors writer.
 *
 *   tensors   weights/<w>, slot1/<w>, slot2/<w> for every weight <w> (F32, the weight's shape;
 *             slot1/slot2 are the optimizer's two state blocks: SGD momentum, Adam m and v,
 *             RMSprop mean square and momentum), best_weights/<w> with restore_best_weights
 *   metadata  format "amuse-training-state", version "1", model, optimizer, iterations,
 *             learning_rate, epoch, train_samples, seed, monitor, shuffle_rng, rng/<layer>,
 *             best, wait, plateau_best, plateau_wait, plateau_cooldown, history (a JSON list)
 *
 * Floats are written as C99 hex floats and RNG states as hex words, so a resumed run continues
 * bit for bit. Loading validates the whole file against the model before changing anything.
 * It does not keep the shuffled index order (fit replays the shuffles from the seed) nor the
 * dataset: a resumed run must be given the same data. */
#define _POSIX_C_SOURCE 200809L
#include "nn/model_internal.h"

#include "amuse/safetensors.h"
#include "core/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FORMAT  "amuse-training-state"
#define STATE_VERSION "1"
#define NAME_MAX_LEN  128
#define KINDS         4 /* weights, slot1, slot2, best_weights */

static const char *const kind_prefix[KINDS] = {"weights/", "slot1/", "slot2/", "best_weights/"};

static char *state_path(const char *dir)
{
    size_t n = strlen(dir) + sizeof AMUSE_TRAINING_STATE_FILE + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, AMUSE_TRAINING_STATE_FILE);
    return p;
}

/* Where weight i's floats of the given kind live (best: the caller's copy of the parameters). */
static float *kind_data(struct amuse_model *m, int i, int kind, float *best)
{
    struct amuse_tensor v;
    amuse_model_weight_info(m, i, &v, NULL);
    ptrdiff_t at = (const float *)v.data - m->params;
    switch (kind) {
    case 0:
        return m->params + at;
    case 1:
        return m->opt_state + at;
    case 2:
        return m->opt_state + m->n_params + at;
    default:
        return best ? best + at : NULL;
    }
}

/* ---------------------------------------------------------------- metadata values */

struct meta {
    char **keys, **values;
    int n, cap;
    int failed;
};

static void meta_add(struct meta *mt, const char *key, const char *fmt, ...) AM__PRINTF(3, 4);

static void meta_add(struct meta *mt, const char *key, const char *fmt, ...)
{
    if (mt->failed)
        return;
    if (mt->n == mt->cap) {
        int cap = mt->cap ? 2 * mt->cap : 32;
        char **k = realloc(mt->keys, (size_t)cap * sizeof *k);
        if (k)
            mt->keys = k;
        char **v = realloc(mt->values, (size_t)cap * sizeof *v);
        if (v)
            mt->values = v;
        if (!k || !v) {
            mt->failed = 1;
            return;
        }
        mt->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *value = len >= 0 ? malloc((size_t)len + 1) : NULL;
    char *k = strdup(key);
    if (!value || !k) {
        free(value);
        free(k);
        va_end(ap2);
        mt->failed = 1;
        return;
    }
    vsnprintf(value, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    mt->keys[mt->n] = k;
    mt->values[mt->n] = value;
    mt->n++;
}

static void meta_release(struct meta *mt)
{
    for (int i = 0; i < mt->n; i++) {
        free(mt->keys[i]);
        free(mt->values[i]);
    }
    free(mt->keys);
    free(mt->values);
}

/* 17 significant digits read back to the same double (cJSON's own printing may drop the last
 * bit); JSON has no NaN, so a missing figure is null. */
static void add_number(cJSON *o, const char *key, double v)
{
    char text[40] = "null";
    if (isfinite(v))
        snprintf(text, sizeof text, "%.17g", v);
    cJSON_AddRawToObject(o, key, text);
}

static char *history_text(const struct amuse_epoch_log *h, int n)
{
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; list && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(list, e)) {
            cJSON_Delete(e);
            cJSON_Delete(list);
            return NULL;
        }
        cJSON_AddNumberToObject(e, "epoch", h[i].epoch);
        add_number(e, "loss", h[i].loss);
        add_number(e, "accuracy", h[i].accuracy);
        add_number(e, "val_loss", h[i].val_loss);
        add_number(e, "val_accuracy", h[i].val_accuracy);
        add_number(e, "train_seconds", h[i].train_seconds);
        add_number(e, "val_seconds", h[i].val_seconds);
        cJSON_AddNumberToObject(e, "train_samples", (double)h[i].train_samples);
        add_number(e, "learning_rate", h[i].learning_rate);
    }
    char *text = list ? cJSON_PrintUnformatted(list) : NULL;
    cJSON_Delete(list);
    return text;
}

/* ---------------------------------------------------------------- save */

int am__train_state_save(struct amuse_model *m, const char *dir, const struct am__fit_state *s,
                         const struct amuse_epoch_log *history)
{
    int rc = am__mkdir_p(dir);
    if (rc)
        return rc;
    int nw = m->n_weight_refs, kinds = s->best_weights ? KINDS : KINDS - 1;
    struct meta mt = {0};
    char *path = state_path(dir), *hist = history_text(history, s->epoch);
    struct amuse_st_entry *entries = calloc((size_t)nw * KINDS + 1, sizeof *entries);
    char(*names)[NAME_MAX_LEN] = calloc((size_t)nw * KINDS + 1, sizeof *names);
    if (!path || !hist || !entries || !names) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory writing the training state");
        goto out;
    }
    int n = 0;
    for (int k = 0; k < kinds; k++)
        for (int i = 0; i < nw; i++, n++) {
            struct amuse_tensor v;
            const char *name = amuse_model_weight_info(m, i, &v, NULL);
            snprintf(names[n], NAME_MAX_LEN, "%s%s", kind_prefix[k], name);
            entries[n].name = names[n];
            entries[n].shape = v.shape;
            entries[n].data = kind_data(m, i, k, s->best_weights);
        }
    const struct amuse_rng *r = &s->shuffle;
    meta_add(&mt, "format", STATE_FORMAT);
    meta_add(&mt, "version", STATE_VERSION);
    meta_add(&mt, "model", "%s", m->name);
    meta_add(&mt, "optimizer", "%s", am__optimizer_name(m->opt.kind));
    meta_add(&mt, "iterations", "%" PRId64, m->opt.iterations);
    meta_add(&mt, "learning_rate", "%a", (double)m->opt.learning_rate);
    meta_add(&mt, "epoch", "%d", s->epoch);
    meta_add(&mt, "train_samples", "%" PRId64, s->train_samples);
    meta_add(&mt, "seed", "%" PRIu64, s->seed);
    meta_add(&mt, "monitor", "%s", s->monitor);
    meta_add(&mt, "shuffle_rng", "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
             r->s[0], r->s[1], r->s[2], r->s[3]);
    for (int i = 0; i < m->n_layers; i++) {
        char key[NAME_MAX_LEN + 8];
        r = &m->layers[i].rng;
        snprintf(key, sizeof key, "rng/%s", m->layers[i].name);
        meta_add(&mt, key, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, r->s[0],
                 r->s[1], r->s[2], r->s[3]);
    }
    meta_add(&mt, "best", "%a", s->best);
    meta_add(&mt, "wait", "%d", s->wait);
    meta_add(&mt, "plateau_best", "%a", s->plateau_best);
    meta_add(&mt, "plateau_wait", "%d", s->plateau_wait);
    meta_add(&mt, "plateau_cooldown", "%d", s->plateau_cooldown);
    meta_add(&mt, "history", "%s", hist);
    if (mt.failed) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory writing the training state");
        goto out;
    }
    rc = amuse_safetensors_write(path, entries, n, (const char *const *)mt.keys,
                                 (const char *const *)mt.values, mt.n);
out:
    meta_release(&mt);
    free(names);
    free(entries);
    free(hist);
    free(path);
    return rc;
}

/* ---------------------------------------------------------------- load */

static int meta_get(const struct amuse_safetensors *st, const char *path, const char *key,
                    const char **out)
{
    *out = amuse_safetensors_metadata(st, key);
    if (!*out)
        return am__fail(AMUSE_EFORMAT, "%s: metadata '%s' is missing", path, key);
    return AMUSE_OK;
}

static int meta_int(const struct amuse_safetensors *st, const char *path, const char *key,
                    int64_t lo, int64_t hi, int64_t *out)
{
    const char *v;
    int rc = meta_get(st, path, key, &v);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return am__fail(AMUSE_EFORMAT,
                        "%s: metadata '%s' is '%.40s', not a whole number in "
                        "[%" PRId64 ", %" PRId64 "]",
                        path, key, v, lo, hi);
    *out = x;
    return AMUSE_OK;
}

static int meta_double(const struct amuse_safetensors *st, const char *path, const char *key,
                       double *out)
{
    const char *v;
    int rc = meta_get(st, path, key, &v);
    if (rc)
        return rc;
    char *end;
    *out = strtod(v, &end);
    if (end == v || *end)
        return am__fail(AMUSE_EFORMAT, "%s: metadata '%s' is '%.40s', not a number", path, key, v);
    return AMUSE_OK;
}

static int meta_rng(const struct amuse_safetensors *st, const char *path, const char *key,
                    struct amuse_rng *out)
{
    const char *v;
    int rc = meta_get(st, path, key, &v);
    if (rc)
        return rc;
    const char *p = v;
    for (int i = 0; i < 4; i++) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 16);
        if (errno || end - p != 16 || (i < 3 && *end != ' ') || (i == 3 && *end))
            return am__fail(AMUSE_EFORMAT,
                            "%s: metadata '%s' is '%.80s', not four 16-digit hex words", path, key,
                            v);
        out->s[i] = x;
        p = end + (i < 3);
    }
    if (!(out->s[0] | out->s[1] | out->s[2] | out->s[3]))
        return am__fail(AMUSE_EFORMAT, "%s: metadata '%s' is all zero (not an RNG state)", path,
                        key);
    return AMUSE_OK;
}

static double entry_number(const cJSON *e, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int parse_history(const char *path, const char *text, int n, struct amuse_epoch_log *h)
{
    /* A list of flat objects: two levels, checked before cJSON recurses. */
    int rc = am__json_precheck(text, strlen(text), 2);
    if (rc)
        return am__fail_prefix(rc, "%s: metadata 'history'", path);
    cJSON *list = cJSON_Parse(text);
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != n) {
        rc = am__fail(AMUSE_EFORMAT, "%s: metadata 'history' must be a JSON list of %d epochs",
                      path, n);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        if (!cJSON_IsObject(e) || entry_number(e, "epoch") != i + 1 ||
            !(entry_number(e, "train_samples") >= 0)) {
            rc = am__fail(AMUSE_EFORMAT,
                          "%s: metadata 'history' entry %d is not epoch %d with "
                          "its figures",
                          path, i, i + 1);
            goto out;
        }
        struct amuse_epoch_log *l = &h[i];
        memset(l, 0, sizeof *l);
        l->epoch = i + 1;
        l->loss = entry_number(e, "loss");
        l->accuracy = entry_number(e, "accuracy");
        l->val_loss = entry_number(e, "val_loss");
        l->val_accuracy = entry_number(e, "val_accuracy");
        l->train_seconds = entry_number(e, "train_seconds");
        l->val_seconds = entry_number(e, "val_seconds");
        l->train_samples = (int64_t)entry_number(e, "train_samples");
        l->learning_rate = entry_number(e, "learning_rate");
    }
out:
    cJSON_Delete(list);
    return rc;
}

int am__train_state_load(struct amuse_model *m, const char *dir, const struct am__fit_state *want,
                         int max_epochs, int64_t *idx, int shuffle, struct am__fit_state *s,
                         struct amuse_epoch_log *history)
{
    char *path = state_path(dir);
    struct amuse_safetensors st = {0};
    struct amuse_rng *layer_rng = calloc((size_t)m->n_layers + 1, sizeof *layer_rng);
    struct amuse_epoch_log *h = calloc((size_t)max_epochs + 1, sizeof *h);
    int rc = AMUSE_OK;
    if (!path || !layer_rng || !h) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory reading the training state");
        goto out;
    }
    int kinds = want->best_weights ? KINDS : KINDS - 1;
    /* Three or four copies of the parameters and a header. */
    size_t cap = (size_t)KINDS * (size_t)m->n_params * sizeof(float) + AMUSE_SAFETENSORS_MAX_HEADER;
    if ((rc = amuse_safetensors_load(&st, path, cap)))
        goto out;

    const char *v;
    if ((rc = meta_get(&st, path, "format", &v)))
        goto out;
    if (strcmp(v, STATE_FORMAT) != 0) {
        rc = am__fail(AMUSE_EFORMAT, "%s: metadata 'format' is '%.40s', not '%s'", path, v,
                      STATE_FORMAT);
        goto out;
    }
    if ((rc = meta_get(&st, path, "version", &v)))
        goto out;
    if (strcmp(v, STATE_VERSION) != 0) {
        rc = am__fail(AMUSE_EFORMAT, "%s: metadata 'version' is '%.40s'; this build reads %s", path,
                      v, STATE_VERSION);
        goto out;
    }
    if ((rc = meta_get(&st, path, "model", &v)))
        goto out;
    if (strcmp(v, m->name) != 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: metadata 'model' is '%.128s', but this run trains '%s'",
                      path, v, m->name);
        goto out;
    }
    if ((rc = meta_get(&st, path, "optimizer", &v)))
        goto out;
    if (strcmp(v, am__optimizer_name(m->opt.kind)) != 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: metadata 'optimizer' is '%.40s', but this run uses %s",
                      path, v, am__optimizer_name(m->opt.kind));
        goto out;
    }
    if ((rc = meta_get(&st, path, "monitor", &v)))
        goto out;
    if (strcmp(v, want->monitor) != 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: metadata 'monitor' is '%.40s', but this run monitors %s",
                      path, v, want->monitor);
        goto out;
    }
    memset(s, 0, sizeof *s);
    int64_t iterations, epoch, samples, seed, wait, pwait, pcool;
    double lr;
    if ((rc = meta_int(&st, path, "iterations", 0, INT64_MAX, &iterations)) ||
        (rc = meta_int(&st, path, "epoch", 1, 1000000, &epoch)) ||
        (rc = meta_int(&st, path, "train_samples", 1, INT64_MAX, &samples)) ||
        (rc = meta_int(&st, path, "seed", 0, INT64_MAX, &seed)) ||
        (rc = meta_int(&st, path, "wait", 0, 1000000, &wait)) ||
        (rc = meta_int(&st, path, "plateau_wait", 0, 1000000, &pwait)) ||
        (rc = meta_int(&st, path, "plateau_cooldown", 0, 1000000, &pcool)) ||
        (rc = meta_double(&st, path, "learning_rate", &lr)) ||
        (rc = meta_double(&st, path, "best", &s->best)) ||
        (rc = meta_double(&st, path, "plateau_best", &s->plateau_best)) ||
        (rc = meta_rng(&st, path, "shuffle_rng", &s->shuffle)))
        goto out;
    if (!(lr >= 0 && lr <= 1e3)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: metadata 'learning_rate' must be in [0, 1000]", path);
        goto out;
    }
    if (samples != want->train_samples) {
        rc = am__fail(AMUSE_EINVAL,
                      "%s: metadata 'train_samples' is %" PRId64 ", but this run trains on %" PRId64
                      " samples (the same data and validation_split are needed to resume)",
                      path, samples, want->train_samples);
        goto out;
    }
    if ((uint64_t)seed != want->seed) {
        rc = am__fail(AMUSE_EINVAL,
                      "%s: metadata 'seed' is %" PRId64 ", but this run's seed is %" PRIu64, path,
                      seed, want->seed);
        goto out;
    }
    if (epoch >= max_epochs) {
        rc = am__fail(AMUSE_EINVAL,
                      "%s: metadata 'epoch': the run already reached epoch %" PRId64
                      "; ask for more epochs than that to resume (now %d)",
                      path, epoch, max_epochs);
        goto out;
    }
    /* The shuffled order is not stored: replay the shuffles from the seed, which must land on
     * the stored generator (another seed or shuffle setting would not). */
    struct amuse_rng replay = want->shuffle;
    for (int64_t e = 0; shuffle && e < epoch; e++)
        amuse_rng_shuffle(&replay, idx, samples);
    if (memcmp(&replay, &s->shuffle, sizeof replay) != 0) {
        rc = am__fail(AMUSE_EINVAL,
                      "%s: metadata 'shuffle_rng' does not follow from seed %" PRIu64
                      " over %" PRId64 " epochs (was fit.shuffle changed?)",
                      path, want->seed, epoch);
        goto out;
    }
    for (int i = 0; i < m->n_layers; i++) {
        char key[NAME_MAX_LEN + 8];
        snprintf(key, sizeof key, "rng/%s", m->layers[i].name);
        if ((rc = meta_rng(&st, path, key, &layer_rng[i])))
            goto out;
    }
    if ((rc = meta_get(&st, path, "history", &v)) || (rc = parse_history(path, v, (int)epoch, h)))
        goto out;

    /* Every tensor: present, F32, the weight's shape; nothing else in the file. */
    int nw = m->n_weight_refs;
    for (int k = 0; k < kinds; k++)
        for (int i = 0; i < nw; i++) {
            char name[NAME_MAX_LEN];
            struct amuse_tensor w;
            snprintf(name, sizeof name, "%s%s", kind_prefix[k],
                     amuse_model_weight_info(m, i, &w, NULL));
            const struct amuse_st_tensor *t = amuse_safetensors_find(&st, name);
            if (!t) {
                rc = am__fail(AMUSE_EINVAL, "%s: tensor '%s' is missing%s", path, name,
                              k == 3 ? " (restore_best_weights needs the best weights; the run "
                                       "that wrote this state did not keep them)"
                                     : " (a state of another model?)");
                goto out;
            }
            if (strcmp(t->dtype, "F32") != 0 || !amuse_shape_equal(&t->shape, &w.shape)) {
                char a[96], b[96];
                rc = am__fail(AMUSE_EINVAL, "%s: tensor '%s' is %s %s but the model needs F32 %s",
                              path, name, t->dtype, amuse_shape_format(&t->shape, 0, a, sizeof a),
                              amuse_shape_format(&w.shape, 0, b, sizeof b));
                goto out;
            }
        }
    for (int j = 0; j < st.n_tensors; j++) {
        const char *name = st.tensors[j].name;
        int known = 0;
        for (int k = 0; k < KINDS && !known; k++) {
            size_t n = strlen(kind_prefix[k]);
            struct amuse_tensor w;
            known = strncmp(name, kind_prefix[k], n) == 0 &&
                    amuse_model_find_weight(m, name + n, &w, NULL) == AMUSE_OK;
        }
        if (!known) {
            amuse_clear_error();
            rc = am__fail(AMUSE_EINVAL, "%s: tensor '%.200s' is not a weight of model '%s'", path,
                          name, m->name);
            goto out;
        }
    }

    /* All checked: now change the model. */
    for (int k = 0; k < kinds; k++)
        for (int i = 0; i < nw; i++) {
            char name[NAME_MAX_LEN];
            snprintf(name, sizeof name, "%s%s", kind_prefix[k],
                     amuse_model_weight_info(m, i, NULL, NULL));
            amuse_safetensors_to_f32(amuse_safetensors_find(&st, name),
                                     kind_data(m, i, k, want->best_weights));
        }
    m->opt.iterations = iterations;
    if (want->plateau) /* the rate ReduceLROnPlateau left; otherwise the config's */
        m->opt.learning_rate = (float)lr;
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].rng = layer_rng[i];
    memcpy(history, h, (size_t)epoch * sizeof *h);
    s->epoch = (int)epoch;
    s->train_samples = samples;
    s->seed = (uint64_t)seed;
    s->monitor = want->monitor;
    s->wait = (int)wait;
    s->plateau_wait = (int)pwait;
    s->plateau_cooldown = (int)pcool;
    s->best_weights = want->best_weights;
    s->plateau = want->plateau;
out:
    amuse_safetensors_release(&st);
    free(h);
    free(layer_rng);
    free(path);
    return rc;
}
