/* text/charvocab.c - the character vocabulary of text models (amuse/charvocab.h): building it
 * from text, its JSON form in a model's config, and encoding/decoding.
 *
 * Lookup is a direct table for ASCII and a sorted (code point, id) array searched by bisection for
 * the rest, which keeps a Chinese vocabulary of a few thousand characters at a dozen comparisons a
 * character. Does not read files: callers hand it text.
 */
#include "amuse/charvocab.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved_names[AMUSE_CHAR_RESERVED] = {"<pad>", "<unk>", "<s>", "</s>"};

struct cp_id {
    uint32_t cp;
    int32_t id;
};

struct amuse_charvocab {
    int size;         /* ids, reserved included */
    uint32_t *cp;     /* cp[id] for id >= AMUSE_CHAR_RESERVED */
    struct cp_id *by_cp; /* size - AMUSE_CHAR_RESERVED entries, sorted by code point */
    int32_t ascii[128];
};

/* Never a token: C0 controls other than tab and newline, DEL, and the BOM. */
static int is_excluded(uint32_t cp)
{
    return (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7f || cp == 0xfeff;
}

static int by_code_point(const void *a, const void *b)
{
    uint32_t x = ((const struct cp_id *)a)->cp, y = ((const struct cp_id *)b)->cp;
    return (x > y) - (x < y);
}

void amuse_charvocab_free(struct amuse_charvocab *v)
{
    if (!v)
        return;
    free(v->cp);
    free(v->by_cp);
    free(v);
}

/* A vocabulary of the given code points (in id order from AMUSE_CHAR_RESERVED); takes cps. */
static int make_vocab(struct amuse_charvocab **out, uint32_t *cps, int n_tokens)
{
    struct amuse_charvocab *v = calloc(1, sizeof *v);
    struct cp_id *by = malloc((size_t)(n_tokens ? n_tokens : 1) * sizeof *by);
    if (!v || !by) {
        free(v);
        free(by);
        free(cps);
        return am__fail(AMUSE_ENOMEM, "character vocabulary: out of memory");
    }
    v->size = AMUSE_CHAR_RESERVED + n_tokens;
    v->cp = cps;
    v->by_cp = by;
    for (int i = 0; i < 128; i++)
        v->ascii[i] = AMUSE_CHAR_UNK;
    for (int i = 0; i < n_tokens; i++) {
        by[i].cp = cps[i];
        by[i].id = AMUSE_CHAR_RESERVED + i;
        if (cps[i] < 128)
            v->ascii[cps[i]] = AMUSE_CHAR_RESERVED + i;
    }
    qsort(by, (size_t)n_tokens, sizeof *by, by_code_point);
    *out = v;
    return 0;
}

int amuse_charvocab_size(const struct amuse_charvocab *v)
{
    return v->size;
}

int32_t amuse_charvocab_id(const struct amuse_charvocab *v, uint32_t cp)
{
    if (cp < 128)
        return v->ascii[cp];
    size_t lo = 0, hi = (size_t)(v->size - AMUSE_CHAR_RESERVED);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->by_cp[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < (size_t)(v->size - AMUSE_CHAR_RESERVED) && v->by_cp[lo].cp == cp)
        return v->by_cp[lo].id;
    return AMUSE_CHAR_UNK;
}

/* UTF-8 bytes of a code point (valid ones only reach here); returns the length. */
static int encode_cp(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int amuse_charvocab_text(const struct amuse_charvocab *v, int32_t id, char out[5])
{
    int n = 0;
    if (id >= AMUSE_CHAR_RESERVED && id < v->size)
        n = encode_cp(v->cp[id - AMUSE_CHAR_RESERVED], out);
    out[n] = '\0';
    return n;
}

/* ---------------------------------------------------------------- building from text */

struct cp_count {
    uint32_t cp;
    int64_t count;
};

static int by_count_then_cp(const void *a, const void *b)
{
    const struct cp_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->cp > y->cp) - (x->cp < y->cp);
}

int amuse_charvocab_build(struct amuse_charvocab **out, const char *const *texts,
                          const size_t *lens, int n, int min_count, int max_size,
                          const char *source)
{
    *out = NULL;
    if (n < 0 || min_count < 1 || max_size < 0 || max_size > AMUSE_CHARVOCAB_MAX_TOKENS ||
        (max_size > 0 && max_size <= AMUSE_CHAR_RESERVED))
        return am__fail(AMUSE_EINVAL, "%s: character vocabulary: min_count must be >= 1 and "
                        "max_size 0 or %d..%d", source, AMUSE_CHAR_RESERVED + 1,
                        AMUSE_CHARVOCAB_MAX_TOKENS);
    if (max_size == 0)
        max_size = AMUSE_CHARVOCAB_MAX_TOKENS;
    /* Counts over all of Unicode would be 8.9 MB; count in a table of the code points seen. */
    enum { N_CP = 0x110000 };
    int64_t *count = calloc(N_CP, sizeof *count);
    if (!count)
        return am__fail(AMUSE_ENOMEM, "%s: character vocabulary: out of memory", source);
    uint64_t base = 0;
    int64_t distinct = 0;
    for (int t = 0; t < n; t++) {
        const unsigned char *s = (const unsigned char *)texts[t];
        size_t i = 0;
        while (i < lens[t]) {
            uint32_t cp;
            int k = am__utf8_decode(s + i, lens[t] - i, &cp);
            if (k <= 0) {
                free(count);
                return am__fail(AMUSE_EFORMAT, "%s: byte %llu: invalid UTF-8", source,
                                (unsigned long long)(base + i));
            }
            if (!is_excluded(cp) && count[cp]++ == 0)
                distinct++;
            i += (size_t)k;
        }
        base += lens[t];
    }
    struct cp_count *all = malloc((size_t)(distinct ? distinct : 1) * sizeof *all);
    if (!all) {
        free(count);
        return am__fail(AMUSE_ENOMEM, "%s: character vocabulary: out of memory", source);
    }
    int64_t m = 0;
    for (uint32_t cp = 0; cp < N_CP; cp++)
        if (count[cp] >= min_count)
            all[m++] = (struct cp_count){cp, count[cp]};
    free(count);
    qsort(all, (size_t)m, sizeof *all, by_count_then_cp);
    if (m > max_size - AMUSE_CHAR_RESERVED)
        m = max_size - AMUSE_CHAR_RESERVED;
    uint32_t *cps = malloc((size_t)(m ? m : 1) * sizeof *cps);
    if (!cps) {
        free(all);
        return am__fail(AMUSE_ENOMEM, "%s: character vocabulary: out of memory", source);
    }
    for (int64_t i = 0; i < m; i++)
        cps[i] = all[i].cp;
    free(all);
    return make_vocab(out, cps, (int)m);
}

/* ---------------------------------------------------------------- JSON form */

int amuse_charvocab_from_json(struct amuse_charvocab **out, const char *json, size_t len,
                              const char *source)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!doc)
        return am__fail(AMUSE_EFORMAT, "%s: vocabulary: invalid JSON near byte %ld", source,
                        end ? (long)(end - json) : 0L);
    int st = 0;
    uint32_t *cps = NULL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
    const cJSON *reserved = cJSON_GetObjectItemCaseSensitive(doc, "reserved");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(doc, "tokens");
    if (!cJSON_IsObject(doc) || !cJSON_IsString(type) || strcmp(type->valuestring, "chars") != 0) {
        st = am__fail(AMUSE_EFORMAT, "%s: vocabulary: \"type\" must be \"chars\"", source);
        goto out;
    }
    if (reserved) {
        int ok = cJSON_IsArray(reserved) && cJSON_GetArraySize(reserved) == AMUSE_CHAR_RESERVED;
        for (int i = 0; ok && i < AMUSE_CHAR_RESERVED; i++) {
            const cJSON *r = cJSON_GetArrayItem(reserved, i);
            ok = cJSON_IsString(r) && strcmp(r->valuestring, reserved_names[i]) == 0;
        }
        if (!ok) {
            st = am__fail(AMUSE_EFORMAT, "%s: vocabulary: \"reserved\" must be "
                          "[\"<pad>\", \"<unk>\", \"<s>\", \"</s>\"]", source);
            goto out;
        }
    }
    if (!cJSON_IsArray(tokens)) {
        st = am__fail(AMUSE_EFORMAT, "%s: vocabulary: \"tokens\" must be an array of strings",
                      source);
        goto out;
    }
    int n = cJSON_GetArraySize(tokens);
    if (n > AMUSE_CHARVOCAB_MAX_TOKENS - AMUSE_CHAR_RESERVED) {
        st = am__fail(AMUSE_ETOOBIG, "%s: vocabulary: %d tokens, more than the cap of %d", source,
                      n, AMUSE_CHARVOCAB_MAX_TOKENS - AMUSE_CHAR_RESERVED);
        goto out;
    }
    cps = malloc((size_t)(n ? n : 1) * sizeof *cps);
    if (!cps) {
        st = am__fail(AMUSE_ENOMEM, "%s: vocabulary: out of memory", source);
        goto out;
    }
    int i = 0;
    for (const cJSON *t = tokens->child; t; t = t->next, i++) {
        uint32_t cp = 0;
        size_t tl = cJSON_IsString(t) ? strlen(t->valuestring) : 0;
        int k = tl ? am__utf8_decode((const unsigned char *)t->valuestring, tl, &cp) : -1;
        if (k <= 0 || (size_t)k != tl || is_excluded(cp)) {
            st = am__fail(AMUSE_EFORMAT, "%s: vocabulary: tokens[%d] must be one character "
                          "(not a control character)", source, i);
            goto out;
        }
        cps[i] = cp;
    }
    struct amuse_charvocab *v = NULL;
    st = make_vocab(&v, cps, n);
    cps = NULL;
    if (st)
        goto out;
    for (int j = 1; j < n; j++) {
        if (v->by_cp[j].cp == v->by_cp[j - 1].cp) {
            int first = v->by_cp[j].id < v->by_cp[j - 1].id ? v->by_cp[j].id : v->by_cp[j - 1].id;
            int second = v->by_cp[j].id ^ v->by_cp[j - 1].id ^ first;
            st = am__fail(AMUSE_EFORMAT, "%s: vocabulary: tokens[%d] repeats tokens[%d]", source,
                          second - AMUSE_CHAR_RESERVED, first - AMUSE_CHAR_RESERVED);
            amuse_charvocab_free(v);
            goto out;
        }
    }
    *out = v;
