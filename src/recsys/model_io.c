/* model_io.c - a recommender as a directory: config.json, model.safetensors, the id maps
 * (users.txt, items.txt) and item data (item_meta.tsv); and attaching item titles and tags with
 * their content vectors; the training-time evaluation (eval.json). Every file is written atomically through the core helpers. It does not
 * version directories (the server's repository does: <repo>/<model>/<version>/). */
#define _POSIX_C_SOURCE 200809L
#include "recsys/recsys_internal.h"

#include "amuse/safetensors.h"
#include "amuse/word2vec.h"
#include "core/internal.h"
#include "text/word2vec_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ------------------------------------------------------------------------------- item data */

static char *dup_or_null(const char *s)
{
    return *s ? strdup(s) : NULL;
}

/* Add the unit word vectors of the words of text to acc; returns how many were found. */
static int add_words(struct amuse_word_vectors *wv, const char *text, double *acc)
{
    char word[AMUSE_W2V_MAX_WORD_BYTES + 1];
    int found = 0;
    for (const char *s = text; *s;) {
        while (*s && !isalnum((unsigned char)*s) && !((unsigned char)*s & 0x80))
            s++;
        size_t n = 0;
        while (*s && (isalnum((unsigned char)*s) || ((unsigned char)*s & 0x80))) {
            if (n < AMUSE_W2V_MAX_WORD_BYTES)
                word[n++] = (char)tolower((unsigned char)*s);
            s++;
        }
        if (n == 0)
            continue;
        word[n] = '\0';
        int64_t row = amuse_vocab_find(wv->vocab, word);
        if (row < 0)
            continue;
        for (int k = 0; k < wv->dim; k++)
            acc[k] += wv->unit[(size_t)row * wv->dim + k];
        found++;
    }
    return found;
}

