/* repository.c - the model repository: <repo>/<model>/<version>/ directories, as Triton and TF
 * Serving lay them out. A version directory holds one model of a kind (kind_*.c) that its
 * config.json's "type" names: a network model by default, "word2vec" or "fasttext" word vectors
 * (a word2vec text or binary file, or a fastText .bin model), a generator ... The kind
 * loads it and runs its batches; this file only finds, swaps and frees. Each model serves its highest
 * version that loads; a broken version is logged and the next lower one tried. Loading again (the
 * admin route) builds the new version completely, with its own batcher, before swapping it in
 * under the lock; the old one finishes its queue and is freed when its last request lets go.
 * The poller (am__repository_poll_start) is a thread that scans the repository every interval
 * and, for a model directory whose fingerprint (version numbers and the names, sizes and mtimes
 * of every file in its version directories) changed and then stayed the same for one more scan,
 * calls am__repository_load: the same path as the admin route. It never unloads: a model whose
 * directory disappears keeps serving until the admin load route, which then finds nothing on disk,
 * unloads it. A `tenants` file beside the versions says who may use the model (tenant.c); it is
 * read with each load and is part of the fingerprint. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/image.h"

#include "amuse/model.h"
#include "amuse/runtime.h"
#include "amuse/word2vec.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#define MAX_VERSIONS 256
#define MAX_CONFIG_BYTES (4u << 20)

struct index_entry {
    char *name;
    int64_t version;
    int ready;
    char reason[512];
};

/* What the poller knows of one model directory: fingerprints of the files last loaded and of
 * the previous scan. Touched only by am__repository_open (before the poller starts) and the
 * poller. */
struct watch {
    char *name;
    uint64_t loaded, seen;
};

struct am__repository {
    char *dir;
    struct am__batcher_options bo;
    int model_threads;
    struct am__log log;
    pthread_mutex_t lock;      /* models, refs, index */
    pthread_mutex_t load_lock; /* one load at a time */
    struct am__model **models;
    int n_models, cap_models;
    struct index_entry *index;
    int n_index, cap_index;
    struct watch *watches;
    int n_watches, cap_watches;
    /* the poller */
    pthread_t poller;
    int polling;   /* the thread exists */
    int poll_interval_s;
    int poll_stop; /* guarded by poll_lock */
    pthread_mutex_t poll_lock;
    pthread_cond_t poll_wake;
};

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ kinds */

/* Every model kind the server knows; the first is the default (config.json without "type"). */
static const struct am__model_kind *const kinds[] = {
    &am__kind_network,
    &am__kind_word_vectors,
    &am__kind_generator,
    &am__kind_sentiment,
    &am__kind_voice,
    &am__kind_recommender,
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

const struct am__model_kind *am__model_kind_find(const struct cJSON *cfg)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(cfg, "type");
    for (size_t i = 0; cJSON_IsString(type) && i < N_KINDS; i++)
        if (kinds[i]->config_type && strcmp(kinds[i]->config_type, type->valuestring) == 0)
            return kinds[i];
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i]->claims && kinds[i]->claims(cfg))
            return kinds[i];
    return kinds[0];
}

void am__jobs_fail(struct am__job **jobs, int n, int status)
{
    for (int i = 0; i < n; i++) {
        jobs[i]->status = status;
        snprintf(jobs[i]->error, sizeof jobs[i]->error, "%s", amuse_last_error());
    }
}

/* ------------------------------------------------------------------ loading */

static void model_free(struct am__model *m)
{
    if (!m)
        return;
    am__batcher_stop(m->batcher); /* finishes its queue first */
    if (m->kind)
        m->kind->release(m);
    am__tenants_free(m->tenants);
    free(m->name);
    free(m->dir);
    free(m);
}

