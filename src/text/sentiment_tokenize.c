/* text/sentiment_tokenize.c - the review-text tokenizer of the sentiment model: HTML entities,
 * lower case, words with inner apostrophes, emoticons and emoji as tokens, URLs and mentions as
 * placeholders, and negation scope marking ("not_" prefix up to the end of the clause).
 * It does not stem, spell-correct, split hashtags into words or case-fold beyond ASCII. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/sentiment.h"
#include "core/internal.h"
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Emoticons, longest first where one is a prefix of another (matched on lower-cased text). */
static const char *const emoticons[] = {
    ":-)", ":)",  ":-(", ":(",  ":-d", ":d",  ";-)", ";)",  ":-p", ":p",  ":'(",  ":'-(", ":-/",
    ":/",  ":-|", ":|",  ":-o", ":o",  ":-*", ":*",  "<3",  "</3", "=)",  "=(",   "=d",   ";d",
    "xd",  "^^",  "^_^", ":]",  ":[",  "(:",  "):",  ":-]", ":-[", ">:(", ">:-(", "d:",
};

static const char *const negators[] = {
    "not",    "no",      "never",  "none",   "nobody", "nothing", "neither", "nor",      "nowhere",
    "cannot", "without", "hardly", "barely", "rarely", "seldom",  "dont",    "doesnt",   "didnt",
    "isnt",   "arent",   "wasnt",  "werent", "wont",   "cant",    "couldnt", "shouldnt", "wouldnt",
    "havent", "hasnt",   "hadnt",  "aint",   "lack",   "lacks",   "lacking",
};

