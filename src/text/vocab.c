/* vocab.c - the word list with counts behind word2vec: a string pool, an open-addressing hash,
 * sorting by frequency, and the "word count" vocabulary file (word2vec.c -save-vocab/-read-vocab).
 * It does not tokenise text (utf8.c does) and does not know about vectors. */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

int amuse_vocab_new(struct amuse_vocab **out)
{
    *out = NULL;
    struct amuse_vocab *v = calloc(1, sizeof *v);
    if (!v)
        goto nomem;
    v->slot_mask = 1023;
    v->slots = malloc((v->slot_mask + 1) * sizeof *v->slots);
    if (!v->slots)
        goto nomem;
    memset(v->slots, 0xff, (v->slot_mask + 1) * sizeof *v->slots);
    *out = v;
    return AMUSE_OK;
nomem:
    amuse_vocab_free(v);
    return am__fail(AMUSE_ENOMEM, "vocabulary: out of memory");
}

void amuse_vocab_free(struct amuse_vocab *v)
{
    if (!v)
        return;
    free(v->pool);
    free(v->offset);
    free(v->count);
    free(v->slots);
    free(v);
}

int64_t amuse_vocab_size(const struct amuse_vocab *v)
{
    return v ? v->size : 0;
}

const char *amuse_vocab_word(const struct amuse_vocab *v, int64_t i)
{
    if (!v || i < 0 || i >= v->size)
        return NULL;
    return v->pool + v->offset[i];
}

int64_t amuse_vocab_count(const struct amuse_vocab *v, int64_t i)
{
    if (!v || i < 0 || i >= v->size)
        return 0;
    return v->count[i];
}

int64_t am__vocab_find_len(const struct amuse_vocab *v, const char *word, size_t len)
{
    size_t s = (size_t)hash_bytes(word, len) & v->slot_mask;
    for (;;) {
        int64_t i = v->slots[s];
        if (i < 0)
            return -1;
        const char *w = v->pool + v->offset[i];
        /* strnlen first: a stored word shorter than len must not be read past its end. */
        if (strnlen(w, len + 1) == len && memcmp(w, word, len) == 0)
            return i;
        s = (s + 1) & v->slot_mask;
    }
}

int64_t amuse_vocab_find(const struct amuse_vocab *v, const char *word)
{
    return am__vocab_find_len(v, word, strlen(word));
}

int64_t amuse_vocab_lookup(const struct amuse_vocab *v, const char *word)
{
    size_t len = strlen(word);
    int64_t at = am__vocab_find_len(v, word, len);
    if (at >= 0 || len > AMUSE_W2V_MAX_WORD_BYTES)
        return at;
    char lower[AMUSE_W2V_MAX_WORD_BYTES + 1];
    int changed = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = word[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
        changed |= lower[i] != c;
    }
    return changed ? am__vocab_find_len(v, lower, len) : -1;
}

static void rehash(struct amuse_vocab *v, int64_t *slots, size_t mask)
{
    memset(slots, 0xff, (mask + 1) * sizeof *slots);
    for (int64_t i = 0; i < v->size; i++) {
        const char *w = v->pool + v->offset[i];
        size_t s = (size_t)hash_bytes(w, strlen(w)) & mask;
        while (slots[s] >= 0)
            s = (s + 1) & mask;
        slots[s] = i;
    }
    free(v->slots);
    v->slots = slots;
    v->slot_mask = mask;
}