/* Load one version directory completely, batcher included. */
static int load_version(struct am__repository *r, const char *name, int64_t version,
                        struct am__model **out)
{
    *out = NULL;
    struct am__model *m = calloc(1, sizeof *m);
    if (!m)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    m->version = version;
    m->created = (int64_t)time(NULL);
    m->max_batch_size = r->bo.max_batch_size;
    m->model_threads = r->model_threads;
    m->name = strdup(name);
    char *cfg_path = NULL, *text = NULL;
    cJSON *cfg = NULL;
    int rc;
    if (!m->name || asprintf(&m->dir, "%s/%s/%lld", r->dir, name, (long long)version) < 0 ||
        asprintf(&cfg_path, "%s/config.json", m->dir) < 0) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    size_t len;
    char *model_dir = NULL; /* <repo>/<model>: its tenants file (tenant.c) */
    if (asprintf(&model_dir, "%s/%s", r->dir, name) < 0) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    rc = am__tenants_load(model_dir, &m->tenants);
    free(model_dir);
    if (rc)
        goto out;
    rc = am__read_file(cfg_path, MAX_CONFIG_BYTES, &text, &len);
    if (rc)
        goto out;
    cfg = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(cfg)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: not a JSON object", cfg_path);
        goto out;
    }
    m->kind = am__model_kind_find(cfg);
    rc = m->kind->load(m, cfg, cfg_path);
    if (rc)
        goto out;
    struct am__batcher_options bo = r->bo;
    if (m->kind->flags & AM__KIND_NO_QUEUE_DELAY)
        bo.max_queue_delay_us = 0;
    rc = am__batcher_start(&m->batcher, &bo, m->kind->run, m, name);
out:
    cJSON_Delete(cfg);
    free(text);
    free(cfg_path);
    if (rc) {
        model_free(m);
        return rc;
    }
    m->refs = 1; /* the repository's */
    *out = m;
    return AMUSE_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Version numbers under <repo>/<name>/, highest first. */
static int list_versions(const char *dir, int64_t *versions, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: %s", dir,
                        strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) && *n < MAX_VERSIONS) {
        char *end;
        errno = 0;
        long long v = strtoll(e->d_name, &end, 10);
        if (errno || end == e->d_name || *end || v < 1 || e->d_name[0] == '+')
            continue;
        versions[(*n)++] = v;
    }
    closedir(d);
    qsort(versions, (size_t)*n, sizeof *versions, cmp_desc);
    return AMUSE_OK;
}

static void index_forget(struct am__repository *r, const char *name)
{
    int k = 0;
    for (int i = 0; i < r->n_index; i++) {
        if (strcmp(r->index[i].name, name) == 0)
            free(r->index[i].name);
        else
            r->index[k++] = r->index[i];
    }
    r->n_index = k;
}

static void index_add(struct am__repository *r, const char *name, int64_t version, int ready,
                      const char *reason)
{
    if (r->n_index == r->cap_index) {
        int cap = r->cap_index ? r->cap_index * 2 : 16;
        struct index_entry *p = realloc(r->index, (size_t)cap * sizeof *p);
        if (!p)
            return; /* the index is informational; the model itself is unaffected */
        r->index = p;
        r->cap_index = cap;
    }
    struct index_entry *e = &r->index[r->n_index];
    e->name = strdup(name);
    if (!e->name)
        return;
    e->version = version;
    e->ready = ready;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    r->n_index++;
}

/* allow_unload: the admin route's load, which unloads a model whose directory is gone; the
 * poller's never does (a directory vanishing between its scan and this call is left alone). */
