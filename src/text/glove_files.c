/* glove_files.c - the co-occurrence record files: temporary files that vanish on close, the checks
 * on records read from outside, reading a whole file, and GloVe's shuffle stage in bounded memory.
 * It does not count (glove_cooccur.c) or train (glove_train.c). */
#define _POSIX_C_SOURCE 200809L
#include "text/glove_internal.h"

#include "amuse/rng.h"
#include "core/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SHUFFLE_CHUNKS 512
#define MIN_SHUFFLE_CHUNK  4096 /* records */

int am__glove_temp_file(const char *prefix, FILE **out)
{
    char dflt[4096];
    *out = NULL;
    if (!prefix) {
        const char *dir = getenv("TMPDIR");
        snprintf(dflt, sizeof dflt, "%s/amuse-glove", dir && *dir ? dir : "/tmp");
        prefix = dflt;
    }
    size_t len = strlen(prefix) + 8;
    char *name = malloc(len);
    if (!name)
        return am__fail(AMUSE_ENOMEM, "temporary file: out of memory");
    snprintf(name, len, "%s_XXXXXX", prefix);
    int fd = mkstemp(name);
    if (fd < 0) {
        int rc =
            am__fail(AMUSE_EIO, "cannot create a temporary file %s: %s", name, strerror(errno));
        free(name);
        return rc;
    }
    unlink(name); /* gone from the directory now; the data lives until the descriptor closes */
    FILE *f = fdopen(fd, "w+b");
    if (!f) {
        close(fd);
        int rc =
            am__fail(AMUSE_EIO, "cannot open the temporary file %s: %s", name, strerror(errno));
        free(name);
        return rc;
    }
    free(name);
    *out = f;
    return AMUSE_OK;
}

int am__glove_check_record(const struct amuse_glove_record *r, int64_t vocab_size, const char *name,
                           uint64_t off)
{
    if (r->word1 < 1 || r->word2 < 1 ||
        (vocab_size > 0 && (r->word1 > vocab_size || r->word2 > vocab_size)))
        return am__fail(AMUSE_EFORMAT,
                        "%s: byte %llu: record (%d, %d) names a word outside the vocabulary of "
                        "%lld words",
                        name, (unsigned long long)off, (int)r->word1, (int)r->word2,
                        (long long)vocab_size);
    if (!(r->value > 0) || !isfinite(r->value))
        return am__fail(AMUSE_EFORMAT,
                        "%s: byte %llu: record (%d, %d) has the value %g: not a "
                        "positive count",
                        name, (unsigned long long)off, (int)r->word1, (int)r->word2, r->value);
    return AMUSE_OK;
}

int amuse_glove_records_read(const char *path, int64_t vocab_size, struct amuse_glove_record **out,
                             int64_t *n)
{
    struct stat st;
    struct amuse_glove_record *recs = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = am__fail(AMUSE_EIO, "%s: not a regular file", path);
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size, rec = sizeof *recs;
    if (size % rec) {
        rc = am__fail(AMUSE_EFORMAT,
                      "%s: byte %llu: truncated record (the file has %llu bytes, "
                      "not a multiple of %llu)",
                      path, (unsigned long long)(size - size % rec), (unsigned long long)size,
                      (unsigned long long)rec);
        goto out;
    }
    if (size == 0) {
        rc = am__fail(AMUSE_EFORMAT, "%s: no co-occurrence records", path);
        goto out;
    }
    if (size / rec > (uint64_t)AM__GLOVE_MAX_RECORDS) {
        rc = am__fail(AMUSE_ETOOBIG, "%s: more than %lld records", path, AM__GLOVE_MAX_RECORDS);
        goto out;
    }
    recs = malloc((size_t)size);
    if (!recs) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory for %llu records", path,
                      (unsigned long long)(size / rec));
        goto out;
    }
    if (fread(recs, 1, (size_t)size, f) != size) {
        rc = am__fail(AMUSE_EIO, "%s: read error", path);
        goto out;
    }
    for (uint64_t i = 0; i < size / rec; i++)
        if ((rc = am__glove_check_record(&recs[i], vocab_size, path, i * rec)) != AMUSE_OK)
            goto out;
    *out = recs;
    *n = (int64_t)(size / rec);
    recs = NULL;
    rc = AMUSE_OK;
out:
    free(recs);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------------------------- shuffle */

