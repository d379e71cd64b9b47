/* error.c - status strings and the per-thread "what and where" message.
 * Does not print or exit: the CLI decides what to do with a failure. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *amuse_strerror(int status)
{
    switch (status) {
    case AMUSE_OK: return "success";
    case AMUSE_ENOMEM: return "out of memory";
    case AMUSE_EINVAL: return "invalid argument";
    case AMUSE_EIO: return "input/output error";
    case AMUSE_EFORMAT: return "malformed input";
    case AMUSE_ESHAPE: return "shape mismatch";
    case AMUSE_ETOOBIG: return "input exceeds a limit";
    case AMUSE_ENOTFOUND: return "not found";
    case AMUSE_EUNSUPPORTED: return "unsupported";
    case AMUSE_EBUSY: return "busy; retry later";
    default: return "unknown error";
    }
}

const char *amuse_last_error(void)
{
    return last_error;
}

void amuse_clear_error(void)
{
    last_error[0] = '\0';
}

int am__fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int am__fail_prefix(int status, const char *fmt, ...)
{
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3)
        n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t room = sizeof last_error - n - 3;
    size_t m = strnlen(old, room);
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = '\0';
    return status;
}
