/* util.c - error printing and strict argument parsing for the amuse command. */
#include "cli/cli.h"
#include "core/internal.h" /* am__buf: JSON string escaping */
#include "core/mpi.h"      /* the rank in error messages */

#include "amuse/error.h"
#include "amuse/voice.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_error(const char *fmt, ...)
{
    va_list ap;
    /* In an MPI job, say which rank is speaking: every rank's stderr reaches the same terminal. */
    if (am__mpi_size() > 1)
        fprintf(stderr, "amuse (rank %d of %d): ", am__mpi_rank(), am__mpi_size());
    else
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
    /* Library messages usually name the file already; do not say it twice. */
    if (detail[0] && strncmp(detail, what, strlen(what)) == 0)
        return cli_error("%s", detail);
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

void cli_json_string(FILE *out, const char *s)
{
    struct am__buf b = {0}; /* the library's one escaper (core/buf.c) */
    am__buf_json_string(&b, s);
    if (b.failed)
        fputs("null", out); /* out of memory: still valid JSON */
    else
        fputs(b.data, out);
    am__buf_release(&b);
}

void cli_default_database(char *buf, size_t size)
{
    const char *env = getenv("AMUSE_DB"), *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, size, "%s", env);
    else if (xdg && *xdg)
        snprintf(buf, size, "%s/amuse/amuse.db", xdg);
    else if (home && *home)
        snprintf(buf, size, "%s/.local/share/amuse/amuse.db", home);
    else
        snprintf(buf, size, "amuse.db");
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- models and data */

#include "amuse/data.h"
#include "amuse/model.h"

#include <sys/stat.h>

int cli_open_model(const char *path, int allow_untrained, struct amuse_model **m)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_error("%s: no such model directory or config file", path);
    int rc;
    if (S_ISDIR(st.st_mode)) {
        rc = amuse_model_load(m, path);
    } else {
        if (!allow_untrained)
            return cli_error("%s: this needs a trained model directory (config.json + "
                             "model.safetensors), not a recipe; run 'amuse train %s' first",
                             path, path);
        rc = amuse_model_from_file(m, path);
    }
    return rc ? cli_fail(rc, "cannot open model") : 0;
}

/* A voice model's clips: data.manifest (or `path`), the rows of data.<split>_split (default:
 * the split's own name), features from the recipe, shaped as the model's input. */
static int cli_load_voice(struct amuse_model *m, const char *split, const char *path,
                          long long limit, struct amuse_dataset *d)
{
    struct amuse_voice_data_options o = {0};
    int rc = amuse_voice_model_features(m, &o.features, &o.clip_samples);
    if (rc)
        return cli_fail(rc, "cannot read the features recipe");
    if (!path)
        path = amuse_model_config_string(m, "data", "manifest");
    if (!path)
        return cli_error("model '%s' names no voice data (config data.manifest); pass --images",
                         amuse_model_name(m));
    char key[32];
    snprintf(key, sizeof key, "%s_split", split);
    o.split = amuse_model_config_string(m, "data", key);
    if (!o.split)
        o.split = split;
    int n = 0;
    while (amuse_model_label(m, n))
        n++;
    const char **labels = calloc((size_t)n + 1, sizeof *labels);
    if (!labels)
        return cli_error("out of memory");
    for (int i = 0; i < n; i++)
        labels[i] = amuse_model_label(m, i);
    o.labels = labels;
    o.n_labels = n;
    o.limit = limit;
    rc = amuse_voice_load_dataset(d, path, &o);
    free(labels);
    if (rc)
        return cli_fail(rc, "cannot load voice data");
    d->input[0].shape = *amuse_model_input_shape(m); /* same size, checked by the recipe */
    return 0;
}

int cli_load_dataset(struct amuse_model *m, const char *split, const char *images,
                     const char *labels, long long limit, struct amuse_dataset *d)
{
    const char *format = amuse_model_config_string(m, "data", "format");
    if (format && strcmp(format, "voice") == 0)
        return cli_load_voice(m, split, images, limit, d);
    char ikey[32], lkey[32];
    snprintf(ikey, sizeof ikey, "%s_images", split);
    snprintf(lkey, sizeof lkey, "%s_labels", split);
    if (!images)
        images = amuse_model_config_string(m, "data", ikey);
    if (!labels)
        labels = amuse_model_config_string(m, "data", lkey);
    if (!images || !labels)
        return cli_error("model '%s' names no %s data (config data.%s and data.%s); pass "
                         "--images and --labels",
                         amuse_model_name(m), split, ikey, lkey);
    int64_t classes = amuse_shape_size(amuse_model_output_shape(m));
    int rc = amuse_dataset_load_idx(d, images, labels, (int)classes, limit);
    if (rc)
        return cli_fail(rc, "cannot load data");
    return 0;
}