int amuse_rec_attach_items(struct amuse_rec_model *m, const char *path,
                           struct amuse_word_vectors *wv, int64_t *unknown)
{
    if (unknown)
        *unknown = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = am__read_file(path, AM__REC_MAX_FILE, &text, &len);
    if (rc)
        return rc;
    struct amuse_rec_items *it = calloc(1, sizeof *it);
    float *content = NULL;
    double *acc = NULL;
    if (it) {
        it->n = m->n_items;
        it->title = calloc((size_t)m->n_items + 1, sizeof *it->title);
        it->tags = calloc((size_t)m->n_items + 1, sizeof *it->tags);
    }
    if (!it || !it->title || !it->tags) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    int64_t line = 0, skipped = 0;
    for (char *s = text, *end; s < text + len; s = end + 1) {
        line++;
        end = memchr(s, '\n', (size_t)(text + len - s));
        if (!end)
            end = text + len;
        if (end - s > AMUSE_REC_MAX_LINE) {
            rc = am__fail(AMUSE_ETOOBIG, "%s:%lld: line longer than %d bytes", path,
                          (long long)line, AMUSE_REC_MAX_LINE);
            goto out;
        }
        if (s == end || *s == '#')
            continue;
        char *f[3] = {0};
        int nf = am__rec_split_fields(s, end, '\t', f, 3);
        if (nf < 2) {
            rc = am__fail(AMUSE_EFORMAT, "%s:%lld: expected id<TAB>title[<TAB>tags]", path,
                          (long long)line);
            goto out;
        }
        int64_t i = amuse_vocab_find(m->items, f[0]);
        if (i < 0) {
            skipped++;
            continue;
        }
        free(it->title[i]);
        free(it->tags[i]);
        it->title[i] = dup_or_null(f[1]);
        it->tags[i] = nf > 2 ? dup_or_null(f[2]) : NULL;
        if ((*f[1] && !it->title[i]) || (nf > 2 && *f[2] && !it->tags[i])) {
            rc = am__fail(AMUSE_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (wv) {
        if ((rc = amuse_word_vectors_normalise(wv)))
            goto out;
        int d = wv->dim;
        content = calloc((size_t)m->n_items * d, sizeof *content);
        acc = malloc((size_t)d * sizeof *acc);
        if (!content || !acc) {
            rc = am__fail(AMUSE_ENOMEM, "out of memory for content vectors");
            goto out;
        }
        for (int64_t i = 0; i < m->n_items; i++) {
            memset(acc, 0, (size_t)d * sizeof *acc);
            int found = 0;
            if (it->title[i])
                found += add_words(wv, it->title[i], acc);
            if (it->tags[i])
                found += add_words(wv, it->tags[i], acc);
            double norm = 0;
            for (int k = 0; k < d; k++)
                norm += acc[k] * acc[k];
            if (!found || norm <= 0)
                continue;
            norm = 1 / sqrt(norm);
            for (int k = 0; k < d; k++)
                content[(size_t)i * d + k] = (float)(acc[k] * norm);
        }
        free(m->content);
        m->content = content;
        m->content_dim = d;
        content = NULL;
    }
    am__rec_items_free(m->meta, m->n_items);
    m->meta = it;
    it = NULL;
    if (unknown)
        *unknown = skipped;
out:
    am__rec_items_free(it, m->n_items);
    free(content);
    free(acc);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------------------ save */

static int write_config(const struct amuse_rec_model *m, const char *path)
{
    const struct amuse_rec_options *o = &m->opt;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    cJSON_AddStringToObject(j, "type", "recommender");
    cJSON_AddStringToObject(j, "algo", amuse_rec_algo_name(o->algo));
    cJSON_AddNumberToObject(j, "users", (double)m->n_users);
    cJSON_AddNumberToObject(j, "items", (double)m->n_items);
    cJSON_AddNumberToObject(j, "events", (double)m->seen->nnz);
    cJSON_AddNumberToObject(j, "factors", m->factors);
    cJSON_AddNumberToObject(j, "iters", o->iters);
    cJSON_AddNumberToObject(j, "reg", o->reg);
    cJSON_AddNumberToObject(j, "alpha", o->alpha);
    cJSON_AddStringToObject(j, "solver", o->solver == AMUSE_REC_SOLVER_DIRECT ? "direct" : "cg");
    cJSON_AddNumberToObject(j, "cg_steps", o->cg_steps);
    cJSON_AddNumberToObject(j, "learning_rate", o->learning_rate);
    cJSON_AddNumberToObject(j, "neighbours", m->neighbours);
    cJSON_AddNumberToObject(j, "shrink", o->shrink);
    cJSON_AddBoolToObject(j, "binary", o->binary);
    cJSON_AddNumberToObject(j, "ipw", o->ipw);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "content_dim", m->content_dim);
    cJSON_AddNumberToObject(j, "train_seconds", m->train_seconds);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's buffer ends with the NUL we overwrite; length + 1 */
    int rc = am__write_file_atomic(path, text, len + 1);
    free(text);
    return rc;
}

static int write_meta(const struct amuse_rec_model *m, const char *path)
{
    struct am__atomic_file af;
    int rc = am__atomic_open(&af, path);
    if (rc)
        return rc;
    for (int64_t i = 0; i < m->n_items; i++)
        if (m->meta->title[i] || m->meta->tags[i])
            fprintf(af.f, "%s\t%s\t%s\n", amuse_vocab_word(m->items, i),
                    m->meta->title[i] ? m->meta->title[i] : "",
                    m->meta->tags[i] ? m->meta->tags[i] : "");
    rc = am__atomic_commit(&af);
    if (rc)
        am__atomic_abort(&af);
    return rc;
}

static struct amuse_shape shape2(int64_t a, int64_t b)
{
    struct amuse_shape s;
    int64_t dims[2] = {a, b};
    amuse_shape_make(&s, b < 0 ? 1 : 2, dims);
    return s;
}

int amuse_rec_model_save(const struct amuse_rec_model *m, const char *dir)
{
    int rc = am__mkdir_p(dir);
    if (rc)
        return rc;
    char *paths[5] = {join(dir, "config.json"), join(dir, "model.safetensors"),
                      join(dir, "users.txt"), join(dir, "items.txt"), join(dir, "item_meta.tsv")};
    int64_t ni = m->n_items, nu = m->n_users, nnz = m->seen->nnz, nb = m->neighbours;
    float *counts = malloc(((size_t)nu + 1) * sizeof *counts);
    float *seen = malloc(((size_t)nnz + 1) * sizeof *seen);
    float *nbr = malloc(((size_t)ni * nb + 1) * sizeof *nbr);
    for (int p = 0; p < 5; p++)
        if (!paths[p])
            rc = AMUSE_ENOMEM;
    if (rc || !counts || !seen || !nbr) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t u = 0; u < nu; u++)
        counts[u] = (float)(m->seen->indptr[u + 1] - m->seen->indptr[u]);
    for (int64_t e = 0; e < nnz; e++)
        seen[e] = (float)m->seen->indices[e];
    for (int64_t e = 0; e < ni * nb; e++)
        nbr[e] = (float)m->nbr_index[e];
    struct amuse_st_entry en[10];
    int n = 0;
    en[n++] = (struct amuse_st_entry){"popularity", shape2(ni, -1), m->popularity};
    en[n++] = (struct amuse_st_entry){"neighbours/index", shape2(ni, nb), nbr};
    en[n++] = (struct amuse_st_entry){"neighbours/similarity", shape2(ni, nb), m->nbr_sim};
    en[n++] = (struct amuse_st_entry){"seen/counts", shape2(nu, -1), counts};
    en[n++] = (struct amuse_st_entry){"seen/items", shape2(nnz, -1), seen};
    en[n++] = (struct amuse_st_entry){"seen/values", shape2(nnz, -1), m->seen->values};
    if (m->factors) {
        en[n++] = (struct amuse_st_entry){"user_factors", shape2(nu, m->factors), m->user_factors};
        en[n++] = (struct amuse_st_entry){"item_factors", shape2(ni, m->factors), m->item_factors};
    }
    if (m->item_bias)
        en[n++] = (struct amuse_st_entry){"item_bias", shape2(ni, -1), m->item_bias};
    if (m->content)
        en[n++] = (struct amuse_st_entry){"content", shape2(ni, m->content_dim), m->content};
    const char *keys[] = {"format", "producer", "algo"};
    const char *values[] = {"pt", "amuse", amuse_rec_algo_name(m->opt.algo)};
    if ((rc = amuse_safetensors_write(paths[1], en, n, keys, values, 3)) ||
        (rc = amuse_vocab_save(m->users, paths[2])) || (rc = amuse_vocab_save(m->items, paths[3])))
        goto out;
    if (m->meta && (rc = write_meta(m, paths[4])))
        goto out;
    rc = write_config(m, paths[0]); /* last: a directory with a config is complete */
out:
    for (int p = 0; p < 5; p++)
        free(paths[p]);
    free(counts);
    free(seen);
    free(nbr);
    return rc;
}

/* ------------------------------------------------------------------------------------ load */

static double num(const cJSON *j, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* Copy tensor name of shape (rows[, cols]) into a new float array. */
static int tensor(const struct amuse_safetensors *st, const char *path, const char *name,
                  int64_t rows, int64_t cols, float **out)
{
    *out = NULL;
    const struct amuse_st_tensor *t = amuse_safetensors_find(st, name);
    if (!t)
        return am__fail(AMUSE_EFORMAT, "%s: tensor '%s' is missing", path, name);
    int ndim = cols < 0 ? 1 : 2;
    if (t->shape.ndim != ndim || t->shape.dim[0] != rows || (ndim == 2 && t->shape.dim[1] != cols))
        return am__fail(AMUSE_EFORMAT, "%s: tensor '%s' should be [%lld%s%lld]", path, name,
                        (long long)rows, ndim == 2 ? ", " : "", ndim == 2 ? (long long)cols : 0LL);
    size_t count = (size_t)rows * (size_t)(cols < 0 ? 1 : cols);
    float *p = malloc((count + 1) * sizeof *p);
    if (!p)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = amuse_safetensors_to_f32(t, p);
    if (rc) {
        free(p);
        return am__fail_prefix(rc, "%s: tensor '%s'", path, name);
    }
    *out = p;
    return AMUSE_OK;
}

static int check_index(const float *v, int64_t n, int64_t lo, int64_t hi, const char *path,
                       const char *name)
{
    for (int64_t e = 0; e < n; e++)
        if (!(v[e] >= (float)lo && v[e] < (float)hi) || v[e] != floorf(v[e]))
            return am__fail(AMUSE_EFORMAT, "%s: tensor '%s'[%lld] = %g: not an index in "
                            "[%lld, %lld)", path, name, (long long)e, (double)v[e],
                            (long long)lo, (long long)hi);
    return AMUSE_OK;
}

int amuse_rec_model_load(const char *dir, struct amuse_rec_model **out)
{
    *out = NULL;
    char *paths[5] = {join(dir, "config.json"), join(dir, "model.safetensors"),
                      join(dir, "users.txt"), join(dir, "items.txt"), join(dir, "item_meta.tsv")};
    char *text = NULL;
    size_t len;
    cJSON *j = NULL;
    struct amuse_safetensors st = {0};
    float *counts = NULL, *seen = NULL, *nbr = NULL;
    struct amuse_rec_model *m = calloc(1, sizeof *m);
    int rc = AMUSE_OK;
    for (int p = 0; p < 5; p++)
        if (!paths[p])
            rc = AMUSE_ENOMEM;
    if (rc || !m) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = am__read_file(paths[0], 1 << 20, &text, &len)))
        goto out;
    j = cJSON_Parse(text);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *algo = cJSON_GetObjectItemCaseSensitive(j, "algo");
    if (!j || !cJSON_IsString(type) || strcmp(type->valuestring, "recommender") != 0 ||
        !cJSON_IsString(algo) || amuse_rec_algo_parse(algo->valuestring) < 0) {
        rc = am__fail(AMUSE_EFORMAT, "%s: not a recommender config (needs \"type\": "
                      "\"recommender\" and \"algo\": pop, itemknn, als or bpr)", paths[0]);
        goto out;
    }
    amuse_rec_options_default(&m->opt, amuse_rec_algo_parse(algo->valuestring));
    m->opt.iters = (int)num(j, "iters", m->opt.iters);
    m->opt.reg = num(j, "reg", m->opt.reg);
    m->opt.alpha = num(j, "alpha", m->opt.alpha);
    m->opt.cg_steps = (int)num(j, "cg_steps", m->opt.cg_steps);
    m->opt.learning_rate = num(j, "learning_rate", m->opt.learning_rate);
    m->opt.shrink = num(j, "shrink", m->opt.shrink);
    m->opt.seed = (uint64_t)num(j, "seed", 1);
    m->opt.binary = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "binary"));
    m->opt.ipw = num(j, "ipw", 0);
    if (!(m->opt.ipw >= 0 && m->opt.ipw <= 2)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: ipw %g is outside [0, 2]", paths[0], m->opt.ipw);
        goto out;
    }
    m->train_seconds = num(j, "train_seconds", 0);
    int factors = (int)num(j, "factors", 0), nb = (int)num(j, "neighbours", 0);
    int content_dim = (int)num(j, "content_dim", 0);
    int is_factor = m->opt.algo == AMUSE_REC_ALS || m->opt.algo == AMUSE_REC_BPR;
    if ((is_factor && (factors < 1 || factors > AMUSE_REC_MAX_FACTORS)) || nb < 1 ||
        nb > 10000 || content_dim < 0 || content_dim > AMUSE_W2V_MAX_DIM) {
        rc = am__fail(AMUSE_EFORMAT, "%s: factors, neighbours or content_dim out of range",
                      paths[0]);
        goto out;
    }
    m->opt.factors = factors;
    m->opt.neighbours = nb;
    m->factors = is_factor ? factors : 0;
    m->neighbours = nb;
    if ((rc = amuse_vocab_read(paths[2], &m->users)) || (rc = amuse_vocab_read(paths[3], &m->items)))
        goto out;
    m->n_users = amuse_vocab_size(m->users);
    m->n_items = amuse_vocab_size(m->items);
    if (m->n_items > AMUSE_REC_MAX_ITEMS || m->n_users > AMUSE_REC_MAX_USERS) {
        rc = am__fail(AMUSE_ETOOBIG, "%s: too many users or items", dir);
        goto out;
    }
    if ((rc = amuse_safetensors_load(&st, paths[1], 0)))
        goto out;
    int64_t nu = m->n_users, ni = m->n_items;
    const char *sp = paths[1];
    if ((rc = tensor(&st, sp, "popularity", ni, -1, &m->popularity)))
        goto out;
    for (int64_t i = 0; i < ni; i++)
        m->mean_popularity += m->popularity[i] / (double)ni;
    if ((rc = tensor(&st, sp, "neighbours/index", ni, nb, &nbr)) ||
        (rc = tensor(&st, sp, "neighbours/similarity", ni, nb, &m->nbr_sim)) ||
        (rc = tensor(&st, sp, "seen/counts", nu, -1, &counts)) ||
        (rc = check_index(counts, nu, 0, ni + 1, sp, "seen/counts")) ||
        (rc = check_index(nbr, ni * nb, -1, ni, sp, "neighbours/index")))
        goto out;
    struct amuse_rec_csr *s = calloc(1, sizeof *s);
    if (!s || !(s->indptr = malloc(((size_t)nu + 1) * sizeof *s->indptr))) {
        free(s);
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    m->seen = s;
    s->rows = nu;
    s->cols = ni;
    s->indptr[0] = 0;
    for (int64_t u = 0; u < nu; u++)
        s->indptr[u + 1] = s->indptr[u] + (int64_t)counts[u];
    s->nnz = s->indptr[nu];
    if ((rc = tensor(&st, sp, "seen/items", s->nnz, -1, &seen)) ||
        (rc = check_index(seen, s->nnz, 0, ni, sp, "seen/items")) ||
        (rc = tensor(&st, sp, "seen/values", s->nnz, -1, &s->values)))
        goto out;
    s->indices = malloc(((size_t)s->nnz + 1) * sizeof *s->indices);
    s->times = calloc((size_t)s->nnz + 1, sizeof *s->times);
    m->nbr_index = malloc(((size_t)ni * nb + 1) * sizeof *m->nbr_index);
    if (!s->indices || !s->times || !m->nbr_index) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t e = 0; e < s->nnz; e++)
        s->indices[e] = (int32_t)seen[e];
    for (int64_t e = 0; e < ni * nb; e++)
        m->nbr_index[e] = (int32_t)nbr[e];
    if (m->factors && ((rc = tensor(&st, sp, "user_factors", nu, m->factors, &m->user_factors)) ||
                       (rc = tensor(&st, sp, "item_factors", ni, m->factors, &m->item_factors))))
        goto out;
    if (m->opt.algo == AMUSE_REC_BPR && (rc = tensor(&st, sp, "item_bias", ni, -1, &m->item_bias)))
        goto out;
    if (content_dim && (rc = tensor(&st, sp, "content", ni, content_dim, &m->content)))
        goto out;
    m->content_dim = content_dim;
    FILE *meta = fopen(paths[4], "rb");
    if (meta) {
        fclose(meta);
        if ((rc = amuse_rec_attach_items(m, paths[4], NULL, NULL)))
            goto out;
    }
    rc = am__rec_model_prepare(m);
