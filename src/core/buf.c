/* buf.c - the library's one growable byte buffer (with a hard cap), its one JSON string
 * escaper and float printer, and its one monotonic clock. Used by the server's replies and logs,
 * the safetensors header writer and the command's JSON output. It does not parse JSON (cJSON
 * does) and does not validate UTF-8 (text/utf8.c does): callers escape what they checked. */
#define _GNU_SOURCE
#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int buf_reserve(struct am__buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    size_t max = b->max ? b->max : AM__BUF_MAX;
    if (b->len > max || extra > max - b->len) {
        b->failed = AMUSE_ETOOBIG;
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
        b->failed = AMUSE_ENOMEM;
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
    if (n) /* s may be NULL when n is 0 (libmicrohttpd's empty form fields) */
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

double am__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
