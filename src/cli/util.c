/* util.c - error printing and strict argument parsing for the amuse command. */
#include "cli/cli.h"

#include "amuse/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("amuse: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail(int status, const char *what)
{
    const char *detail = amuse_last_error();
    if (detail[0])
        return cli_error("%s: %s", what, detail);
    return cli_error("%s: %s", what, amuse_strerror(status));
}

int cli_parse_int(const char *opt, const char *text, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return cli_error("%s: '%s' is not an integer", opt, text);
    if (v < lo || v > hi)
        return cli_error("%s: %lld is outside [%lld, %lld]", opt, v, lo, hi);
    *out = v;
    return 0;
}

int cli_parse_double(const char *opt, const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || v != v)
        return cli_error("%s: '%s' is not a number", opt, text);
    if (v < lo || v > hi)
        return cli_error("%s: %g is outside [%g, %g]", opt, v, lo, hi);
    *out = v;
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}
