/* json.c - small pieces the server's JSON needs around cJSON: a growable output buffer with a
 * cap, string escaping, float printing, and the nesting-depth check run before cJSON parses a
 * body (cJSON recurses per level, so a body of "[[[[..." must be refused first). Also the log
 * helper. Parsing itself is cJSON's. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int buf_reserve(struct am__buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > AM__BUF_MAX - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void am__buf_add(struct am__buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void am__buf_puts(struct am__buf *b, const char *s)
{
    am__buf_add(b, s, strlen(s));
}

void am__buf_printf(struct am__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        am__buf_add(b, small, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void am__buf_json_string(struct am__buf *b, const char *s)
{
    am__buf_add(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        am__buf_add(b, run, (size_t)(p - run));
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            am__buf_add(b, esc, 2);
        } else {
            am__buf_printf(b, "\\u%04x", c);
        }
        run = p + 1;
    }
    am__buf_puts(b, run);
    am__buf_add(b, "\"", 1);
}

void am__buf_float(struct am__buf *b, float v)
{
    if (!isfinite(v)) {
        am__buf_add(b, "null", 4);
        return;
    }
    /* %.9g reads back as the same float. */
    am__buf_printf(b, "%.9g", (double)v);
}

void am__buf_release(struct am__buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int am__json_depth_check(const char *s, size_t len, int max_depth)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return am__fail(AMUSE_EFORMAT,
                                "JSON nests deeper than %d levels (byte %zu)", max_depth, i);
        } else if (c == ']' || c == '}') {
            if (depth > 0)
                depth--;
        }
    }
    return AMUSE_OK;
}

int am__json_parse_object(const char *body, size_t len, int max_depth, struct cJSON **doc)
{
    *doc = NULL;
    if (len == 0)
        return am__fail(AMUSE_EFORMAT, "empty body; expected a JSON object");
    int rc = am__json_depth_check(body, len, max_depth);
    if (rc)
        return rc;
    const char *end = NULL;
    cJSON *d = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!d) {
        size_t at = end ? (size_t)(end - body) : 0;
        if (at + 1 >= len)
            return am__fail(AMUSE_EFORMAT,
                            "invalid JSON: the body ends inside the document (truncated after "
                            "%zu bytes?)",
                            len);
        return am__fail(AMUSE_EFORMAT, "invalid JSON at byte %zu", at);
    }
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return am__fail(AMUSE_EFORMAT, "the body must be a JSON object");
    }
    size_t at = (size_t)(end - body);
    while (at < len && (body[at] == ' ' || body[at] == '\t' || body[at] == '\r' ||
                        body[at] == '\n'))
        at++;
    if (at < len) {
        cJSON_Delete(d);
        return am__fail(AMUSE_EFORMAT, "invalid JSON: text after the object at byte %zu", at);
    }
    *doc = d;
    return AMUSE_OK;
}

void am__logf(const struct am__log *log, const char *fmt, ...)
{
    if (!log || !log->fn)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log->fn(log->ctx, line);
}

double am__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