static int repository_load(struct am__repository *r, const char *name, int64_t *version,
                           int allow_unload)
{
    if (!name_ok(name))
        return am__fail(AMUSE_EINVAL, "model name '%s': use letters, digits, '.', '_', '-'",
                        name);
    pthread_mutex_lock(&r->load_lock);
    char *dir = NULL;
    int64_t versions[MAX_VERSIONS];
    int n = 0, rc;
    struct am__model *fresh = NULL;
    int unload = 0; /* the directory is gone: stop serving the model */
    /* Outcomes per version, recorded in the index once the lock is taken. */
    struct { int64_t v; int ready; char reason[512]; } tried[MAX_VERSIONS];
    int n_tried = 0;
    if (asprintf(&dir, "%s/%s", r->dir, name) < 0) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    rc = list_versions(dir, versions, &n);
    if (rc == AMUSE_ENOTFOUND) {
        unload = allow_unload;
        goto out;
    }
    if (rc)
        goto out;
    if (n == 0) {
        rc = am__fail(AMUSE_ENOTFOUND, "%s: no version directories (1, 2, ...)", dir);
        goto out;
    }
    for (int i = 0; i < n && !fresh; i++) {
        int lrc = load_version(r, name, versions[i], &fresh);
        tried[n_tried].v = versions[i];
        tried[n_tried].ready = lrc == AMUSE_OK;
        snprintf(tried[n_tried].reason, sizeof tried[n_tried].reason, "%s",
                 lrc ? amuse_last_error() : "");
        n_tried++;
        if (lrc)
            am__logf(&r->log, "model %s version %lld: %s; skipped", name, (long long)versions[i],
                     amuse_last_error());
    }
    if (!fresh) {
        rc = am__fail(AMUSE_EFORMAT, "model %s: no version could be loaded (newest: %s)", name,
                      tried[0].reason);
        goto out;
    }
    *version = fresh->version;
    am__logf(&r->log, "model %s version %lld loaded from %s", name, (long long)fresh->version,
             fresh->dir);
out:;
    struct am__model *old = NULL;
    pthread_mutex_lock(&r->lock);
    if (n_tried || unload) {
        index_forget(r, name);
        for (int i = 0; i < n_tried; i++)
            index_add(r, name, tried[i].v, tried[i].ready, tried[i].reason);
    }
    if (unload) {
        for (int i = 0; i < r->n_models; i++)
            if (strcmp(r->models[i]->name, name) == 0) {
                old = r->models[i];
                r->models[i] = r->models[--r->n_models];
                old->retired = 1;
                if (--old->refs != 0)
                    old = NULL;
                am__logf(&r->log, "model %s: its directory is gone; unloaded", name);
                rc = am__fail(AMUSE_ENOTFOUND, "model %s: %s is gone; the model was unloaded",
                              name, dir);
                break;
            }
    }
    if (fresh) {
        int slot = -1;
        for (int i = 0; i < r->n_models; i++)
            if (strcmp(r->models[i]->name, name) == 0)
                slot = i;
        if (slot < 0 && r->n_models == r->cap_models) {
            int cap = r->cap_models ? r->cap_models * 2 : 8;
            struct am__model **p = realloc(r->models, (size_t)cap * sizeof *p);
            if (!p) {
                pthread_mutex_unlock(&r->lock);
                model_free(fresh);
                pthread_mutex_unlock(&r->load_lock);
                free(dir);
                return am__fail(AMUSE_ENOMEM, "out of memory");
            }
            r->models = p;
            r->cap_models = cap;
        }
        if (slot < 0) {
            slot = r->n_models++;
        } else {
            old = r->models[slot];
            old->retired = 1;
            if (--old->refs != 0)
                old = NULL; /* still in use: the last am__model_release frees it */
        }
        r->models[slot] = fresh;
    }
    pthread_mutex_unlock(&r->lock);
    model_free(old);
    pthread_mutex_unlock(&r->load_lock);
    free(dir);
    return rc;
}

int am__repository_load(struct am__repository *r, const char *name, int64_t *version)
{
    return repository_load(r, name, version, 1);
}

/* ------------------------------------------------------------------ polling */

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* A hash of what is on disk for one model: each version number, and the name, size and mtime of
 * every file in its directory (readdir order does not matter: per-file hashes are summed). */
static uint64_t fingerprint(const struct am__repository *r, const char *name)
{
    uint64_t h = 14695981039346656037ull;
    char *dir = NULL;
    int64_t versions[MAX_VERSIONS];
    int n = 0;
    if (asprintf(&dir, "%s/%s", r->dir, name) < 0)
        return h;
    if (list_versions(dir, versions, &n) != AMUSE_OK)
        n = 0;
    char *tenants = NULL; /* who may use the model (tenant.c) is part of what is on disk */
    struct stat tst;
    if (asprintf(&tenants, "%s/tenants", dir) >= 0 && stat(tenants, &tst) == 0) {
        int64_t facts[3] = {(int64_t)tst.st_size, (int64_t)tst.st_mtim.tv_sec,
                            (int64_t)tst.st_mtim.tv_nsec};
        h = fnv(h, facts, sizeof facts);
    }
    free(tenants);
    for (int i = 0; i < n; i++) {
        h = fnv(h, &versions[i], sizeof versions[i]);
        char *vdir = NULL;
        if (asprintf(&vdir, "%s/%lld", dir, (long long)versions[i]) < 0)
            continue;
        DIR *d = opendir(vdir);
        uint64_t files = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char *path = NULL;
            struct stat st;
            if (asprintf(&path, "%s/%s", vdir, e->d_name) < 0)
                continue;
            if (stat(path, &st) == 0) {
                int64_t facts[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                                    (int64_t)st.st_mtim.tv_nsec};
                uint64_t f = fnv(14695981039346656037ull, e->d_name, strlen(e->d_name));
                files += fnv(f, facts, sizeof facts);
            }
            free(path);
        }
        if (d)
            closedir(d);
        h = fnv(h, &files, sizeof files);
        free(vdir);
    }
    free(dir);
    return h;
}

