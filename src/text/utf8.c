/* utf8.c - UTF-8 decoding, validation and the streaming tokenizer behind the word2vec corpus
 * reader. Works on bytes and code points only: no normalisation, no locale, no word segmentation. */
#define _POSIX_C_SOURCE 200809L
#include "text/utf8.h"

#include "amuse/word2vec.h"
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_CHUNK (1u << 20)

int am__utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    if (avail == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return -1; /* continuation byte, overlong lead C0/C1, or F5..FF */
    }
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail)
            return 0;
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        v = (v << 6) | (s[i] & 0x3F);
        /* Reject overlong and out-of-range forms as early as the second byte allows. */
        if (i == 1 && ((n == 3 && v < 0x20) || (n == 4 && (v < 0x10 || v > 0x10F))))
            return -1;
        if (i == 1 && n == 3 && v >= 0x360 && v <= 0x37F)
            return -1; /* surrogates D800..DFFF */
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return -1;
    *cp = v;
    return n;
}

int am__utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int n = am__utf8_decode(u + i, len - i, &cp);
        if (n <= 0) {
            if (bad_offset)
                *bad_offset = i;
            return 0;
        }
        i += (size_t)n;
    }
    return 1;
}

size_t am__utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int am__utf8_is_space(uint32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f';
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

/* ------------------------------------------------------------------------------ tokenizer */

int am__token_reader_open(struct am__token_reader *r, const char *path, int chars, int skip_invalid)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->chars = chars;
    r->skip_invalid = skip_invalid;
    r->f = fopen(path, "rb");
    if (!r->f)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(r->f);
        r->f = NULL;
        return am__fail(AMUSE_EIO, "%s: is a directory or cannot be read", path);
    }
    r->buf = malloc(READ_CHUNK + 8);
    if (!r->buf) {
        fclose(r->f);
        r->f = NULL;
        return am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
    }
    return AMUSE_OK;
}

void am__token_reader_close(struct am__token_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->buf);
    r->f = NULL;
    r->buf = NULL;
}

/* Make at least 4 bytes available at r->pos unless the file ends first. */
static int refill(struct am__token_reader *r)
{
    if (r->eof || r->len - r->pos >= 4)
        return AMUSE_OK;
    size_t keep = r->len - r->pos;
    memmove(r->buf, r->buf + r->pos, keep);
    r->base += r->pos;
    r->pos = 0;
    r->len = keep;
    size_t got = fread(r->buf + keep, 1, READ_CHUNK, r->f);
    if (got < READ_CHUNK) {
        if (ferror(r->f))
            return am__fail(AMUSE_EIO, "%s: read error at byte %llu", r->path,
                            (unsigned long long)(r->base + r->len));
        r->eof = 1;
    }
    r->len += got;
    return AMUSE_OK;
}

int am__token_next(struct am__token_reader *r)
{
    int too_long = 0, invalid = 0, rc;
    if (r->pending_eol) {
        r->pending_eol = 0;
        return AM__TOKEN_EOL;
    }
    r->word_len = 0;
    for (;;) {
        if (r->len - r->pos < 4 && (rc = refill(r)) != AMUSE_OK)
            return rc;
        if (r->pos >= r->len)
            break; /* end of file */
        const unsigned char *p = r->buf + r->pos;
        uint32_t cp;
        int n;
        if (p[0] < 0x80) {
            cp = p[0];
            n = 1;
            if (cp == 0)
                return am__fail(AMUSE_EFORMAT, "%s: byte %llu: NUL byte: this is a binary file, not text",
                                r->path, (unsigned long long)(r->base + r->pos));
        } else {
            n = am__utf8_decode(p, r->len - r->pos, &cp);
            if (n <= 0) { /* invalid, or truncated by the end of the file */
                if (!r->skip_invalid)
                    return am__fail(AMUSE_EFORMAT, "%s: byte %llu: invalid UTF-8 (0x%02x)", r->path,
                                    (unsigned long long)(r->base + r->pos), p[0]);
                invalid = 1;
                r->pos++;
                continue;
            }
        }
        if (am__utf8_is_space(cp) && (cp < 0x80 || r->chars)) {
            r->pos += (size_t)n;
            int eol = cp == '\n';
            if (r->word_len || too_long || invalid) {
                if (too_long || invalid) {
                    if (too_long)
                        r->dropped_long++;
                    else
                        r->dropped_invalid++;
                    too_long = invalid = 0;
                    r->word_len = 0;
                    if (eol)
                        return AM__TOKEN_EOL;
                    continue;
                }
                r->word[r->word_len] = '\0';
                r->pending_eol = eol;
                return AM__TOKEN_WORD;
            }
            if (eol)
                return AM__TOKEN_EOL;
            continue;
        }
        r->pos += (size_t)n;
        if (r->chars) { /* one code point is one token */
            if (invalid) {
                r->dropped_invalid++;
                invalid = 0;
            }
            memcpy(r->word, p, (size_t)n);
            r->word_len = (size_t)n;
            r->word[n] = '\0';
            return AM__TOKEN_WORD;
        }
        if (r->word_len + (size_t)n > AMUSE_W2V_MAX_WORD_BYTES)
            too_long = 1;
        if (!too_long) {
            memcpy(r->word + r->word_len, p, (size_t)n);
            r->word_len += (size_t)n;
        }
    }
    if (too_long || invalid) {
        if (too_long)
            r->dropped_long++;
        else
            r->dropped_invalid++;
        return AM__TOKEN_EOF;
    }
    if (r->word_len) {
        r->word[r->word_len] = '\0';
        return AM__TOKEN_WORD;
    }
    return AM__TOKEN_EOF;
}
