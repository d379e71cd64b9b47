/* serve_client.h - what the in-process server harnesses (fuzz_http, fuzz_multipart, fuzz_query)
 * share: one real amuse server, started on the first input on a free 127.0.0.1 port with the
 * default models (models/default: fashion-dnn, fashion-cnn, words-en), a fresh key database and
 * short timeouts, kept for the life of the process; and a client that sends one request's bytes,
 * half-closes, and reads the reply until the server closes. A reply that does not come within
 * HANG_S seconds is a finding (abort). Static functions: each harness includes this once.
 * Not here: mutation (libFuzzer) or the corpora (fuzz/corpus/<name>). */
#ifndef AMUSE_FUZZ_SERVE_CLIENT_H
#define AMUSE_FUZZ_SERVE_CLIENT_H

#define _GNU_SOURCE
#include "amuse/error.h"
#include "amuse/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef AMUSE_SOURCE_DIR
#error "AMUSE_SOURCE_DIR must name the source tree (fuzz/CMakeLists.txt sets it)"
#endif

#define HANG_S 20

static struct amuse_server *fuzz_server;
static char fuzz_key[AMUSE_KEY_TOKEN_MAX];
static int fuzz_port;
static char fuzz_dir[] = "/tmp/amuse-fuzz-serve.XXXXXX";

/* At exit: stop the server, then remove its key database and the directory (every run of a
 * harness, replays and merges included, would otherwise leave one behind in /tmp). */
static void fuzz_server_stop(void)
{
    if (fuzz_server) {
        amuse_server_drain(fuzz_server);
        amuse_server_free(fuzz_server);
        fuzz_server = NULL;
    }
    static const char *const files[] = {"keys.db", "keys.db-wal", "keys.db-shm", "keys.db-journal"};
    char path[sizeof fuzz_dir + 32];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, files[i]);
        unlink(path);
    }
    rmdir(fuzz_dir);
}

static void fuzz_server_start(void)
{
    if (fuzz_server)
        return;
    if (!mkdtemp(fuzz_dir))
        abort();
    char path[sizeof fuzz_dir + 16];
    snprintf(path, sizeof path, "%s/keys.db", fuzz_dir);
    struct amuse_serve_options o;
    amuse_serve_options_default(&o);
    o.port = 0;
    o.repository = AMUSE_SOURCE_DIR "/models/default";
    o.database = path;
    o.threads = 2;
    o.model_threads = 1;
    o.poll_interval_s = 0;
    o.request_timeout_ms = 5000;
    o.header_timeout_s = 5;
    o.body_timeout_s = 5;
    o.max_body_bytes = 1 << 20;
    o.usage_flush_s = 3600;
    if (amuse_server_start(&fuzz_server, &o, fuzz_key) != AMUSE_OK || !fuzz_key[0]) {
        fprintf(stderr, "fuzz: cannot start the server\n");
        abort();
    }
    fuzz_port = amuse_server_port(fuzz_server);
    atexit(fuzz_server_stop);
}

/* Send bytes as one request and read the reply: until the server closes, or until it has been
 * quiet for QUIET_MS after some bytes came. If nothing comes within FIRST_MS the request may be
 * incomplete, so the client half-closes (libmicrohttpd then ends it at once; half-closing
 * earlier would count as a client that left and cancel the inference). Abort on a hang. */
#define FIRST_MS 300
#define QUIET_MS 300
static void fuzz_exchange(const char *data, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)fuzz_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A loaded machine may run out of ephemeral ports or fill the listen backlog for a moment:
     * retry for a while, then say why before giving up (a refused connect is not a finding
     * unless it lasts). */
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (++tries > 100) {
            fprintf(stderr, "fuzz: cannot connect to the server for 10 s: %s\n", strerror(errno));
            abort();
        }
        close(fd);
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
            abort();
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server closed early: fine */
        off += (size_t)n;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[65536];
    size_t got = 0;
    int half_closed = 0;
    if (!memmem(data, len, "\r\n\r\n", 4) && !memmem(data, len, "\n\n", 2)) {
        shutdown(fd, SHUT_WR); /* the headers never end: no reply can come before EOF */
        half_closed = 1;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, got ? QUIET_MS : FIRST_MS);
        if (r > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            if (!got && getenv("AMUSE_FUZZ_VERBOSE")) { /* the status line, to look at a corpus */
                const char *cr = memchr(buf, '\r', (size_t)n);
                fprintf(stderr, "fuzz: %.*s\n", (int)(cr ? cr - buf : n), buf);
            }
            got += (size_t)n;
            continue;
        }
        if (got)
            break; /* a reply, then quiet: a kept-alive connection */
        if (!half_closed) {
            shutdown(fd, SHUT_WR);
            half_closed = 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > HANG_S) {
            fprintf(stderr, "fuzz: no reply and no close within %d s\n", HANG_S);
            abort();
        }
    }
    close(fd);
}

/* A growable request text. */
struct fuzz_text {
    char *p;
    size_t len, cap;
};

static void fuzz_add(struct fuzz_text *t, const void *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        if (!t->p)
            abort();
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void fuzz_puts(struct fuzz_text *t, const char *s)
{
    fuzz_add(t, s, strlen(s));
}

#endif