out:
    free(cps);
    cJSON_Delete(doc);
    return st;
}

int amuse_charvocab_to_json(const struct amuse_charvocab *v, char **json)
{
    *json = NULL;
    cJSON *doc = cJSON_CreateObject();
    cJSON *tokens = NULL;
    int ok = doc && cJSON_AddStringToObject(doc, "type", "chars") &&
             cJSON_AddItemToObject(doc, "reserved",
                                   cJSON_CreateStringArray(reserved_names, AMUSE_CHAR_RESERVED)) &&
             (tokens = cJSON_AddArrayToObject(doc, "tokens")) != NULL;
    for (int id = AMUSE_CHAR_RESERVED; ok && id < v->size; id++) {
        char s[5];
        amuse_charvocab_text(v, id, s);
        ok = cJSON_AddItemToArray(tokens, cJSON_CreateString(s));
    }
    char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text)
        return am__fail(AMUSE_ENOMEM, "vocabulary: out of memory writing JSON");
    *json = text;
    return 0;
}

/* ---------------------------------------------------------------- encoding */

int amuse_charvocab_encode(const struct amuse_charvocab *v, const char *text, size_t len,
                           enum amuse_unknown_chars unknown, int32_t *ids, size_t cap,
                           size_t *n_ids, size_t *n_unknown)
{
    size_t n = 0, unk = 0, i = 0;
    *n_ids = 0;
    if (n_unknown)
        *n_unknown = 0;
    const unsigned char *s = (const unsigned char *)text;
    while (i < len) {
        uint32_t cp;
        int k = am__utf8_decode(s + i, len - i, &cp);
        if (k <= 0)
            return am__fail(AMUSE_EFORMAT, "byte %zu: invalid UTF-8", i);
        int32_t id = is_excluded(cp) ? AMUSE_CHAR_UNK : amuse_charvocab_id(v, cp);
        if (id == AMUSE_CHAR_UNK) {
            unk++;
            if (unknown == AMUSE_UNKNOWN_FAIL)
                return am__fail(AMUSE_EINVAL, "byte %zu: character U+%04X is not in the "
                                "vocabulary", i, (unsigned)cp);
            if (unknown == AMUSE_UNKNOWN_SKIP) {
                i += (size_t)k;
                continue;
            }
        }
        if (n == cap)
            return am__fail(AMUSE_ETOOBIG, "byte %zu: the text needs more than %zu tokens", i, cap);
        ids[n++] = id;
        i += (size_t)k;
    }
    *n_ids = n;
    if (n_unknown)
        *n_unknown = unk;
    return 0;
}