/* Read up to cap records; *got receives how many. A partial record at the end is an error. */
static int read_chunk(FILE *in, const char *name, struct amuse_glove_record *buf, size_t cap,
                      uint64_t *offset, int64_t vocab_size, size_t *got)
{
    size_t bytes = fread(buf, 1, cap * sizeof *buf, in);
    if (ferror(in))
        return am__fail(AMUSE_EIO, "%s: read error at byte %llu", name,
                        (unsigned long long)*offset);
    if (bytes % sizeof *buf)
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: truncated record (%zu of %zu bytes)", name,
                        (unsigned long long)(*offset + bytes - bytes % sizeof *buf),
                        bytes % sizeof *buf, sizeof *buf);
    size_t n = bytes / sizeof *buf;
    for (size_t i = 0; i < n; i++) {
        int rc = am__glove_check_record(&buf[i], vocab_size, name, *offset + i * sizeof *buf);
        if (rc != AMUSE_OK)
            return rc;
    }
    *offset += bytes;
    *got = n;
    return AMUSE_OK;
}

static void shuffle_records(struct amuse_rng *rng, struct amuse_glove_record *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)amuse_rng_below(rng, i);
        struct amuse_glove_record t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static int write_all(FILE *out, const struct amuse_glove_record *a, size_t n, const char *what)
{
    if (n && fwrite(a, sizeof *a, n, out) != n)
        return am__fail(AMUSE_EIO, "%s: write error: %s", what, strerror(errno));
    return AMUSE_OK;
}

int amuse_glove_shuffle(FILE *in, const char *in_name, FILE *out,
                        const struct amuse_glove_options *o, int64_t vocab_size)
{
    struct amuse_rng rng;
    struct amuse_glove_record *buf = NULL;
    FILE *chunk[MAX_SHUFFLE_CHUNKS];
    int64_t left[MAX_SHUFFLE_CHUNKS];
    int n_chunks = 0, rc;
    uint64_t offset = 0;
    if (!(o->memory > 0) || o->memory > AM__GLOVE_MAX_MEMORY_GB)
        return am__fail(AMUSE_EINVAL, "-memory must be in (0, %g] GB", AM__GLOVE_MAX_MEMORY_GB);
    size_t cap = (size_t)(o->memory * 1073741824.0 / sizeof *buf);
    if (cap < MIN_SHUFFLE_CHUNK)
        return am__fail(AMUSE_EINVAL,
                        "-memory %g GB is too small to shuffle: one chunk of %d "
                        "records needs %.3f GB",
                        o->memory, MIN_SHUFFLE_CHUNK,
                        MIN_SHUFFLE_CHUNK * (double)sizeof *buf / 1073741824.0);
    amuse_rng_seed(&rng, o->seed ? o->seed : 1);
    buf = malloc(cap * sizeof *buf);
    if (!buf)
        return am__fail(AMUSE_ENOMEM, "shuffle: out of memory for %zu records", cap);
    for (;;) {
        size_t got = 0;
        if ((rc = read_chunk(in, in_name, buf, cap, &offset, vocab_size, &got)) != AMUSE_OK)
            goto out;
        if (got == 0)
            break;
        shuffle_records(&rng, buf, got);
        if (n_chunks == 0 && got < cap) { /* everything fits: one shuffle in memory */
            rc = write_all(out, buf, got, "shuffle output");
            goto out;
        }
        if (n_chunks == MAX_SHUFFLE_CHUNKS) {
            rc = am__fail(AMUSE_EINVAL,
                          "-memory %g GB is too small to shuffle %s: it needs more "
                          "than %d chunks",
                          o->memory, in_name, MAX_SHUFFLE_CHUNKS);
            goto out;
        }
        if ((rc = am__glove_temp_file(o->temp_prefix, &chunk[n_chunks])) != AMUSE_OK)
            goto out;
        left[n_chunks] = (int64_t)got;
        n_chunks++;
        if ((rc = write_all(chunk[n_chunks - 1], buf, got, "temporary file")) != AMUSE_OK)
            goto out;
        if (got < cap)
            break;
    }
    /* Merge: each record comes from a chunk drawn in proportion to the records it has left. */
    int64_t total = 0;
    for (int i = 0; i < n_chunks; i++) {
        total += left[i];
        if (fflush(chunk[i]) != 0 || fseek(chunk[i], 0, SEEK_SET) != 0) {
            rc = am__fail(AMUSE_EIO, "temporary file: %s", strerror(errno));
            goto out;
        }
    }
    size_t used = 0;
    while (total > 0) {
        int64_t r = (int64_t)amuse_rng_below(&rng, (uint64_t)total);
        int i = 0;
        while (r >= left[i])
            r -= left[i++];
        if (fread(&buf[used], sizeof *buf, 1, chunk[i]) != 1) {
            rc = am__fail(AMUSE_EIO, "temporary file: read error");
            goto out;
        }
        left[i]--;
        total--;
        if (++used == cap) {
            if ((rc = write_all(out, buf, used, "shuffle output")) != AMUSE_OK)
                goto out;
            used = 0;
        }
    }
    rc = write_all(out, buf, used, "shuffle output");
out:
    for (int i = 0; i < n_chunks; i++)
        fclose(chunk[i]);
    free(buf);
    return rc;
}
