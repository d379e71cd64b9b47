/* ratelimit.c - per-key state kept in memory: a token bucket for the rate limit and usage
 * counters, flushed to the key database.
 *
 * Rate limit: each key's bucket holds up to burst tokens and refills at rps tokens a second;
 * every authenticated request takes one, and a request finding less than one is answered 429 with
 * Retry-After (whole seconds until a token is back). Off when rps is 0.
 *
 * Usage: requests (every request the key authenticated, whatever its status) and items (samples,
 * inputs or queries in successful replies) are counted here and added to the database's usage
 * table every usage_flush_s seconds by a background thread, and once more when the server is
 * freed (after the HTTP threads stopped, so nothing counted is lost on a clean shutdown). A flush
 * that fails puts its figures back for the next one. A crash loses at most usage_flush_s seconds.
 *
 * The table is an open-addressing hash by key id, one mutex; entries are never removed, so it
 * holds at most the number of distinct valid keys seen since start. The server keeps a second
 * table by tenant for the per-tenant rate limit and counters (in memory only).
 *
 * Daily quotas: each entry also counts its requests on the current UTC day; the count starts from
 * what the database's usage_daily table holds for the subject ("k:<id>", "t:<tenant>") that day,
 * and each flush adds the new requests there, so a restart does not reset a quota (a crash
 * forgets at most one flush interval). Several replicas on one database share the quota: a flush
 * takes back the total the database holds after its addition, and a subject not refreshed for a
 * flush interval is read again before its next request is counted. So a replica sees the others'
 * requests at most one flush interval late, and N replicas can together admit up to what the
 * other N-1 admitted in one interval beyond the quota.
 *
 * Token buckets are per replica (in memory): N replicas behind a balancer admit up to N times a
 * key's rate. Sharing them would cost a database write per request. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"
#include "serve/test_control.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    char id[AMUSE_TENANT_MAX + 1]; /* a key id or a tenant; "" for an empty slot */
    double tokens, last;           /* bucket: tokens at time last */
    int64_t requests, items;       /* since start */
    int64_t flushed_requests, flushed_items;
    int64_t day, day_requests, day_flushed; /* daily quota: the UTC day and its requests */
    int day_loaded;                         /* day_requests includes the database's count */
    int64_t day_synced;                     /* when (now_s) it was last read from the database */
};

struct am__usage {
    struct amuse_keystore *ks;
    const char *prefix; /* of daily-usage subjects: "k:" (keys) or "t:" (tenants) */
    int totals;         /* flush requests and items to the key usage table (keys only) */
    struct am__log log;
    int flush_s;
    pthread_mutex_t lock;
    struct entry *slots;
    size_t cap, used; /* cap is a power of two */
    pthread_cond_t wake;
    int stopping, thread_started;
    pthread_t thread;
};

static size_t hash_id(const char *id)
{
    size_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

/* The entry for id, inserted if new (lock held); NULL when out of memory. */
static struct entry *lookup(struct am__usage *u, const char *id)
{
    if ((u->used + 1) * 2 > u->cap) {
        size_t ncap = u->cap ? u->cap * 2 : 64;
        struct entry *n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < u->cap; i++) {
            if (!u->slots[i].id[0])
                continue;
            size_t j = hash_id(u->slots[i].id) & (ncap - 1);
            while (n[j].id[0])
                j = (j + 1) & (ncap - 1);
            n[j] = u->slots[i];
        }
        free(u->slots);
        u->slots = n;
        u->cap = ncap;
    }
    size_t j = hash_id(id) & (u->cap - 1);
    while (u->slots[j].id[0]) {
        if (strcmp(u->slots[j].id, id) == 0)
            return &u->slots[j];
        j = (j + 1) & (u->cap - 1);
    }
    struct entry *e = &u->slots[j];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->tokens = -1; /* a fresh bucket: filled on first use */
    u->used++;
    return e;
}

int am__rate_take(struct am__usage *u, const char *id, int rps, int burst, int *retry_after)
{
    return am__rate_take_at(u, id, rps, burst, am__rate_clock(), retry_after);
}