static struct watch *watch_of(struct am__repository *r, const char *name)
{
    for (int i = 0; i < r->n_watches; i++)
        if (strcmp(r->watches[i].name, name) == 0)
            return &r->watches[i];
    if (r->n_watches == r->cap_watches) {
        int cap = r->cap_watches ? r->cap_watches * 2 : 16;
        struct watch *p = realloc(r->watches, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        r->watches = p;
        r->cap_watches = cap;
    }
    struct watch *w = &r->watches[r->n_watches];
    if (!(w->name = strdup(name)))
        return NULL;
    w->loaded = w->seen = 0; /* nothing loaded yet: the first stable scan loads it */
    r->n_watches++;
    return w;
}

/* Model directory names under the repository (free each and the array). */
static int scan_names(const char *dir, char ***out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return am__fail(AMUSE_EIO, "model repository %s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d))) {
        if (!name_ok(e->d_name))
            continue;
        char *sub = NULL;
        if (asprintf(&sub, "%s/%s", dir, e->d_name) < 0)
            break;
        int is_dir = stat(sub, &st) == 0 && S_ISDIR(st.st_mode);
        free(sub);
        if (!is_dir)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, (size_t)cap * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    *out = names;
    *n_out = n;
    return AMUSE_OK;
}

/* One scan: load each model whose files changed since they were loaded and have not changed
 * since the previous scan (so a version directory still being copied is not loaded half done). */
static void poll_once(struct am__repository *r)
{
    char **names;
    int n;
    if (scan_names(r->dir, &names, &n))
        return;
    for (int i = 0; i < n; i++) {
        struct watch *w = watch_of(r, names[i]);
        uint64_t now = fingerprint(r, names[i]);
        if (w && now != w->loaded && now == w->seen) {
            int64_t v;
            am__logf(&r->log, "model %s changed on disk; reloading", names[i]);
            if (repository_load(r, names[i], &v, 0))
                am__logf(&r->log, "%s (the served version, if any, stays)", amuse_last_error());
            w->loaded = now; /* a broken change is not retried until the files change again */
        }
        if (w)
            w->seen = now;
        free(names[i]);
    }
    free(names);
}

static void *poller_main(void *arg)
{
    struct am__repository *r = arg;
    pthread_mutex_lock(&r->poll_lock);
    while (!r->poll_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += r->poll_interval_s;
        while (!r->poll_stop &&
               pthread_cond_timedwait(&r->poll_wake, &r->poll_lock, &ts) != ETIMEDOUT)
            ;
        if (r->poll_stop)
            break;
        pthread_mutex_unlock(&r->poll_lock);
        poll_once(r);
        pthread_mutex_lock(&r->poll_lock);
    }
    pthread_mutex_unlock(&r->poll_lock);
    return NULL;
}

int am__repository_poll_start(struct am__repository *r, int interval_s)
{
    if (interval_s <= 0 || r->polling)
        return AMUSE_OK;
    r->poll_interval_s = interval_s;
    r->poll_stop = 0;
    if (pthread_create(&r->poller, NULL, poller_main, r) != 0)
        return am__fail(AMUSE_ENOMEM, "cannot start the repository poller thread");
    r->polling = 1;
    return AMUSE_OK;
}

void am__repository_poll_stop(struct am__repository *r)
{
    if (!r || !r->polling)
        return;
    pthread_mutex_lock(&r->poll_lock);
    r->poll_stop = 1;
    pthread_cond_signal(&r->poll_wake);
    pthread_mutex_unlock(&r->poll_lock);
    pthread_join(r->poller, NULL); /* a load in progress finishes first */
    r->polling = 0;
}

/* ------------------------------------------------------------------ open, free, lookups */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int am__repository_open(struct am__repository **out, const char *dir,
                        const struct am__batcher_options *bo, int model_threads,
                        const struct am__log *log)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return am__fail(AMUSE_ENOTFOUND, "model repository %s: not a directory", dir);
    struct am__repository *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(dir))) {
        free(r);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    r->bo = *bo;
    r->model_threads = model_threads;
    if (log)
        r->log = *log;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->load_lock, NULL);
    pthread_mutex_init(&r->poll_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->poll_wake, &ca);
    pthread_condattr_destroy(&ca);
    /* Collect names first: loading takes a while and readdir order is arbitrary. Load in name
     * order, so the log and the model lists read the same on every machine. */
    char **names;
    int n;
    int rc = scan_names(dir, &names, &n);
    if (rc) {
        am__repository_free(r);
        return rc;
    }
    if (n > 1)
        qsort(names, (size_t)n, sizeof *names, compare_names);
    for (int i = 0; i < n; i++) {
        int64_t v;
        uint64_t fp = fingerprint(r, names[i]); /* before loading: a change meanwhile is seen */
        if (am__repository_load(r, names[i], &v))
            am__logf(&r->log, "%s", amuse_last_error());
        struct watch *w = watch_of(r, names[i]);
        if (w)
            w->loaded = w->seen = fp;
        free(names[i]);
    }
    free(names);
    *out = r;
    return AMUSE_OK;
}

