/* json.c - what untrusted JSON needs around cJSON: the check run before cJSON parses it
 * (nesting depth, since cJSON recurses per level and a body of "[[[[..." must be refused first;
 * and \u0000 in strings, which cJSON would cut the string at), and the one parser of a document
 * that must be one JSON object (request bodies, JSON lines, feature recipes). Parsing itself is
 * cJSON's; writing JSON is buf.c's. */
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <string.h>

int am__json_precheck(const char *s, size_t len, int max_depth)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') {
                /* cJSON would end the C string at a NUL and keep only what came before it: a
                 * review "great\u0000<anything>" would be stored as "great", silently. */
                if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0)
                    return am__fail(AMUSE_EFORMAT,
                                    "JSON strings may not contain \\u0000 (byte %zu)", i);
                i++; /* skip the escaped character */
            } else if (c == '"') {
                in_string = 0;
            }
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
    int rc = am__json_precheck(body, len, max_depth);
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
        return am__fail(AMUSE_EFORMAT, "the document must be a JSON object");
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