int am__rate_take_at(struct am__usage *u, const char *id, int rps, int burst, double now,
                     int *retry_after)
{
    *retry_after = 0;
    if (rps <= 0)
        return 1;
    if (burst <= 0)
        burst = rps;
    int allowed = 1;
    pthread_mutex_lock(&u->lock);
    struct entry *e = lookup(u, id);
    if (e) {
        if (e->tokens < 0)
            e->tokens = burst;
        else
            e->tokens = fmin((double)burst, e->tokens + (now - e->last) * rps);
        e->last = now;
        if (e->tokens >= 1) {
            e->tokens -= 1;
        } else {
            allowed = 0;
            *retry_after = (int)ceil((1 - e->tokens) / rps);
            if (*retry_after < 1)
                *retry_after = 1;
        }
    }
    pthread_mutex_unlock(&u->lock);
    return allowed; /* out of memory: let it through rather than refuse everyone */
}

void am__usage_add(struct am__usage *u, const char *id, int64_t items)
{
    pthread_mutex_lock(&u->lock);
    struct entry *e = lookup(u, id);
    if (e) {
        e->requests++;
        e->items += items;
    }
    pthread_mutex_unlock(&u->lock);
}

struct delta {
    char id[AMUSE_TENANT_MAX + 1];
    int64_t requests, items;
    int64_t day, day_requests;
};

static void subject_of(const struct am__usage *u, const char *id, char *out, size_t size)
{
    snprintf(out, size, "%s%s", u->prefix, id);
}

int am__quota_take(struct am__usage *u, const char *id, int64_t limit, int64_t now_s,
                   int *retry_after)
{
    *retry_after = 0;
    if (limit <= 0)
        return 1;
    int64_t day = now_s / 86400;
    int allowed = 1;
    pthread_mutex_lock(&u->lock);
    struct entry *e = lookup(u, id);
    if (e) {
        if (e->day != day) { /* a new day: what the database knows of it, once */
            e->day = day;
            e->day_requests = e->day_flushed = 0;
            e->day_loaded = 0;
        }
        /* What the database holds (other replicas' requests included), once a day and then
         * again once per flush interval; the requests counted here and not flushed yet stay. */
        if (u->ks && (!e->day_loaded || now_s - e->day_synced >= u->flush_s)) {
            char subject[AMUSE_TENANT_MAX + 8];
            int64_t stored = 0;
            subject_of(u, id, subject, sizeof subject);
            if (am__keystore_daily(u->ks, subject, day, &stored) == AMUSE_OK) {
                e->day_requests = stored + (e->day_requests - e->day_flushed);
                e->day_flushed = stored;
                e->day_loaded = 1;
                e->day_synced = now_s;
            }
        }
        if (e->day_requests >= limit) {
            allowed = 0;
            *retry_after = (int)(86400 - now_s % 86400);
        } else {
            e->day_requests++;
        }
    }
    pthread_mutex_unlock(&u->lock);
    return allowed; /* out of memory: let it through rather than refuse everyone */
}

int am__usage_flush(struct am__usage *u)
{
    pthread_mutex_lock(&u->lock);
    size_t n = 0;
    struct delta *d = u->used ? calloc(u->used, sizeof *d) : NULL;
    for (size_t i = 0; d && i < u->cap; i++) {
        struct entry *e = &u->slots[i];
        if (!e->id[0] || (e->requests == e->flushed_requests && e->items == e->flushed_items &&
                          e->day_requests == e->day_flushed))
            continue;
        memcpy(d[n].id, e->id, sizeof d[n].id);
        d[n].requests = u->totals ? e->requests - e->flushed_requests : 0;
        d[n].items = u->totals ? e->items - e->flushed_items : 0;
        d[n].day = e->day;
        d[n].day_requests = e->day_requests - e->day_flushed;
        e->flushed_requests = e->requests;
        e->flushed_items = e->items;
        e->day_flushed = e->day_requests;
        n++;
    }
    int nomem = u->used && !d;
    pthread_mutex_unlock(&u->lock);
    if (!u->ks) /* no database to flush to */
        n = 0;
    if (nomem)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = AMUSE_OK;
    for (size_t i = 0; i < n; i++) {
        if (d[i].day_requests) {
            char subject[AMUSE_TENANT_MAX + 8];
            subject_of(u, d[i].id, subject, sizeof subject);
            int64_t total = 0;
            int r = am__keystore_add_daily(u->ks, subject, d[i].day, d[i].day_requests, &total);
            if (r == AMUSE_OK) { /* take in what other replicas added */
                pthread_mutex_lock(&u->lock);
                struct entry *e = lookup(u, d[i].id);
                if (e && e->day == d[i].day && total >= e->day_flushed) {
                    e->day_requests = total + (e->day_requests - e->day_flushed);
                    e->day_flushed = total;
                }
                pthread_mutex_unlock(&u->lock);
            } else {
                rc = r;
                am__logf(&u->log, "daily usage of %s not saved yet: %s", subject,
                         amuse_last_error());
                pthread_mutex_lock(&u->lock);
                struct entry *e = lookup(u, d[i].id);
                if (e && e->day == d[i].day)
                    e->day_flushed -= d[i].day_requests;
                pthread_mutex_unlock(&u->lock);
            }
        }
        if (!d[i].requests && !d[i].items)
            continue;
        int r = amuse_keystore_add_usage(u->ks, d[i].id, d[i].requests, d[i].items);
        if (r == AMUSE_OK)
            continue;
        rc = r;
        am__logf(&u->log, "usage of key %s not saved yet: %s", d[i].id, amuse_last_error());
        pthread_mutex_lock(&u->lock); /* give the figures back to the next flush */
        struct entry *e = lookup(u, d[i].id);
        if (e) {
            e->flushed_requests -= d[i].requests;
            e->flushed_items -= d[i].items;
        }
        pthread_mutex_unlock(&u->lock);
    }
    free(d);
    return rc;
}

