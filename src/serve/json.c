/* json.c - what the server's JSON needs around cJSON: the nesting-depth check run before cJSON
 * parses a body (cJSON recurses per level, so a body of "[[[[..." must be refused first), the
 * one body parser, and the log helper. The output buffer, string escaping, float printing and
 * the monotonic clock are core's (core/buf.c), shared with the rest of the library. Parsing
 * itself is cJSON's. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

