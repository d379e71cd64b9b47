/* kind_network.c - the network model kind: a graph model directory (config.json +
 * model.safetensors, amuse_model_load) with one input, run in dynamic batches on its batcher's
 * worker. Image models (input h x w x 1|3) also take encoded images (decoded on decode.c's pool).
 * KServe V2: input "input" (FP32, or BYTES images); outputs "probabilities" and "label".
 * Not here: models with several inputs (refused at load), generation (kind_generator.c). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/image.h"
#include "amuse/model.h"
#include "amuse/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int network_load(struct am__model *m, const struct cJSON *cfg, const char *cfg_path)
{
    (void)cfg;
    (void)cfg_path;
    int rc = amuse_model_load(&m->net, m->dir);
    if (rc)
        return rc;
    if (amuse_model_input_count(m->net) != 1)
        return am__fail(AMUSE_EUNSUPPORTED, "%s: models with %d inputs are not served yet",
                        m->dir, amuse_model_input_count(m->net));
    m->input_shape = *amuse_model_input_shape(m->net);
    m->input_size = amuse_shape_size(&m->input_shape);
    m->output_size = amuse_shape_size(amuse_model_output_shape(m->net));
    m->image = m->input_shape.ndim == 3 &&
               (m->input_shape.dim[2] == 1 || m->input_shape.dim[2] == 3);
    m->image_invert = amuse_image_invert_setting(m->net);
    m->batch_input = malloc((size_t)(m->max_batch_size * m->input_size) * sizeof(float));
    if (!m->batch_input)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    return AMUSE_OK;
}

static void network_release(struct am__model *m)
{
    amuse_model_free(m->net);
    m->net = NULL;
    free(m->batch_input);
    m->batch_input = NULL;
}

/* Concatenate the jobs' samples, run the network once, hand each job its rows. */
static void network_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    struct am__model *m = ctx;
    /* OpenMP's thread count is per thread: set it on this worker before its first batch. */
    static _Thread_local int threads_set;
    if (m->model_threads > 0 && !threads_set) {
        amuse_set_threads(m->model_threads);
        threads_set = 1;
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(m->batch_input + off * m->input_size, jobs[i]->input,
               (size_t)(jobs[i]->samples * m->input_size) * sizeof(float));
        off += jobs[i]->samples;
    }
    const float *out;
    int rc = amuse_model_forward(m->net, m->batch_input, samples, 0, &out);
    if (rc) {
        am__jobs_fail(jobs, n, rc);
        return;
    }
    off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(jobs[i]->output, out + off * m->output_size,
               (size_t)(jobs[i]->samples * m->output_size) * sizeof(float));
        off += jobs[i]->samples;
    }
}

static int network_v2_input(const struct amuse_server *s, const struct am__model *m,
                            const struct am__v2_tensor *t, struct am__job *job)
{
    if (strcmp(t->name, "input") != 0)
        return am__fail(AMUSE_EFORMAT, "inputs[0].name '%.64s': model '%s' has one input, 'input'",
                        t->name, m->name);
    return t->datatype == AM__DT_FP32 ? am__v2_input_fp32(m, t, job)
                                      : am__v2_input_images(s, m, t, job);
}

static void network_v2_outputs(const struct am__model *m, const struct am__v2_request *req,
                               const struct am__job *job, struct am__buf *b)
{
    int first = 1;
    if (am__v2_wants(req, "probabilities", 1)) {
        am__v2_encode_fp32(b, "probabilities", job->output, job->samples, m->output_size);
        first = 0;
    }
    if (!am__v2_wants(req, "label", 0))
        return;
    am__buf_printf(b, "%s{\"name\": \"label\", \"datatype\": \"BYTES\", "
                      "\"shape\": [%lld], \"data\": [",
                   first ? "" : ", ", (long long)job->samples);
    for (int64_t s = 0; s < job->samples; s++) {
        const float *p = job->output + s * m->output_size;
        int best = 0;
        for (int k = 1; k < m->output_size; k++)
            if (p[k] > p[best])
                best = k;
        const char *label = amuse_model_label(m->net, best);
        char fallback[24];
        if (!label) {
            snprintf(fallback, sizeof fallback, "%d", best);
            label = fallback;
        }
        if (s)
            am__buf_add(b, ", ", 2);
        am__buf_json_string(b, label);
    }
    am__buf_puts(b, "]}");
}

static void network_v2_tensors(const struct am__model *m, struct am__buf *b)
{
    am__buf_puts(b, "\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", \"shape\": [-1");
    for (int i = 0; i < m->input_shape.ndim; i++)
        am__buf_printf(b, ", %lld", (long long)m->input_shape.dim[i]);
    am__buf_puts(b, "]");
    if (m->image)
        am__buf_puts(b, ", \"parameters\": {\"also_accepts\": \"BYTES [-1]: base64 PNG/JPEG/BMP/"
                        "GIF images\"}");
    am__buf_printf(b, "}], \"outputs\": [{\"name\": \"probabilities\", \"datatype\": \"FP32\", "
                      "\"shape\": [-1, %lld]",
                   (long long)m->output_size);
    /* Class names, in output order, when the model's config has them (immutable after load). */
    if (amuse_model_label(m->net, 0)) {
        am__buf_puts(b, ", \"parameters\": {\"labels\": [");
        for (int k = 0; k < m->output_size; k++) {
            const char *label = amuse_model_label(m->net, k);
            if (k)
                am__buf_add(b, ", ", 2);
            am__buf_json_string(b, label ? label : "");
        }
        am__buf_puts(b, "]}");
    }
    am__buf_puts(b, "}, {\"name\": \"label\", \"datatype\": \"BYTES\", \"shape\": [-1]}]");
}

static const char *const network_outputs[] = {"probabilities", "label", NULL};

const struct am__model_kind am__kind_network = {
    .name = "network",
    .config_type = NULL,
    .load = network_load,
    .release = network_release,
    .run = network_run,
    .v2_input = network_v2_input,
    .v2_outputs = network_outputs,
    .v2_encode_outputs = network_v2_outputs,
    .v2_encode_tensors = network_v2_tensors,
};