int am__vocab_add_len(struct amuse_vocab *v, const char *word, size_t len, int64_t count,
                      int64_t *index)
{
    int64_t i = am__vocab_find_len(v, word, len);
    if (i >= 0) {
        v->count[i] += count;
        if (index)
            *index = i;
        return AMUSE_OK;
    }
    if (v->size >= AMUSE_W2V_MAX_WORDS)
        return am__fail(AMUSE_ETOOBIG, "more than %lld distinct words", AMUSE_W2V_MAX_WORDS);
    if (v->size == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 1024;
        size_t *off = realloc(v->offset, (size_t)cap * sizeof *off);
        if (!off)
            goto nomem;
        v->offset = off;
        int64_t *cnt = realloc(v->count, (size_t)cap * sizeof *cnt);
        if (!cnt)
            goto nomem;
        v->count = cnt;
        v->cap = cap;
    }
    if (v->pool_len + len + 1 > v->pool_cap) {
        size_t cap = v->pool_cap ? v->pool_cap * 2 : 65536;
        while (cap < v->pool_len + len + 1)
            cap *= 2;
        char *pool = realloc(v->pool, cap);
        if (!pool)
            goto nomem;
        v->pool = pool;
        v->pool_cap = cap;
    }
    /* Keep the table at most half full. */
    if ((size_t)(v->size + 1) * 2 > v->slot_mask + 1) {
        size_t mask = v->slot_mask * 2 + 1;
        int64_t *slots = malloc((mask + 1) * sizeof *slots);
        if (!slots)
            goto nomem;
        rehash(v, slots, mask);
    }
    i = v->size++;
    v->offset[i] = v->pool_len;
    memcpy(v->pool + v->pool_len, word, len);
    v->pool[v->pool_len + len] = '\0';
    v->pool_len += len + 1;
    v->count[i] = count;
    size_t s = (size_t)hash_bytes(word, len) & v->slot_mask;
    while (v->slots[s] >= 0)
        s = (s + 1) & v->slot_mask;
    v->slots[s] = i;
    if (index)
        *index = i;
    return AMUSE_OK;
nomem:
    return am__fail(AMUSE_ENOMEM, "vocabulary: out of memory at %lld words", (long long)v->size);
}

int amuse_vocab_add(struct amuse_vocab *v, const char *word, int64_t count, int64_t *index)
{
    size_t len = strlen(word), bad;
    if (len == 0 || len > AMUSE_W2V_MAX_WORD_BYTES)
        return am__fail(AMUSE_EINVAL, "word of %zu bytes: must be 1..%d", len,
                        AMUSE_W2V_MAX_WORD_BYTES);
    if (!am__utf8_valid(word, len, &bad))
        return am__fail(AMUSE_EINVAL, "word: invalid UTF-8 at byte %zu", bad);
    for (size_t i = 0; i < len; i++)
        if (word[i] == ' ' || word[i] == '\t' || word[i] == '\n' || word[i] == '\r' ||
            word[i] == '\v' || word[i] == '\f')
            return am__fail(AMUSE_EINVAL, "word '%s' contains white space", word);
    if (count < 0)
        return am__fail(AMUSE_EINVAL, "word '%s': negative count", word);
    return am__vocab_add_len(v, word, len, count, index);
}

/* ---------------------------------------------------------------------- sorting and pruning */

struct ranked {
    int64_t count, index;
};

