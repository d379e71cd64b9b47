/* log.c - the server's log hook: one formatted line handed to the embedding program's callback
 * (amuse serve prints it). Lines are bounded; nothing here writes files. */
#include "serve/serve_internal.h"

#include <stdarg.h>
#include <stdio.h>

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

