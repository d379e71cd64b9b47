/* static.c - the playground's files from the web root: GET / is <root>/index.html and
 * GET /web/<path> is <root>/<path>. These routes are public (no key): the files hold no data, and
 * every API call the page makes carries the key the user pasted into it.
 *
 * What is served, and nothing else (everything else is 404):
 *  - a path of segments that are not empty, do not start with '.' (so no "..", no ".", no hidden
 *    files), and hold no control character or backslash; the URL arrives percent-decoded from
 *    libmicrohttpd, so "%2e%2e" is caught the same way;
 *  - whose extension is one of the types below (Content-Type from the extension, never sniffed);
 *  - that resolves (realpath, symlinks followed) to a regular file strictly inside the resolved
 *    root, so a symlink inside the root may point elsewhere inside it but never outside;
 *  - of at most AM__STATIC_MAX_BYTES.
 * The file is opened O_NOFOLLOW | O_NONBLOCK (a FIFO cannot hang the thread) and checked with
 * fstat on the open descriptor. No directory listings. Responses say Cache-Control: no-cache (the
 * page changes with the server, and revalidating a few kilobytes costs nothing) and carry a
 * Content-Security-Policy that lets the page talk only to this origin. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AM__STATIC_MAX_BYTES ((size_t)4 << 20)
#define AM__STATIC_MAX_PATH 512

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"json", "application/json"},
    {NULL, NULL},
};

static const char *const static_headers[] = {
    "Cache-Control", "no-cache",
    "X-Content-Type-Options", "nosniff",
    "Referrer-Policy", "no-referrer",
    "Content-Security-Policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    NULL,
};

int am__static_open(struct amuse_server *s)
{
    if (!s->opt.web_root)
        return AMUSE_OK;
    errno = 0;
    s->web_root = realpath(s->opt.web_root, NULL);
    struct stat st;
    if (!s->web_root || stat(s->web_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int rc = am__fail(AMUSE_ENOTFOUND, "web root '%s' is not a directory%s%s",
                          s->opt.web_root, errno ? ": " : "", errno ? strerror(errno) : "");
        free(s->web_root);
        s->web_root = NULL;
        return rc;
    }
    s->opt.web_root = s->web_root; /* the caller's string need not outlive the start */
    am__logf(&s->log, "playground files from %s", s->web_root);
    return AMUSE_OK;
}

/* The Content-Type for a path the rules above allow, or NULL. */
const char *am__static_path_type(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n > AM__STATIC_MAX_PATH)
        return NULL;
    const char *seg = rel;
    for (const char *c = rel;; c++) {
        if (*c == '/' || *c == '\0') {
            if (c == seg || seg[0] == '.')
                return NULL; /* empty segment (leading, doubled or trailing '/'), ".", "..", .x */
            if (*c == '\0')
                break;
            seg = c + 1;
        } else if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') {
            return NULL;
        }
    }
    const char *dot = strrchr(seg, '.');
    if (!dot)
        return NULL;
    for (int i = 0; types[i].ext; i++)
        if (strcmp(dot + 1, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static const char out_of_memory[] = "out of memory";

/* Read root/rel into r->out if the rules allow: NULL, or why not (a 404, or out_of_memory). */
static const char *read_file(struct am__request *r, const char *root, const char *rel)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", root, rel) >= sizeof path)
        return "path too long";
    char *real = realpath(path, NULL);
    if (!real)
        return "no such file";
    size_t root_len = strlen(root);
    int inside = strncmp(real, root, root_len) == 0 && real[root_len] == '/';
    int fd = inside ? open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
    free(real);
    if (!inside)
        return "no such file"; /* a symlink out of the web root */
    if (fd < 0)
        return "no such file";
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        why = "not a file";
    else if ((uint64_t)st.st_size > AM__STATIC_MAX_BYTES)
        why = "file over the 4 MiB cap for static files";
    size_t size = why ? 0 : (size_t)st.st_size, got = 0;
    char *data = why || size == 0 ? NULL : malloc(size);
    if (!why && size && !data)
        why = out_of_memory;
    while (!why && got < size) {
        ssize_t k = read(fd, data + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* the file shrank: serve what is there */
        got += (size_t)k;
    }
    close(fd);
    if (!why) {
        am__buf_add(&r->out, data ? data : "", got);
        if (r->out.failed)
            why = out_of_memory;
    }
    free(data);
    return why;
}

void am__handle_static(struct am__request *r)
{
    r->headers = static_headers;
    const char *rel = strcmp(r->url, "/") == 0 ? "index.html" : r->url + strlen("/web/");
    const char *root = r->server->web_root;
    if (!root) {
        am__reply_error(r, 404, "this server has no playground files (start it with --web-root "
                                "DIR)");
        return;
    }
    const char *type = am__static_path_type(rel);
    const char *why = type ? read_file(r, root, rel) : "not a file this server serves";
    if (why) {
        am__reply_error(r, why == out_of_memory ? 500 : 404, "%s: %s", r->url, why);
        return;
    }
    r->status = 200;
    r->content_type = type;
}