out:
    for (int p = 0; p < 5; p++)
        free(paths[p]);
    free(text);
    cJSON_Delete(j);
    amuse_safetensors_release(&st);
    free(counts);
    free(seen);
    free(nbr);
    if (rc) {
        amuse_rec_model_free(m);
        return rc;
    }
    *out = m;
    return AMUSE_OK;
}

/* ------------------------------------------------------------------ training-time evaluation */

#define EVAL_FILE_MAX 4096

static const char *const eval_fields[] = {"precision", "recall", "ndcg", "map", "coverage",
                                          "gini", "arp", "aplt", "novelty"};

static double *eval_field(struct amuse_rec_metrics *m, int i)
{
    double *f[] = {&m->precision, &m->recall, &m->ndcg, &m->map, &m->coverage,
                   &m->gini, &m->arp, &m->aplt, &m->novelty};
    return f[i];
}

int amuse_rec_eval_save(const struct amuse_rec_eval *e, const char *dir)
{
    size_t sl = strnlen(e->split, sizeof e->split);
    if (sl == 0 || sl == sizeof e->split || e->k < 1)
        return am__fail(AMUSE_EINVAL, "evaluation: split '%.*s' or k %d is not valid",
                        (int)sl, e->split, e->k);
    char *path = join(dir, "eval.json");
    char text[EVAL_FILE_MAX];
    if (!path)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    struct amuse_rec_metrics m = e->metrics;
    int n = snprintf(text, sizeof text,
                     "{\n  \"split\": \"%s\", \"fraction\": %g, \"seed\": %llu, \"k\": %d, "
                     "\"users\": %lld",
                     e->split, e->fraction, (unsigned long long)e->seed, e->k,
                     (long long)m.users);
    for (int i = 0; i < 9 && n > 0 && (size_t)n < sizeof text; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, ",\n  \"%s\": %.6g", eval_fields[i],
                      *eval_field(&m, i));
    int rc;
    if (n < 0 || (size_t)n + 3 >= sizeof text) {
        rc = am__fail(AMUSE_EINVAL, "evaluation: does not fit %d bytes", EVAL_FILE_MAX);
    } else {
        n += snprintf(text + n, sizeof text - (size_t)n, "\n}\n");
        rc = am__write_file_atomic(path, text, (size_t)n);
    }
    free(path);
    return rc;
}