static int by_count_then_index(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

int am__vocab_sort_prune(struct amuse_vocab *v, int64_t min_count, int32_t *remap)
{
    int rc = AMUSE_OK;
    int64_t n = v->size, kept = 0;
    struct ranked *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    size_t *off = malloc((size_t)(n ? n : 1) * sizeof *off);
    int64_t *cnt = malloc((size_t)(n ? n : 1) * sizeof *cnt);
    char *pool = malloc(v->pool_len ? v->pool_len : 1);
    int64_t *slots = malloc((v->slot_mask + 1) * sizeof *slots);
    if (!order || !off || !cnt || !pool || !slots) {
        rc = am__fail(AMUSE_ENOMEM, "vocabulary: out of memory while sorting");
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        order[i] = (struct ranked){v->count[i], i};
    qsort(order, (size_t)n, sizeof *order, by_count_then_index);
    if (remap)
        for (int64_t i = 0; i < n; i++)
            remap[i] = -1;
    size_t plen = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t i = order[j].index;
        if (v->count[i] < min_count)
            break; /* sorted: everything after is rarer */
        const char *w = v->pool + v->offset[i];
        size_t len = strlen(w);
        memcpy(pool + plen, w, len + 1);
        off[kept] = plen;
        cnt[kept] = v->count[i];
        plen += len + 1;
        if (remap)
            remap[i] = (int32_t)kept;
        kept++;
    }
    free(v->pool);
    free(v->offset);
    free(v->count);
    v->pool = pool;
    v->offset = off;
    v->count = cnt;
    v->pool_len = v->pool_cap = plen ? plen : 1;
    v->size = kept;
    v->cap = n ? n : 1;
    rehash(v, slots, v->slot_mask);
    pool = NULL;
    off = NULL;
    cnt = NULL;
    slots = NULL;
out:
    free(order);
    free(off);
    free(cnt);
    free(pool);
    free(slots);
    return rc;
}

int am__vocab_clone(const struct amuse_vocab *v, struct amuse_vocab **out)
{
    struct amuse_vocab *c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    int64_t cap = v->size ? v->size : 1;
    c->pool = malloc(v->pool_len ? v->pool_len : 1);
    c->offset = malloc((size_t)cap * sizeof *c->offset);
    c->count = malloc((size_t)cap * sizeof *c->count);
    c->slots = malloc((v->slot_mask + 1) * sizeof *c->slots);
    if (!c->pool || !c->offset || !c->count || !c->slots)
        goto nomem;
    memcpy(c->pool, v->pool, v->pool_len);
    memcpy(c->offset, v->offset, (size_t)v->size * sizeof *c->offset);
    memcpy(c->count, v->count, (size_t)v->size * sizeof *c->count);
    memcpy(c->slots, v->slots, (v->slot_mask + 1) * sizeof *c->slots);
    c->size = v->size;
    c->cap = cap;
    c->pool_len = c->pool_cap = v->pool_len;
    c->slot_mask = v->slot_mask;
    *out = c;
    return AMUSE_OK;
nomem:
    amuse_vocab_free(c);
    return am__fail(AMUSE_ENOMEM, "vocabulary: out of memory");
}

/* ------------------------------------------------------------------------------ vocab files */

int amuse_vocab_save(const struct amuse_vocab *v, const char *path)
{
    struct am__atomic_file af;
    int rc = am__atomic_open(&af, path);
    if (rc != AMUSE_OK)
        return rc;
    for (int64_t i = 0; i < v->size; i++)
        fprintf(af.f, "%s %" PRId64 "\n", v->pool + v->offset[i], v->count[i]);
    return am__atomic_commit(&af);
}

int amuse_vocab_read(const char *path, struct amuse_vocab **out)
{
    struct amuse_vocab *v = NULL;
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    int rc;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
    if ((rc = amuse_vocab_new(&v)) != AMUSE_OK)
        goto out;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got, bad;
        if (memchr(line, '\0', len)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: NUL byte: not a vocabulary file", path,
                          (long long)lineno);
            goto out;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char *sp = strchr(line, ' ');
        if (!sp || sp == line) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: expected 'word count'", path,
                          (long long)lineno);
            goto out;
        }
        size_t wlen = (size_t)(sp - line);
        if (wlen > AMUSE_W2V_MAX_WORD_BYTES) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: word of %zu bytes is over the limit of %d",
                          path, (long long)lineno, wlen, AMUSE_W2V_MAX_WORD_BYTES);
            goto out;
        }
        if (!am__utf8_valid(line, wlen, &bad)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: invalid UTF-8 at byte %zu of the word",
                          path, (long long)lineno, bad);
            goto out;
        }
        char *end;
        errno = 0;
        long long count = strtoll(sp + 1, &end, 10);
        if (errno || end == sp + 1 || *end != '\0' || count < 0) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: '%s' is not a count", path,
                          (long long)lineno, sp + 1);
            goto out;
        }
        if (am__vocab_find_len(v, line, wlen) >= 0) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: word '%.*s' appears twice", path,
                          (long long)lineno, (int)wlen, line);
            goto out;
        }
        if ((rc = am__vocab_add_len(v, line, wlen, count, NULL)) != AMUSE_OK) {
            am__fail_prefix(rc, "%s: line %lld", path, (long long)lineno);
            goto out;
        }
    }
    if (ferror(f)) {
        rc = am__fail(AMUSE_EIO, "%s: read error", path);
        goto out;
    }
    if (v->size == 0) {
        rc = am__fail(AMUSE_EFORMAT, "%s: no words", path);
        goto out;
    }
    *out = v;
    v = NULL;
    rc = AMUSE_OK;
out:
    amuse_vocab_free(v);
    free(line);
    fclose(f);
    return rc;
}
