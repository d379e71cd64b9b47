/* files.c - aligned allocation, whole-file reads with a cap, and atomic writes.
 * Atomic means: temp file in the same directory, fsync, rename, fsync the directory. A crash
 * leaves either the old file or the new one, never half of one. */
#define _POSIX_C_SOURCE 200809L
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *am__calloc_aligned(size_t count, size_t size)
{
    if (size && count > (SIZE_MAX - 64) / size)
        return NULL;
    size_t bytes = count * size;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0)
        bytes = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

void am__free(void *p)
{
    free(p);
}

/* The one-shot form of the streaming writer below. */
int am__write_file_atomic(const char *path, const void *data, size_t len)
{
    struct am__atomic_file af;
    int rc = am__atomic_open(&af, path);
    if (rc)
        return rc;
    if (len && fwrite(data, 1, len, af.f) != len) {
        rc = am__fail(AMUSE_EIO, "%s: cannot write: %s", af.tmp_path, strerror(errno));
        am__atomic_abort(&af);
        return rc;
    }
    return am__atomic_commit(&af);
}

int am__read_file(const char *path, size_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s",
                        path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return am__fail(AMUSE_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return am__fail(AMUSE_ETOOBIG, "%s: %lld bytes is over the limit of %zu", path,
                        (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return am__fail(AMUSE_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    if (fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return am__fail(AMUSE_EIO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return AMUSE_OK;
}

int am__mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = AMUSE_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            rc = am__fail(AMUSE_EIO, "%s: cannot create directory: %s", p, strerror(errno));
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (rc == AMUSE_OK && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = am__fail(AMUSE_EIO, "%s: not a directory", path);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------ streaming atomic writes */

int am__atomic_open(struct am__atomic_file *af, const char *path)
{
    size_t plen = strlen(path);
    af->f = NULL;
    af->path = strdup(path);
    af->tmp_path = malloc(plen + 32);
    if (!af->path || !af->tmp_path) {
        am__atomic_abort(af);
        return am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = am__fail(AMUSE_EIO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
        free(af->tmp_path); /* nothing was created */
        af->tmp_path = NULL;
        am__atomic_abort(af);
        return rc;
    }
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        am__atomic_abort(af);
        return am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
    }
    return AMUSE_OK;
}

int am__atomic_commit(struct am__atomic_file *af)
{
    int rc = AMUSE_OK;
    FILE *f = af->f;
    af->f = NULL;
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        rc = am__fail(AMUSE_EIO, "%s: cannot write: %s", af->tmp_path, strerror(errno));
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0) {
        rc = am__fail(AMUSE_EIO, "%s: cannot close: %s", af->tmp_path, strerror(errno));
        goto fail;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        rc = am__fail(AMUSE_EIO, "%s: cannot rename into place: %s", af->path, strerror(errno));
        goto fail;
    }
    int dfd = open(dirname(af->tmp_path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(af->tmp_path);
    free(af->path);
    af->tmp_path = af->path = NULL;
    return AMUSE_OK;
fail:
    am__atomic_abort(af);
    return rc;
}

void am__atomic_abort(struct am__atomic_file *af)
{
    if (!af)
        return;
    if (af->f)
        fclose(af->f);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    af->f = NULL;
    af->tmp_path = af->path = NULL;
}