int amuse_rec_eval_load(const char *dir, struct amuse_rec_eval *out)
{
    memset(out, 0, sizeof *out);
    char *path = join(dir, "eval.json"), *text = NULL;
    size_t len;
    cJSON *j = NULL;
    int rc;
    if (!path)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    if ((rc = am__read_file(path, EVAL_FILE_MAX, &text, &len)))
        goto out;
    j = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(j)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: not a JSON object", path);
        goto out;
    }
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(j, "split");
    if (!cJSON_IsString(split) || !split->valuestring[0] ||
        strlen(split->valuestring) >= sizeof out->split) {
        rc = am__fail(AMUSE_EFORMAT, "%s: \"split\" must be a short string", path);
        goto out;
    }
    snprintf(out->split, sizeof out->split, "%s", split->valuestring);
    out->fraction = num(j, "fraction", -1);
    double seed = num(j, "seed", -1), k = num(j, "k", 0), users = num(j, "users", -1);
    if (!(out->fraction > 0 && out->fraction < 1) || !(seed >= 0 && seed <= 9007199254740992.0) ||
        !(k >= 1 && k <= 1e6) ||
        !(users >= 0 && users <= (double)AMUSE_REC_MAX_USERS)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: fraction, seed, k or users missing or out of range",
                      path);
        goto out;
    }
    out->seed = (uint64_t)seed;
    out->k = (int)k;
    out->metrics.users = (int64_t)users;
    for (int i = 0; i < 9; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, eval_fields[i]);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: \"%s\" must be a number", path, eval_fields[i]);
            goto out;
        }
        *eval_field(&out->metrics, i) = v->valuedouble;
    }
out:
    if (rc)
        memset(out, 0, sizeof *out);
    cJSON_Delete(j);
    free(text);
    free(path);
    return rc;
}
