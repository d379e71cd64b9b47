/* model_io.c - a model directory on disk: config.json + model.safetensors.
 * Both files are written atomically. Loading checks every weight the config declares against the
 * file (present, convertible dtype, same shape) and refuses tensors the config does not know. */
#define _POSIX_C_SOURCE 200809L
#include "nn/model_internal.h"

#include "amuse/safetensors.h"
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WEIGHTS_BYTES ((size_t)4 << 30)

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

int amuse_model_save(struct amuse_model *m, const char *dir)
{
    int rc = am__mkdir_p(dir);
    if (rc)
        return rc;
    char *config_path = join(dir, "config.json"), *weights_path = join(dir, "model.safetensors");
    struct amuse_st_entry *entries = calloc((size_t)m->n_weight_refs + 1, sizeof *entries);
    if (!config_path || !weights_path || !entries) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->n_weight_refs; i++) {
        struct amuse_tensor v;
        entries[i].name = amuse_model_weight_info(m, i, &v, NULL);
        entries[i].shape = v.shape;
        entries[i].data = v.data;
    }
    const char *keys[] = {"format", "producer", "model"};
    const char *values[] = {"pt", "amuse", m->name}; /* "pt": what most readers expect here */
    if ((rc = amuse_safetensors_write(weights_path, entries, m->n_weight_refs, keys, values, 3)))
        goto out;
    const char *text = amuse_model_config_json(m);
    size_t len = strlen(text);
    char *with_newline = malloc(len + 2);
    if (!with_newline) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(with_newline, text, len);
    with_newline[len] = '\n';
    rc = am__write_file_atomic(config_path, with_newline, len + 1);
    free(with_newline);
out:
    free(entries);
    free(config_path);
    free(weights_path);
    return rc;
}

int amuse_model_load(struct amuse_model **out, const char *dir)
{
    *out = NULL;
    char *config_path = join(dir, "config.json"), *weights_path = join(dir, "model.safetensors");
    struct amuse_safetensors st = {0};
    struct amuse_model *m = NULL;
    int rc;
    if (!config_path || !weights_path) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = amuse_model_from_file(&m, config_path)))
        goto out;
    if ((rc = amuse_safetensors_load(&st, weights_path, MAX_WEIGHTS_BYTES)))
        goto out;
    for (int i = 0; i < m->n_weight_refs; i++) {
        struct amuse_tensor v;
        const char *name = amuse_model_weight_info(m, i, &v, NULL);
        const struct amuse_st_tensor *t = amuse_safetensors_find(&st, name);
        if (!t) {
            rc = am__fail(AMUSE_ENOTFOUND, "%s: tensor '%s' (declared by %s) is missing",
                          weights_path, name, config_path);
            goto out;
        }
        if (!amuse_shape_equal(&t->shape, &v.shape)) {
            char a[96], b[96];
            rc = am__fail(AMUSE_ESHAPE, "%s: tensor '%s' has shape %s but the config needs %s",
                          weights_path, name, amuse_shape_format(&t->shape, 0, a, sizeof a),
                          amuse_shape_format(&v.shape, 0, b, sizeof b));
            goto out;
        }
        if ((rc = amuse_safetensors_to_f32(t, v.data))) {
            am__fail_prefix(rc, "%s: tensor '%s'", weights_path, name);
            goto out;
        }
    }
    for (int i = 0; i < st.n_tensors; i++) {
        struct amuse_tensor v;
        if (amuse_model_find_weight(m, st.tensors[i].name, &v, NULL) != AMUSE_OK) {
            rc = am__fail(AMUSE_EFORMAT, "%s: tensor '%s' is not a weight of the model in %s",
                          weights_path, st.tensors[i].name, config_path);
            goto out;
        }
    }
    *out = m;
    m = NULL;
out:
    amuse_safetensors_release(&st);
    amuse_model_free(m);
    free(config_path);
    free(weights_path);
    return rc;
}
