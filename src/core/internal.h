/* core/internal.h - helpers shared by the library's source files (am__ prefix, not installed). */
#ifndef AMUSE_CORE_INTERNAL_H
#define AMUSE_CORE_INTERNAL_H

#include "amuse/error.h"

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AM__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AM__PRINTF(a, b)
#endif

/* Record a detailed message for this thread and return status, so that a failure reads
 *     return am__fail(AMUSE_EFORMAT, "%s: byte %zu: ...", path, off);                       */
int am__fail(int status, const char *fmt, ...) AM__PRINTF(2, 3);

/* Put "<prefix>: " in front of the current message (adds the file name to a parser's error). */
int am__fail_prefix(int status, const char *fmt, ...) AM__PRINTF(2, 3);

/* 64-byte aligned allocation, zero-filled; free with am__free. NULL on failure or overflow. */
void *am__calloc_aligned(size_t count, size_t size);
void am__free(void *p);

/* Write len bytes to path atomically: "<path>.tmp.<pid>", fsync, rename, fsync the directory.
 * On failure nothing is left at path or at the temporary name. */
int am__write_file_atomic(const char *path, const void *data, size_t len);

/* Create a directory and its parents (mode 0755); an existing directory is fine. */
int am__mkdir_p(const char *path);

/* A file written through stdio and put in place atomically, for outputs too big to build in memory:
 * am__atomic_open creates "<path>.tmp.<pid>"; am__atomic_commit flushes, fsyncs, renames and fsyncs
 * the directory; am__atomic_abort (also after a failed commit, and on NULL) removes the temp file. */
struct am__atomic_file {
    FILE *f;        /* write here */
    char *path;     /* final name */
    char *tmp_path; /* temporary name */
};
int am__atomic_open(struct am__atomic_file *af, const char *path);
int am__atomic_commit(struct am__atomic_file *af);
void am__atomic_abort(struct am__atomic_file *af);

/* Read a whole file, up to max_bytes; adds a NUL after the data (not counted in *len). */
int am__read_file(const char *path, size_t max_bytes, char **data, size_t *len);

/* The one growable byte buffer (buf.c), always NUL-terminated. Zero-initialise it; max 0 means
 * AM__BUF_MAX. When an append would pass the cap or allocation fails, `failed` becomes
 * AMUSE_ETOOBIG or AMUSE_ENOMEM and later appends do nothing; check it once at the end. */
#define AM__BUF_MAX ((size_t)1 << 30)
struct am__buf {
    char *data;
    size_t len, cap;
    size_t max; /* cap on len; 0: AM__BUF_MAX */
    int failed; /* 0, AMUSE_ENOMEM or AMUSE_ETOOBIG */
};
void am__buf_add(struct am__buf *b, const char *s, size_t n);
void am__buf_puts(struct am__buf *b, const char *s);
void am__buf_printf(struct am__buf *b, const char *fmt, ...) AM__PRINTF(2, 3);
void am__buf_json_string(struct am__buf *b, const char *s); /* quoted and escaped */
void am__buf_float(struct am__buf *b, float v);             /* shortest round-trip, null if not finite */
void am__buf_release(struct am__buf *b);

/* JSON from outside (json.c). Check JSON before cJSON parses it: AMUSE_EFORMAT naming the byte
 * offset where nesting exceeds max_depth (brackets inside strings do not count), or where a
 * string holds \u0000 (cJSON's C strings would end there, cutting the text without a word). */
int am__json_precheck(const char *s, size_t len, int max_depth);

struct cJSON;
/* Parse a document that must be one JSON object (a request body, a JSON line): empty input,
 * depth, \u0000, syntax (with the byte offset, or "truncated"), text after the object and "must
 * be an object" errors are AMUSE_EFORMAT with a message. */
int am__json_parse_object(const char *body, size_t len, int max_depth, struct cJSON **doc);

/* The one monotonic clock: CLOCK_MONOTONIC seconds (buf.c). */
double am__now(void);

#endif