static void *flush_main(void *arg)
{
    struct am__usage *u = arg;
    pthread_mutex_lock(&u->lock);
    while (!u->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += u->flush_s;
        int w = 0;
        while (!u->stopping && w != ETIMEDOUT)
            w = pthread_cond_timedwait(&u->wake, &u->lock, &ts);
        if (u->stopping)
            break;
        pthread_mutex_unlock(&u->lock);
        am__usage_flush(u);
        pthread_mutex_lock(&u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

int am__usage_rows(struct am__usage *u, struct am__usage_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    pthread_mutex_lock(&u->lock);
    struct am__usage_row *v = u->used ? calloc(u->used, sizeof *v) : NULL;
    if (u->used && !v) {
        pthread_mutex_unlock(&u->lock);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < u->cap; i++) {
        const struct entry *e = &u->slots[i];
        if (!e->id[0])
            continue;
        snprintf(v[*n].id, sizeof v[*n].id, "%s", e->id);
        v[*n].requests = e->requests;
        v[*n].items = e->items;
        (*n)++;
    }
    pthread_mutex_unlock(&u->lock);
    *rows = v;
    return AMUSE_OK;
}

int am__usage_new(struct am__usage **out, struct amuse_keystore *ks, int flush_s,
                  const struct am__log *log)
{
    *out = NULL;
    struct am__usage *u = calloc(1, sizeof *u);
    if (!u)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    u->ks = ks;
    u->prefix = "k:";
    u->totals = 1;
    u->flush_s = flush_s > 0 ? flush_s : 60;
    if (log)
        u->log = *log;
    pthread_mutex_init(&u->lock, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&u->wake, &a);
    pthread_condattr_destroy(&a);
    if (!ks) { /* nothing to flush to */
        *out = u;
        return AMUSE_OK;
    }
    if (pthread_create(&u->thread, NULL, flush_main, u) != 0) {
        am__usage_free(u);
        return am__fail(AMUSE_EIO, "cannot start the usage flush thread");
    }
    u->thread_started = 1;
    *out = u;
    return AMUSE_OK;
}

int am__usage_new_tenants(struct am__usage **out, struct amuse_keystore *ks, int flush_s,
                          const struct am__log *log)
{
    int rc = am__usage_new(out, ks, flush_s, log);
    if (rc == AMUSE_OK) {
        pthread_mutex_lock(&(*out)->lock);
        (*out)->prefix = "t:";
        (*out)->totals = 0;
        pthread_mutex_unlock(&(*out)->lock);
    }
    return rc;
}

void am__usage_free(struct am__usage *u)
{
    if (!u)
        return;
    if (u->thread_started) {
        pthread_mutex_lock(&u->lock);
        u->stopping = 1;
        pthread_cond_signal(&u->wake);
        pthread_mutex_unlock(&u->lock);
        pthread_join(u->thread, NULL);
        am__usage_flush(u); /* the last figures */
    }
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->lock);
    free(u->slots);
    free(u);
}