static int is_ascii_alnum(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Emoji and pictographs: one token each. */
static int is_emoji(uint32_t c)
{
    return (c >= 0x2600 && c <= 0x27BF) || (c >= 0x1F000 && c <= 0x1FAFF);
}

/* Letters, digits and other non-ASCII text; not punctuation, symbols or spaces. */
static int is_word_cp(uint32_t c)
{
    if (c < 0x80)
        return is_ascii_alnum(c) || c == '_';
    if (c <= 0xBF || (c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) || c == 0xD7 ||
        c == 0xF7 || c == 0xFEFF || is_emoji(c) || am__utf8_is_space(c))
        return 0;
    return 1;
}

static uint32_t cp_at(const char *s, size_t len, size_t i, int *n)
{
    uint32_t c = 0;
    int k = am__utf8_decode((const unsigned char *)s + i, len - i, &c);
    *n = k > 0 ? k : 1; /* the text was validated: k > 0 */
    return c;
}

/* ------------------------------------------------------------------ pass 1: entities, case */

static size_t put_utf8(char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* If s[i..] starts an entity, its code point and length; 0 otherwise. */
static size_t entity(const char *s, size_t len, size_t i, uint32_t *cp)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {{"&amp;", '&'},  {"&lt;", '<'},    {"&gt;", '>'},
                 {"&quot;", '"'}, {"&apos;", '\''}, {"&nbsp;", ' '}};
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
        size_t n = strlen(named[k].name);
        if (len - i >= n && memcmp(s + i, named[k].name, n) == 0) {
            *cp = named[k].cp;
            return n;
        }
    }
    if (len - i < 4 || s[i + 1] != '#')
        return 0;
    size_t j = i + 2;
    int hex = 0;
    if (s[j] == 'x' || s[j] == 'X') {
        hex = 1;
        j++;
    }
    uint32_t v = 0;
    size_t digits = 0;
    for (; j < len && digits < 8; j++, digits++) {
        char ch = s[j];
        uint32_t d;
        if (ch >= '0' && ch <= '9')
            d = (uint32_t)(ch - '0');
        else if (hex && ch >= 'a' && ch <= 'f')
            d = (uint32_t)(ch - 'a' + 10);
        else if (hex && ch >= 'A' && ch <= 'F')
            d = (uint32_t)(ch - 'A' + 10);
        else
            break;
        v = v * (hex ? 16u : 10u) + d;
    }
    if (digits == 0 || j >= len || s[j] != ';' || v == 0 || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return j + 1 - i;
}

/* Decode entities and lower-case ASCII into out (at most len bytes: an entity never grows). */
static size_t normalise(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = s[i] == '&' ? entity(s, len, i, &cp) : 0;
        if (n) {
            o += put_utf8(out + o, cp);
            i += n;
            continue;
        }
        char ch = s[i++];
        out[o++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    return o;
}

/* ------------------------------------------------------------------------ pass 2: tokens */

struct emitter {
    char *pool;
    size_t used;
    int *offsets;
    int n;
    int negated; /* inside a negation scope */
};

static void emit(struct emitter *e, const char *prefix, const char *tok, size_t len)
{
    e->offsets[e->n++] = (int)e->used;
    size_t p = strlen(prefix);
    memcpy(e->pool + e->used, prefix, p);
    memcpy(e->pool + e->used + p, tok, len);
    e->used += p + len;
    e->pool[e->used++] = '\0';
}

static int is_negator(const char *w, size_t len)
{
    if (len >= 3 && memcmp(w + len - 3, "n't", 3) == 0)
        return 1;
    for (size_t k = 0; k < sizeof negators / sizeof negators[0]; k++)
        if (strlen(negators[k]) == len && memcmp(negators[k], w, len) == 0)
            return 1;
    return 0;
}

static size_t match_emoticon(const char *s, size_t len, size_t i)
{
    size_t best = 0;
    for (size_t k = 0; k < sizeof emoticons / sizeof emoticons[0]; k++) {
        size_t n = strlen(emoticons[k]);
        if (n <= best || len - i < n || memcmp(s + i, emoticons[k], n) != 0)
            continue;
        /* It must end the token: "xdd" and "http://" are not emoticons. */
        if (i + n < len && (is_ascii_alnum((unsigned char)s[i + n]) || s[i + n] == '/'))
            continue;
        /* Letter-led ones ("xd", "d:") must also start a token. */
        if (is_ascii_alnum((unsigned char)s[i]) && i > 0 && is_ascii_alnum((unsigned char)s[i - 1]))
            continue;
        best = n;
    }
    return best;
}

static int starts_with(const char *s, size_t len, size_t i, const char *p)
{
    size_t n = strlen(p);
    return len - i >= n && memcmp(s + i, p, n) == 0;
}

/* A word from s[i..]: word code points with inner apostrophes, into buf (runs of a character cut
 * to three, U+2019 as "'", at most AMUSE_SENTIMENT_MAX_TOKEN_BYTES). Returns bytes consumed. */
static size_t read_word(const char *s, size_t len, size_t i, char *buf, size_t *blen)
{
    size_t start = i, b = 0, trunc = 0;
    uint32_t prev = 0;
    int run = 0;
    while (i < len) {
        int n;
        uint32_t c = cp_at(s, len, i, &n);
        if (c == '\'' || c == 0x2019) {
            int m;
            if (i + (size_t)n >= len || !is_word_cp(cp_at(s, len, i + (size_t)n, &m)))
                break;
            c = '\'';
        } else if (!is_word_cp(c)) {
            break;
        }
        run = c == prev ? run + 1 : 1;
        prev = c;
        if (run <= 3 && !trunc) {
            char tmp[4];
            size_t k = c == '\'' ? (tmp[0] = '\'', 1) : (memcpy(tmp, s + i, (size_t)n), (size_t)n);
            if (b + k > AMUSE_SENTIMENT_MAX_TOKEN_BYTES)
                trunc = 1;
            else {
                memcpy(buf + b, tmp, k);
                b += k;
            }
        }
        i += (size_t)n;
    }
    *blen = b;
    return i - start;
}

int amuse_sentiment_tokenize(const char *text, size_t len, struct amuse_sentiment_tokens *out)
{
    memset(out, 0, sizeof *out);
    size_t bad;
    if (len > AMUSE_SENTIMENT_MAX_TEXT_BYTES)
        return am__fail(AMUSE_ETOOBIG, "text of %zu bytes is over the cap of %d bytes", len,
                        AMUSE_SENTIMENT_MAX_TEXT_BYTES);
    if (len && !text)
        return am__fail(AMUSE_EINVAL, "text is NULL");
    if (len && !am__utf8_valid(text, len, &bad))
        return am__fail(AMUSE_EFORMAT, "byte %zu: invalid UTF-8", bad);
    if (len && memchr(text, '\0', len))
        return am__fail(AMUSE_EFORMAT, "byte %zu: NUL byte in text",
                        (size_t)((const char *)memchr(text, '\0', len) - text));
    /* Every token is at most its source bytes plus a 6-byte prefix or placeholder and a NUL. */
    char *s = malloc(len + 1);
    struct emitter e = {0};
    e.pool = malloc(8 * len + 64);
    e.offsets = malloc((len + 1) * sizeof *e.offsets);
    char word[AMUSE_SENTIMENT_MAX_TOKEN_BYTES + 4];
    if (!s || !e.pool || !e.offsets) {
        free(s);
        free(e.pool);
        free(e.offsets);
        return am__fail(AMUSE_ENOMEM, "tokenizer: out of memory for %zu bytes", len);
    }
    size_t n = normalise(text, len, s);
    for (size_t i = 0; i < n;) {
        int k;
        uint32_t c = cp_at(s, n, i, &k);
        if (am__utf8_is_space(c) || c < 0x20) {
            i += (size_t)k;
            continue;
        }
        if (starts_with(s, n, i, "http://") || starts_with(s, n, i, "https://") ||
            starts_with(s, n, i, "www.")) {
            while (i < n && !am__utf8_is_space(cp_at(s, n, i, &k)))
                i += (size_t)k;
            emit(&e, "", "<url>", 5);
            continue;
        }
        size_t em = match_emoticon(s, n, i);
        if (em) {
            emit(&e, "", s + i, em);
            i += em;
            continue;
        }
        if (c == '@' && i + 1 < n && is_word_cp(cp_at(s, n, i + 1, &k))) {
            i++;
            while (i < n && is_word_cp(cp_at(s, n, i, &k)))
                i += (size_t)k;
            emit(&e, "", "<user>", 6);
            continue;
        }
        if (is_emoji(c)) {
            emit(&e, "", s + i, (size_t)k);
            i += (size_t)k;
            continue;
        }
        if (is_word_cp(c)) {
            size_t wl;
            i += read_word(s, n, i, word, &wl);
            if (wl == 3 && memcmp(word, "but", 3) == 0)
                e.negated = 0;
            emit(&e, e.negated ? "not_" : "", word, wl);
            if (is_negator(word, wl))
                e.negated = 1;
            continue;
        }
        if (c == '!' || c == '?') {
            emit(&e, "", c == '!' ? "!" : "?", 1);
            while (i < n && s[i] == (char)c)
                i++;
            e.negated = 0;
            continue;
        }
        if (c == '.' || c == ',' || c == ';' || c == ':' || c == 0x2026)
            e.negated = 0;
        i += (size_t)k;
    }
    free(s);
    out->n = e.n;
    out->pool = e.pool;
    out->items = malloc(((size_t)e.n + 1) * sizeof *out->items);
    if (!out->items) {
        free(e.offsets);
        amuse_sentiment_tokens_release(out);
        return am__fail(AMUSE_ENOMEM, "tokenizer: out of memory");
    }
    for (int t = 0; t < e.n; t++)
        out->items[t] = e.pool + e.offsets[t];
    free(e.offsets);
    return AMUSE_OK;
}

void amuse_sentiment_tokens_release(struct amuse_sentiment_tokens *t)
{
    if (!t)
        return;
    free(t->items);
    free(t->pool);
    memset(t, 0, sizeof *t);
}
