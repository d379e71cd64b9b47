/* test_model_util.h - helpers shared by the model-level tests (test_model.c, test_training.c): a
 * scratch directory (tmp_root, set by the test's main; tmp_path and remove_tree), a model from
 * JSON config text, a random labelled dataset and a copy of a model's weights. Include after
 * test.h; the test's main creates tmp_root with mkdtemp and removes it at the end. */
#ifndef AMUSE_TEST_MODEL_UTIL_H
#define AMUSE_TEST_MODEL_UTIL_H

#include "amuse/data.h"
#include "amuse/model.h"
#include "amuse/rng.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        TEST_FAIL("out of memory");
    return p;
}

static inline const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int turn;
    char *p = buf[turn++ % 4];
    snprintf(p, 512, "%s/%s", tmp_root, name);
    return p;
}

static inline void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) < (int)sizeof child)
                remove_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline struct amuse_model *model_from(const char *json)
{
    struct amuse_model *m = NULL;
    int rc = amuse_model_from_json(&m, json, strlen(json), "test");
    if (rc)
        TEST_FAIL("model: %s", amuse_last_error());
    return m;
}

static inline void make_dataset(struct amuse_dataset *d, int64_t n, int classes, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    int64_t dims[1] = {4};
    struct amuse_shape sample, scalar = {0};
    amuse_shape_make(&sample, 1, dims);
    d->n = n;
    d->n_inputs = 1;
    d->n_classes = classes;
    ASSERT_OK(amuse_array_alloc(&d->input[0], NULL, AMUSE_FLOAT32, &sample, n));
    ASSERT_OK(amuse_array_alloc(&d->target, NULL, AMUSE_INT32, &scalar, n));
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n * 4; i++)
        d->input[0].f32[i] = 2.0f * amuse_rng_uniform(&rng) - 1.0f;
    for (int64_t i = 0; i < n; i++)
        d->target.i32[i] = (int32_t)amuse_rng_below(&rng, (uint64_t)classes);
}

static inline void weights_copy(struct amuse_model *m, float *out)
{
    int64_t at = 0;
    for (int w = 0; w < amuse_model_weight_count(m); w++) {
        struct amuse_tensor v;
        amuse_model_weight_info(m, w, &v, NULL);
        memcpy(out + at, v.data, (size_t)v.size * sizeof(float));
        at += v.size;
    }
}

#endif
