/* kind_vectors.c - the word-vector model kind: a config.json of {"type": "word2vec" or
 * "fasttext", "vectors": "<file in the same directory>"} and the vectors (amuse_word_vectors_load), read-only once
 * loaded. Its batcher's worker copies rows for V2 and /v1/embeddings and runs the word queries
 * (domain.c hands them over as job tasks). KServe V2: BYTES "words" [n] -> FP32 "vectors" [n, dim].
 * Not here: the queries themselves (domain.c), tokenizing text (openai.c). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/word2vec.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vectors_load(struct am__model *m, const struct cJSON *cfg, const char *cfg_path)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "vectors");
    if (!cJSON_IsString(v) || !v->valuestring[0] || strchr(v->valuestring, '/'))
        return am__fail(AMUSE_EFORMAT,
                        "%s: \"vectors\" must name a file in the same directory", cfg_path);
    char *path = NULL;
    if (asprintf(&path, "%s/%s", m->dir, v->valuestring) < 0)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = amuse_word_vectors_load(path, AMUSE_W2V_AUTO, &m->wv);
    free(path);
    if (rc)
        return rc;
    m->input_shape.ndim = 0;
    m->input_size = 1;
    m->output_size = m->wv->dim;
    return AMUSE_OK;
}

static void vectors_release(struct am__model *m)
{
    amuse_word_vectors_free(m->wv);
    m->wv = NULL;
}

static void vectors_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    struct am__model *m = ctx;
    (void)samples;
    for (int i = 0; i < n; i++) {
        if (jobs[i]->task) {
            jobs[i]->task(m, jobs[i]);
            continue;
        }
        for (int64_t k = 0; k < jobs[i]->samples; k++)
            memcpy(jobs[i]->output + k * m->output_size,
                   m->wv->vectors + jobs[i]->rows[k] * m->output_size,
                   (size_t)m->output_size * sizeof(float));
    }
}

static int vectors_v2_input(const struct amuse_server *s, const struct am__model *m,
                            const struct am__v2_tensor *t, struct am__job *job)
{
    (void)s;
    return am__v2_input_words(m, t, job);
}

static void vectors_v2_outputs(const struct am__model *m, const struct am__v2_request *req,
                               const struct am__job *job, struct am__buf *b)
{
    (void)req;
    am__v2_encode_fp32(b, "vectors", job->output, job->samples, m->output_size);
}

static void vectors_v2_tensors(const struct am__model *m, struct am__buf *b)
{
    am__buf_printf(b, "\"inputs\": [{\"name\": \"words\", \"datatype\": \"BYTES\", "
                      "\"shape\": [-1]}], "
                      "\"outputs\": [{\"name\": \"vectors\", \"datatype\": \"FP32\", "
                      "\"shape\": [-1, %lld]}]",
                   (long long)m->output_size);
}

/* fastText models load the same way (amuse_word_vectors_load tells the formats apart). */
static int vectors_claims(const struct cJSON *cfg)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(cfg, "type");
    return cJSON_IsString(type) && strcmp(type->valuestring, "fasttext") == 0;
}

static const char *const vectors_outputs[] = {"vectors", NULL};

const struct am__model_kind am__kind_word_vectors = {
    .name = "word2vec",
    .config_type = "word2vec",
    .claims = vectors_claims,
    .flags = AM__KIND_WORDS,
    .load = vectors_load,
    .release = vectors_release,
    .run = vectors_run,
    .v2_input = vectors_v2_input,
    .v2_outputs = vectors_outputs,
    .v2_encode_outputs = vectors_v2_outputs,
    .v2_encode_tensors = vectors_v2_tensors,
};
