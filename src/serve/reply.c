/* reply.c - error replies: {"error": "..."} (KServe V2 and the admin routes) or OpenAI's error
 * object on /v1/... paths, and the mapping of a library status to one. Handlers and the HTTP glue
 * both use it, so it depends on neither.
 * Not here: sending (http.c), success bodies (each route's file). */
#include "serve/serve_internal.h"
#include "text/utf8.h"

#include <stdio.h>
#include <string.h>

void am__reply_error(struct am__request *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages quote what clients sent (query strings, names): bytes that are not UTF-8 (or a
     * code point the truncation above cut) become '?', so the JSON reply stays valid. */
    for (size_t i = 0, n = strlen(msg); i < n;) {
        uint32_t cp;
        int k = am__utf8_decode((const unsigned char *)msg + i, n - i, &cp);
        if (k > 0) {
            i += (size_t)k;
        } else {
            msg[i++] = '?';
        }
    }
    am__buf_release(&r->out);
    r->status = status;
    if (am__openai_path(r->url)) {
        am__openai_error(&r->out, status, msg);
        return;
    }
    am__buf_puts(&r->out, "{\"error\": ");
    am__buf_json_string(&r->out, msg);
    am__buf_puts(&r->out, "}");
}

void am__reply_status(struct am__request *r, int status, int http_status)
{
    if (status == AMUSE_ENOMEM) /* the one place: running out of memory is never the client's */
        http_status = 500;
    if (status == AMUSE_EBUSY) { /* ... and a busy database is nobody's fault: retry */
        http_status = 503;
        r->retry_after = 1;
    }
    const char *msg = amuse_last_error();
    am__reply_error(r, http_status, "%s", msg[0] ? msg : amuse_strerror(status));
}