void am__repository_free(struct am__repository *r)
{
    if (!r)
        return;
    am__repository_poll_stop(r);
    for (int i = 0; i < r->n_models; i++)
        model_free(r->models[i]); /* every request has finished by now */
    free(r->models);
    for (int i = 0; i < r->n_index; i++)
        free(r->index[i].name);
    free(r->index);
    for (int i = 0; i < r->n_watches; i++)
        free(r->watches[i].name);
    free(r->watches);
    pthread_cond_destroy(&r->poll_wake);
    pthread_mutex_destroy(&r->poll_lock);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->load_lock);
    free(r->dir);
    free(r);
}

struct am__model *am__repository_get(struct am__repository *r, const char *name)
{
    struct am__model *m = NULL;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n_models; i++)
        if (strcmp(r->models[i]->name, name) == 0) {
            m = r->models[i];
            m->refs++;
            break;
        }
    pthread_mutex_unlock(&r->lock);
    return m;
}

void am__model_release(struct am__repository *r, struct am__model *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&r->lock);
    int last = --m->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last)
        model_free(m); /* only a retired model reaches 0: the repository holds one reference */
}

int am__repository_count(struct am__repository *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->n_models;
    pthread_mutex_unlock(&r->lock);
    return n;
}

int am__repository_names(struct am__repository *r, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    pthread_mutex_lock(&r->lock);
    char **v = calloc((size_t)r->n_models + 1, sizeof *v);
    int k = 0;
    if (v)
        for (int i = 0; i < r->n_models; i++)
            if ((v[k] = strdup(r->models[i]->name)))
                k++;
    pthread_mutex_unlock(&r->lock);
    if (!v)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    *names = v;
    *n = k;
    return AMUSE_OK;
}

void am__repository_index_json(struct am__repository *r, struct am__buf *b)
{
    pthread_mutex_lock(&r->lock);
    am__buf_puts(b, "[");
    for (int i = 0; i < r->n_index; i++) {
        const struct index_entry *e = &r->index[i];
        int serving = 0;
        for (int k = 0; k < r->n_models; k++)
            if (strcmp(r->models[k]->name, e->name) == 0 && r->models[k]->version == e->version)
                serving = 1;
        am__buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
        am__buf_json_string(b, e->name);
        am__buf_printf(b, ", \"version\": \"%lld\", \"state\": \"%s\"", (long long)e->version,
                       serving ? "READY" : "UNAVAILABLE");
        if (!e->ready) {
            am__buf_puts(b, ", \"reason\": ");
            am__buf_json_string(b, e->reason);
        } else if (!serving) {
            am__buf_puts(b, ", \"reason\": \"a newer version is served\"");
        }
        am__buf_puts(b, "}");
    }
    am__buf_puts(b, "]");
    pthread_mutex_unlock(&r->lock);
}
