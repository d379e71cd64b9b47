/* test_gradcheck.c - finite-difference gradient checks for every layer type, activation and loss.
 *
 * Two kinds of check, both with central differences (f(w + eps) - f(w - eps)) / (2 eps):
 *
 *  - Model level, through the public API: a tiny model is built from a JSON string, its loss is
 *    computed with amuse_model_forward + amuse_model_loss, and every weight element of every layer
 *    is perturbed through amuse_model_weight_info(...).value.data. Each model starts with a small
 *    linear Dense ("front") in front of the layer under test, so the front kernel's gradient is
 *    only right if the INPUT gradient of every later layer is right: that is how input gradients
 *    are checked through the public API (the engine computes no gradient for the model input).
 *  - Layer level, through the internal layer interface (nn/layer.h): one layer of a built model
 *    is called directly with our own buffers, with din set, for the objective
 *    L = sum(r * out) with a fixed random r (so dout = r). Every input element and every weight
 *    element is perturbed. This checks input gradients directly, element by element.
 *
 * Tolerance: the engine computes in float32. With eps = 1e-3, the float rounding of a loss near 1
 * (about 6e-8) becomes about 6e-5 in the difference quotient, and the truncation error is
 * O(eps^2) ~ 1e-6, so |numeric - analytic| <= 1e-3 + 1e-2 * max(|numeric|, |analytic|) leaves a
 * wide margin while still catching any wrong factor, sign or index (each check also requires that
 * many of the gradients it compared are well above the absolute tolerance, so it cannot pass on
 * zeros). The layer-level objective is summed in double.
 *
 * Kinks: a coordinate is skipped (and counted) when the perturbation flips the sign of a ReLU
 * output anywhere or changes a max-pooling argmax; each check asserts that at least 80% of its
 * coordinates were compared. Dropout is checked in training mode with a fixed mask: the layer RNG
 * state is saved once and restored before every forward pass, so +eps and -eps see the same mask.
 * Probabilities stay far from the 1e-7 clip region: small weights, 3-4 classes, inputs in [-1, 1].
 *
 * This file does not compare against other frameworks (test_golden.c does) or test fit().
 */
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/rng.h"
#include "amuse/runtime.h"
#include "nn/model_internal.h"
#include "test.h"

#include <stdint.h>

#define EPS 1e-3
#define TOL_ABS 1e-3
#define TOL_REL 1e-2
#define MIN_CHECKED_FRACTION 0.8

struct stats {
    int64_t checked, skipped, significant; /* significant: |gradient| > 10 * TOL_ABS */
    double worst;                          /* largest |numeric - analytic| / tolerance */
};

static void fill_uniform(struct amuse_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * amuse_rng_uniform(r);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        TEST_FAIL("out of memory");
    return p;
}

/* A fingerprint of every ReLU's on/off pattern and every max-pooling argmax in the model. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t layer_signature(const struct am__layer *l, const float *out, const void *work,
                                int64_t batch, uint64_t h)
{
    int64_t n = batch * amuse_shape_size(&l->out_shape[0]);
    if (l->type->output_activation && l->type->output_activation(l) == AM__ACT_RELU)
        for (int64_t i = 0; i < n; i++) {
            unsigned char on = out[i] > 0.0f;
            h = hash_bytes(h, &on, 1);
        }
    if (strcmp(l->type->class_name, "MaxPooling2D") == 0)
        h = hash_bytes(h, work, (size_t)n * sizeof(int32_t));
    return h;
}

static uint64_t model_signature(struct amuse_model *m)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        if (l->type == &am__input_layer)
            continue;
        h = layer_signature(l, am__act(m, (struct am__node_ref){i, 0}), m->work + m->work_offset[i],
                            m->last_batch, h);
    }
    return h;
}

static void compare(struct stats *st, double numeric, double analytic, const char *what,
                    int64_t index)
{
    double tol = TOL_ABS + TOL_REL * fmax(fabs(numeric), fabs(analytic));
    double err = fabs(numeric - analytic);
    if (!(err <= tol))
        TEST_FAIL("%s[%lld]: numeric %.7g vs analytic %.7g (tolerance %.3g)", what,
                  (long long)index, numeric, analytic, tol);
    st->checked++;
    if (fmax(fabs(numeric), fabs(analytic)) > 10 * TOL_ABS)
        st->significant++;
    if (err / tol > st->worst)
        st->worst = err / tol;
}

static void require_coverage(const struct stats *st, const char *what, int64_t min_significant)
{
    int64_t total = st->checked + st->skipped;
    if (total == 0 || (double)st->checked < MIN_CHECKED_FRACTION * (double)total)
        TEST_FAIL("%s: only %lld of %lld coordinates checked (%lld skipped at kinks)", what,
                  (long long)st->checked, (long long)total, (long long)st->skipped);
    if (st->significant < min_significant)
        TEST_FAIL("%s: only %lld gradients above %g; the check is too weak", what,
                  (long long)st->significant, 10 * TOL_ABS);
}

/* ---------------------------------------------------------------- model level (public API) */

/* ONE_HOT / LABELS: a class per sample; DISTRIBUTION: soft targets summing to 1 per sample (what
 * categorical cross-entropy takes); SOFT: independent values in [0.1, 0.9] (binary
 * cross-entropy); REAL: values in [-1, 1] (mean squared error). */
enum target_kind { ONE_HOT, LABELS, DISTRIBUTION, SOFT, REAL };

struct model_run {
    struct amuse_model *m;
    const float *x;
    int64_t batch;
    const float *targets;
    const int32_t *labels;
    struct amuse_rng *saved_rng; /* per layer, restored before every forward pass */
};

static double model_loss(struct model_run *r, uint64_t *signature)
{
    for (int i = 0; i < r->m->n_layers; i++)
        r->m->layers[i].rng = r->saved_rng[i];
    const float *out;
    float loss;
    ASSERT_OK(amuse_model_forward(r->m, r->x, r->batch, 1, &out));
    ASSERT_OK(amuse_model_loss(r->m, r->targets, r->labels, &loss));
    if (signature)
        *signature = model_signature(r->m);
    return loss;
}

/* Build the model, compute analytic gradients of the loss, and compare every weight element with
 * central differences. Returns the stats; fails the test on any mismatch. */
static struct stats model_check(const char *what, const char *json, int64_t batch,
                                enum target_kind kind, uint64_t seed)
{
    struct stats st = {0};
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, json, strlen(json), what));
    ASSERT_OK(amuse_model_init_weights(m, seed));
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed + 1000);
    /* Non-zero biases, so bias gradients and activations away from 0 are exercised. */
    for (int w = 0; w < amuse_model_weight_count(m); w++) {
        struct amuse_tensor v;
        const char *name = amuse_model_weight_info(m, w, &v, NULL);
        if (strstr(name, "/bias"))
            fill_uniform(&rng, v.data, v.size, -0.2f, 0.2f);
    }
    int64_t in = amuse_shape_size(amuse_model_input_shape(m));
    int64_t width = amuse_shape_size(amuse_model_output_shape(m));
    float *x = xcalloc((size_t)(batch * in), sizeof(float));
    float *targets = xcalloc((size_t)(batch * width), sizeof(float));
    int32_t *labels = xcalloc((size_t)batch, sizeof(int32_t));
    fill_uniform(&rng, x, batch * in, -1.0f, 1.0f);
    for (int64_t i = 0; i < batch; i++) {
        labels[i] = (int32_t)amuse_rng_below(&rng, (uint64_t)width);
        for (int64_t j = 0; j < width; j++) {
            float *t = &targets[i * width + j];
            switch (kind) {
            case ONE_HOT: *t = j == labels[i] ? 1.0f : 0.0f; break;
            case DISTRIBUTION:
            case SOFT: *t = 0.1f + 0.8f * amuse_rng_uniform(&rng); break;
            case REAL: *t = 2.0f * amuse_rng_uniform(&rng) - 1.0f; break;
            case LABELS: break;
            }
        }
    }
    if (kind == DISTRIBUTION)
        for (int64_t i = 0; i < batch; i++) {
            double sum = 0;
            for (int64_t j = 0; j < width; j++)
                sum += targets[i * width + j];
            for (int64_t j = 0; j < width; j++)
                targets[i * width + j] = (float)(targets[i * width + j] / sum);
        }
    struct amuse_rng *saved = xcalloc((size_t)m->n_layers, sizeof *saved);
    for (int i = 0; i < m->n_layers; i++)
        saved[i] = m->layers[i].rng;
    struct model_run run = {m, x, batch, kind == LABELS ? NULL : targets,
                            kind == LABELS ? labels : NULL, saved};

    uint64_t base_sig;
    model_loss(&run, &base_sig);
    /* Keep away from the clip region, where the gradient is deliberately cut. */
    const float *out = am__act(m, m->output);
    if (m->loss != AM__LOSS_MEAN_SQUARED_ERROR)
        for (int64_t i = 0; i < batch * width; i++)
            if (!(out[i] > 1e-3f && out[i] < 1.0f - 1e-3f))
                TEST_FAIL("%s: output %lld = %g is too close to the clip region", what,
                          (long long)i, out[i]);
    amuse_model_zero_grad(m);
    ASSERT_OK(amuse_model_backward(m));
    float *analytic = xcalloc((size_t)m->n_params, sizeof(float));
    memcpy(analytic, m->grads, (size_t)m->n_params * sizeof(float));

    for (int w = 0; w < amuse_model_weight_count(m); w++) {
        struct amuse_tensor v, g;
        const char *name = amuse_model_weight_info(m, w, &v, &g);
        const float *ga = analytic + (g.data - m->grads);
        for (int64_t j = 0; j < v.size; j++) {
            float saved_value = v.data[j];
            uint64_t sp, sm;
            v.data[j] = (float)(saved_value + EPS);
            double lp = model_loss(&run, &sp);
            v.data[j] = (float)(saved_value - EPS);
            double lm = model_loss(&run, &sm);
            double h = (double)(float)(saved_value + EPS) - (double)(float)(saved_value - EPS);
            v.data[j] = saved_value;
            if (sp != base_sig || sm != base_sig) {
                st.skipped++;
                continue;
            }
            char label[160];
            snprintf(label, sizeof label, "%s: %s", what, name);
            compare(&st, (lp - lm) / h, ga[j], label, j);
        }
    }
    free(analytic);
    free(saved);
    free(x);
    free(targets);
    free(labels);
    amuse_model_free(m);
    return st;
}

/* JSON helpers: a Sequential model with a linear Dense "front" after the input. */
static char *sequential(const char *input_shape, int front_units, const char *layers,
                        const char *loss)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %s]}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"front\", \"units\": %d}},"
             "%s]}},"
             "\"compile\": {\"optimizer\": \"sgd\", \"loss\": \"%s\"}}",
             input_shape, front_units, layers, loss);
    return buf;
}

#define DENSE_OUT(units, act)                                                                      \
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"head\", \"units\": " #units              \
    ", \"activation\": \"" act "\"}}"

static void run_model_check(const char *what, const char *json, int64_t batch,
                            enum target_kind kind, int64_t min_significant)
{
    struct stats st = model_check(what, json, batch, kind, 12345);
    require_coverage(&st, what, min_significant);
    printf("     %-46s %5lld checked, %3lld skipped, worst %.2f of tolerance\n", what,
           (long long)st.checked, (long long)st.skipped, st.worst);
}

/* ---------------------------------------------------------------- model-level tests */

TEST(model_dense_activations)
{
    static const char *const acts[] = {"linear", "relu", "sigmoid", "tanh", "softmax"};
    for (int a = 0; a < 5; a++) {
        char layers[512], what[64];
        snprintf(layers, sizeof layers,
                 "{\"class_name\": \"Dense\", \"config\": {\"name\": \"hidden\", \"units\": 5, "
                 "\"activation\": \"%s\"}}, " DENSE_OUT(3, "softmax"),
                 acts[a]);
        snprintf(what, sizeof what, "Dense(%s)", acts[a]);
        run_model_check(what, sequential("4", 4, layers, "categorical_crossentropy"), 3, ONE_HOT,
                        10);
    }
}

TEST(model_conv2d)
{
    static const struct {
        const char *padding;
        int stride;
        const char *activation;
    } cases[] = {{"valid", 1, "tanh"}, {"same", 1, "relu"}, {"valid", 2, "relu"},
                 {"same", 2, "tanh"}};
    for (int c = 0; c < 4; c++) {
        char layers[768], what[64];
        snprintf(layers, sizeof layers,
                 "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", \"filters\": 3, "
                 "\"kernel_size\": [3, 3], \"strides\": [%d, %d], \"padding\": \"%s\", "
                 "\"activation\": \"%s\"}},"
                 "{\"class_name\": \"Flatten\", \"config\": {}}, " DENSE_OUT(3, "softmax"),
                 cases[c].stride, cases[c].stride, cases[c].padding, cases[c].activation);
        snprintf(what, sizeof what, "Conv2D(%s, stride %d, %s)", cases[c].padding,
                 cases[c].stride, cases[c].activation);
        /* 6x5 input (non-square, so a transposed index shows), 2 channels in, 3 out. */
        run_model_check(what, sequential("6, 5, 2", 2, layers, "categorical_crossentropy"), 2,
                        ONE_HOT, 20);
    }
}

TEST(model_maxpool)
{
    static const char *const paddings[] = {"valid", "same"};
    for (int p = 0; p < 2; p++) {
        char layers[768], what[64];
        snprintf(layers, sizeof layers,
                 "{\"class_name\": \"MaxPooling2D\", \"config\": {\"pool_size\": [2, 2], "
                 "\"padding\": \"%s\"}},"
                 "{\"class_name\": \"Flatten\", \"config\": {}}, " DENSE_OUT(3, "softmax"),
                 paddings[p]);
        snprintf(what, sizeof what, "MaxPooling2D(%s)", paddings[p]);
        /* 5x5: odd, so "same" pads and "valid" drops the last row and column. */
        run_model_check(what, sequential("5, 5, 2", 3, layers, "categorical_crossentropy"), 2,
                        ONE_HOT, 10);
    }
}

TEST(model_flatten_dropout)
{
    run_model_check("Flatten",
                    sequential("3, 2, 2", 3,
                               "{\"class_name\": \"Flatten\", \"config\": {}}, " DENSE_OUT(
                                   3, "softmax"),
                               "categorical_crossentropy"),
                    2, ONE_HOT, 10);
    run_model_check("Dropout(0.4, training)",
                    sequential("6", 5,
                               "{\"class_name\": \"Dense\", \"config\": {\"units\": 6, "
                               "\"activation\": \"tanh\"}},"
                               "{\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.4}}, "
                               "" DENSE_OUT(3, "softmax"),
                               "categorical_crossentropy"),
                    3, ONE_HOT, 10);
}

TEST(model_activation_layer)
{
    static const char *const acts[] = {"linear", "relu", "sigmoid", "tanh", "softmax"};
    for (int a = 0; a < 5; a++) {
        char layers[512], what[64];
        snprintf(layers, sizeof layers,
                 "{\"class_name\": \"Activation\", \"config\": {\"activation\": \"%s\"}}, "
                 "" DENSE_OUT(3, "softmax"),
                 acts[a]);
        snprintf(what, sizeof what, "Activation(%s)", acts[a]);
        run_model_check(what, sequential("4", 5, layers, "categorical_crossentropy"), 3, ONE_HOT,
                        10);
    }
    /* Activation(softmax) as the output: the loss gradient is fused through this layer. */
    run_model_check("Activation(softmax) output, fused",
                    sequential("4", 3,
                               "{\"class_name\": \"Activation\", \"config\": {\"activation\": "
                               "\"softmax\"}}",
                               "categorical_crossentropy"),
                    3, ONE_HOT, 5);
}

static const char *functional(const char *merge_class)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"model\": {\"class_name\": \"Functional\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"in\", "
             "\"batch_input_shape\": [null, 4]}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"front\", \"units\": 4}, "
             "\"inbound_nodes\": [[[\"in\", 0, 0, {}]]]},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"left\", \"units\": 3, "
             "\"activation\": \"tanh\"}, \"inbound_nodes\": [[[\"front\", 0, 0, {}]]]},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"right\", \"units\": 3, "
             "\"activation\": \"sigmoid\"}, \"inbound_nodes\": [[[\"front\", 0, 0, {}]]]},"
             "{\"class_name\": \"%s\", \"config\": {\"name\": \"merge\"}, "
             "\"inbound_nodes\": [[[\"left\", 0, 0, {}], [\"right\", 0, 0, {}]]]},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"head\", \"units\": 3, "
             "\"activation\": \"softmax\"}, \"inbound_nodes\": [[[\"merge\", 0, 0, {}]]]}],"
             "\"input_layers\": [[\"in\", 0, 0]], \"output_layers\": [[\"head\", 0, 0]]}},"
             "\"compile\": {\"optimizer\": \"sgd\", \"loss\": \"categorical_crossentropy\"}}",
             merge_class);
    return buf;
}

TEST(model_merge_layers)
{
    /* "front" feeds both branches, so its gradient is the sum of both paths. */
    run_model_check("Concatenate (functional)", functional("Concatenate"), 3, ONE_HOT, 10);
    run_model_check("Add (functional)", functional("Add"), 3, ONE_HOT, 10);
}

TEST(model_losses)
{
    run_model_check("categorical_crossentropy, softmax (fused)",
                    sequential("4", 5, DENSE_OUT(3, "softmax"), "categorical_crossentropy"), 3,
                    ONE_HOT, 10);
    /* Soft targets too: the fused gradient (p - y) must hold for any target distribution. */
    run_model_check("categorical_crossentropy, soft targets",
                    sequential("4", 5, DENSE_OUT(3, "softmax"), "categorical_crossentropy"), 3,
                    DISTRIBUTION, 10);
    /* ... and for targets that do not sum to 1 (the fused gradient is then p * sum(y) - y). */
    run_model_check("categorical_crossentropy, unnormalised targets",
                    sequential("4", 5, DENSE_OUT(3, "softmax"), "categorical_crossentropy"), 3,
                    SOFT, 10);
    run_model_check("categorical_crossentropy, sigmoid (unfused)",
                    sequential("4", 5, DENSE_OUT(3, "sigmoid"), "categorical_crossentropy"), 3,
                    ONE_HOT, 10);
    run_model_check("sparse_categorical_crossentropy, softmax",
                    sequential("4", 5, DENSE_OUT(3, "softmax"), "sparse_categorical_crossentropy"),
                    3, LABELS, 10);
    run_model_check("sparse_categorical_crossentropy, sigmoid",
                    sequential("4", 5, DENSE_OUT(3, "sigmoid"), "sparse_categorical_crossentropy"),
                    3, LABELS, 10);
    run_model_check("binary_crossentropy, sigmoid",
                    sequential("4", 5, DENSE_OUT(3, "sigmoid"), "binary_crossentropy"), 3, SOFT,
                    10);
    run_model_check("mean_squared_error, linear",
                    sequential("4", 5, DENSE_OUT(3, "linear"), "mean_squared_error"), 3, REAL, 10);
    run_model_check("mean_squared_error, tanh",
                    sequential("4", 5, DENSE_OUT(3, "tanh"), "mean_squared_error"), 3, REAL, 10);
}

/* ---------------------------------------------------------------- layer level (internal API) */

struct layer_run {
    struct am__layer *l;
    struct am__call call;
    struct amuse_rng saved_rng;
    const double *r; /* projection of the output: L = sum(r * out) */
    int64_t out_n;
};

static double layer_objective(struct layer_run *lr, uint64_t *signature)
{
    lr->l->rng = lr->saved_rng;
    lr->l->type->forward(lr->l, &lr->call);
    double sum = 0;
    for (int64_t i = 0; i < lr->out_n; i++)
        sum += lr->r[i] * (double)lr->call.out[0][i];
    if (signature)
        *signature = layer_signature(lr->l, lr->call.out[0], lr->call.work, lr->call.batch,
                                     0xcbf29ce484222325ULL);
    return sum;
}

static void check_coordinate(struct layer_run *lr, float *p, uint64_t base_sig, double analytic,
                             struct stats *st, const char *what, int64_t index)
{
    float saved = *p;
    uint64_t sp, sm;
    *p = (float)(saved + EPS);
    double lp = layer_objective(lr, &sp);
    *p = (float)(saved - EPS);
    double lm = layer_objective(lr, &sm);
    double h = (double)(float)(saved + EPS) - (double)(float)(saved - EPS);
    *p = saved;
    if (sp != base_sig || sm != base_sig) {
        st->skipped++;
        return;
    }
    compare(st, (lp - lm) / h, analytic, what, index);
}

/* The training flag of layer checks (BatchNormalization is also checked in inference mode). */
static int layer_training = 1;

/* Call layer `layer_name` of the model directly; check d(sum(r * out)) against every input
 * element (the input gradient) and every weight element. */
static void layer_check(const char *what, const char *json, const char *layer_name,
                        int64_t batch, int64_t min_significant)
{
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, json, strlen(json), what));
    ASSERT_OK(amuse_model_init_weights(m, 99));
    struct am__layer *l = NULL;
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, layer_name) == 0)
            l = &m->layers[i];
    if (!l)
        TEST_FAIL("%s: no layer '%s'", what, layer_name);
    struct amuse_rng rng;
    amuse_rng_seed(&rng, 4242);
    for (int k = 0; k < l->n_weights; k++)
        fill_uniform(&rng, l->w[k].value, amuse_shape_size(&l->w[k].shape), -0.5f, 0.5f);
    struct am__weight *variance = am__layer_weight(l, "moving_variance");
    if (variance) /* a variance is positive */
        fill_uniform(&rng, variance->value, amuse_shape_size(&variance->shape), 0.5f, 1.5f);

    struct layer_run lr = {0};
    lr.l = l;
    lr.saved_rng = l->rng;
    lr.call.batch = batch;
    lr.call.training = layer_training;
    l->forward_training = layer_training;
    lr.out_n = batch * amuse_shape_size(&l->out_shape[0]);
    float *in[AM__MAX_IO] = {0}, *din[AM__MAX_IO] = {0};
    int64_t in_n[AM__MAX_IO] = {0};
    for (int k = 0; k < l->n_inputs; k++) {
        in_n[k] = batch * amuse_shape_size(&l->in_shape[k]);
        in[k] = xcalloc((size_t)in_n[k], sizeof(float));
        din[k] = xcalloc((size_t)in_n[k], sizeof(float));
        fill_uniform(&rng, in[k], in_n[k], -1.0f, 1.0f);
        lr.call.in[k] = in[k];
        lr.call.din[k] = din[k];
    }
    float *out = xcalloc((size_t)lr.out_n, sizeof(float));
    float *dout = xcalloc((size_t)lr.out_n, sizeof(float));
    double *r = xcalloc((size_t)lr.out_n, sizeof(double));
    for (int64_t i = 0; i < lr.out_n; i++) {
        r[i] = 2.0 * amuse_rng_uniform(&rng) - 1.0;
        dout[i] = (float)r[i];
    }
    lr.r = r;
    lr.call.out[0] = out;
    lr.call.dout[0] = dout;
    size_t work_bytes = l->type->workspace(l, batch);
    lr.call.work = xcalloc(work_bytes + 64, 1);

    uint64_t base_sig;
    layer_objective(&lr, &base_sig);
    amuse_model_zero_grad(m);
    l->type->backward(l, &lr.call);
    float *weight_grads = xcalloc((size_t)m->n_params, sizeof(float));
    memcpy(weight_grads, m->grads, (size_t)m->n_params * sizeof(float));
    float *din_copy[AM__MAX_IO] = {0};
    for (int k = 0; k < l->n_inputs; k++) {
        din_copy[k] = xcalloc((size_t)in_n[k], sizeof(float));
        memcpy(din_copy[k], din[k], (size_t)in_n[k] * sizeof(float));
    }

    struct stats st = {0};
    char label[160];
    for (int k = 0; k < l->n_inputs; k++) {
        snprintf(label, sizeof label, "%s: d/d input %d", what, k);
        for (int64_t j = 0; j < in_n[k]; j++)
            check_coordinate(&lr, &in[k][j], base_sig, din_copy[k][j], &st, label, j);
    }
    for (int k = 0; k < l->n_weights; k++) {
        if (l->w[k].frozen) /* non-trainable (moving statistics): no gradient, by design */
            continue;
        snprintf(label, sizeof label, "%s: d/d %s", what, l->w[k].name);
        const float *g = weight_grads + (l->w[k].grad - m->grads);
        for (int64_t j = 0; j < amuse_shape_size(&l->w[k].shape); j++)
            check_coordinate(&lr, &l->w[k].value[j], base_sig, g[j], &st, label, j);
    }
    require_coverage(&st, what, min_significant);
    printf("     %-46s %5lld checked, %3lld skipped, worst %.2f of tolerance\n", what,
           (long long)st.checked, (long long)st.skipped, st.worst);

    /* Backward accumulates: a second call with the same dout must double every gradient. The
     * last numeric forward ran with a perturbed weight, so run forward again first. */
    layer_objective(&lr, NULL);
    l->type->backward(l, &lr.call);
    for (int k = 0; k < l->n_inputs; k++)
        for (int64_t j = 0; j < in_n[k]; j++)
            ASSERT_NEAR(din[k][j], 2.0f * din_copy[k][j], 1e-5 + 1e-5 * fabs(din_copy[k][j]));
    for (int64_t j = 0; j < m->n_params; j++)
        ASSERT_NEAR(m->grads[j], 2.0f * weight_grads[j], 1e-5 + 1e-5 * fabs(weight_grads[j]));

    for (int k = 0; k < l->n_inputs; k++) {
        free(in[k]);
        free(din[k]);
        free(din_copy[k]);
    }
    free(weight_grads);
    free(out);
    free(dout);
    free(r);
    free(lr.call.work);
    amuse_model_free(m);
}

/* One layer after an InputLayer of the given shape. */
static const char *single(const char *input_shape, const char *layer)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %s]}},"
             "%s]}}}",
             input_shape, layer);
    return buf;
}

TEST(layer_dense)
{
    static const char *const acts[] = {"linear", "relu", "sigmoid", "tanh", "softmax"};
    for (int a = 0; a < 5; a++) {
        char layer[256], what[64];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"Dense\", \"config\": {\"name\": \"t\", \"units\": 4, "
                 "\"activation\": \"%s\"}}",
                 acts[a]);
        snprintf(what, sizeof what, "layer Dense(%s)", acts[a]);
        layer_check(what, single("5", layer), "t", 3, 10);
    }
    /* Rank-3 input: Dense acts on the last axis, rows = batch * 2. */
    layer_check("layer Dense on (2, 3) rows",
                single("2, 3",
                       "{\"class_name\": \"Dense\", \"config\": {\"name\": \"t\", \"units\": 2, "
                       "\"activation\": \"tanh\"}}"),
                "t", 2, 10);
}

TEST(layer_conv2d)
{
    static const struct {
        const char *padding;
        int sh, sw, kh, kw;
        const char *activation;
    } cases[] = {
        {"valid", 1, 1, 3, 3, "linear"}, {"same", 1, 1, 3, 3, "relu"},
        {"valid", 2, 2, 3, 3, "tanh"},   {"same", 2, 2, 3, 3, "linear"},
        {"same", 2, 1, 2, 3, "sigmoid"}, /* even kernel: TF puts the extra pad row at the bottom */
        {"same", 2, 2, 4, 4, "linear"},  /* asymmetric padding with stride 2 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char layer[512], what[96];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"t\", \"filters\": 3, "
                 "\"kernel_size\": [%d, %d], \"strides\": [%d, %d], \"padding\": \"%s\", "
                 "\"activation\": \"%s\"}}",
                 cases[c].kh, cases[c].kw, cases[c].sh, cases[c].sw, cases[c].padding,
                 cases[c].activation);
        snprintf(what, sizeof what, "layer Conv2D(%dx%d, %s, stride %dx%d, %s)", cases[c].kh,
                 cases[c].kw, cases[c].padding, cases[c].sh, cases[c].sw, cases[c].activation);
        layer_check(what, single("7, 6, 2", layer), "t", 2, 20);
    }
}

TEST(layer_maxpool)
{
    static const char *const configs[] = {
        "\"pool_size\": [2, 2], \"padding\": \"valid\"",
        "\"pool_size\": [2, 2], \"padding\": \"same\"",
        "\"pool_size\": [3, 3], \"strides\": [2, 2], \"padding\": \"same\"",
        "\"pool_size\": [3, 2], \"strides\": [1, 2], \"padding\": \"valid\"",
    };
    for (int c = 0; c < 4; c++) {
        char layer[256], what[128];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"MaxPooling2D\", \"config\": {\"name\": \"t\", %s}}",
                 configs[c]);
        snprintf(what, sizeof what, "layer MaxPooling2D(%s)", configs[c]);
        layer_check(what, single("5, 5, 2", layer), "t", 2, 10);
    }
}

TEST(layer_flatten_dropout_activation)
{
    /* Flatten moves nothing: the engine gives it its input's memory (alias_input), so it is
     * checked in a model, where the front Dense's kernel gradient must flow through it. */
    run_model_check("model with Flatten (aliased)",
                    sequential("3, 2, 2", 2,
                               "{\"class_name\": \"Flatten\", \"config\": {}}, " DENSE_OUT(3, "softmax"),
                               "categorical_crossentropy"),
                    2, ONE_HOT, 10);
    layer_check("layer Dropout(0.5, training)",
                single("10", "{\"class_name\": \"Dropout\", \"config\": {\"name\": \"t\", "
                             "\"rate\": 0.5}}"),
                "t", 4, 10);
    static const char *const acts[] = {"linear", "relu", "sigmoid", "tanh", "softmax"};
    for (int a = 0; a < 5; a++) {
        char layer[256], what[64];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"Activation\", \"config\": {\"name\": \"t\", "
                 "\"activation\": \"%s\"}}",
                 acts[a]);
        snprintf(what, sizeof what, "layer Activation(%s)", acts[a]);
        /* (2, 4): softmax acts per row of the last axis */
        layer_check(what, single("2, 4", layer), "t", 2, 5);
    }
}

TEST(layer_merge)
{
#define MERGE_JSON                                                                                 \
        "{\"model\": {\"class_name\": \"Functional\", \"config\": {\"layers\": ["                  \
        "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"a\", "                          \
        "\"batch_input_shape\": [null, 2, %d]}},"                                                  \
        "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"b\", "                          \
        "\"batch_input_shape\": [null, 2, 3]}},"                                                   \
        "{\"class_name\": \"%s\", \"config\": {\"name\": \"t\"}, "                                 \
        "\"inbound_nodes\": [[[\"a\", 0, 0, {}], [\"b\", 0, 0, {}]]]}]}}}"
    char json[1024];
    snprintf(json, sizeof json, MERGE_JSON, 4, "Concatenate");
    layer_check("layer Concatenate", json, "t", 2, 10);
    snprintf(json, sizeof json, MERGE_JSON, 3, "Add");
    layer_check("layer Add", json, "t", 2, 10);
}

/* Dropout at inference is the identity, and in training keeps about 1 - rate of the values,
 * scaled by 1 / (1 - rate). */
TEST(layer_depthwise_conv2d)
{
    static const struct {
        const char *padding;
        int sh, sw, kh, kw, multiplier;
        const char *activation;
    } cases[] = {
        {"valid", 1, 1, 3, 3, 1, "linear"}, {"same", 1, 1, 3, 3, 2, "relu"},
        {"same", 2, 1, 2, 3, 1, "tanh"},    {"valid", 2, 2, 3, 2, 3, "linear"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char layer[512], what[128];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"DepthwiseConv2D\", \"config\": {\"name\": \"t\", "
                 "\"kernel_size\": [%d, %d], \"strides\": [%d, %d], \"padding\": \"%s\", "
                 "\"depth_multiplier\": %d, \"activation\": \"%s\"}}",
                 cases[c].kh, cases[c].kw, cases[c].sh, cases[c].sw, cases[c].padding,
                 cases[c].multiplier, cases[c].activation);
        snprintf(what, sizeof what, "layer DepthwiseConv2D(%dx%d, %s, stride %dx%d, x%d, %s)",
                 cases[c].kh, cases[c].kw, cases[c].padding, cases[c].sh, cases[c].sw,
                 cases[c].multiplier, cases[c].activation);
        layer_check(what, single("6, 5, 3", layer), "t", 2, 20);
    }
    layer_check("layer DepthwiseConv2D without bias",
                single("5, 4, 2", "{\"class_name\": \"DepthwiseConv2D\", \"config\": {\"name\": "
                                  "\"t\", \"kernel_size\": 3, \"use_bias\": false}}"),
                "t", 2, 10);
}

TEST(layer_batchnorm)
{
    static const char *const configs[] = {
        "\"momentum\": 0.9, \"epsilon\": 0.001",
        "\"center\": false, \"epsilon\": 0.01",
        "\"scale\": false",
    };
    for (int training = 1; training >= 0; training--)
        for (int c = 0; c < 3; c++) {
            char layer[256], what[128];
            snprintf(layer, sizeof layer,
                     "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"t\", %s}}",
                     configs[c]);
            snprintf(what, sizeof what, "layer BatchNormalization(%s, %s)", configs[c],
                     training ? "training" : "inference");
            layer_training = training;
            /* Rank 3: rows are batch x height x width; 3 channels. */
            layer_check(what, single("3, 2, 3", layer), "t", 3, 10);
            layer_check(what, single("4", layer), "t", 5, 5);
        }
    layer_training = 1;
}

TEST(batchnorm_moving_statistics)
{
    /* Training mode updates moving = m moving + (1 - m) batch (variance unbiased); inference
     * mode normalises with the moving values and leaves them alone. */
    const char *json = single("2", "{\"class_name\": \"BatchNormalization\", \"config\": "
                                   "{\"name\": \"bn\", \"momentum\": 0.5, \"epsilon\": 0.0001}}");
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, json, strlen(json), "bn"));
    ASSERT_OK(amuse_model_init_weights(m, 1));
    const float x[8] = {1, 10, 2, 20, 3, 30, 6, 60};
    const float *out;
    ASSERT_OK(amuse_model_forward(m, x, 4, 1, &out));
    struct amuse_tensor mean, var;
    ASSERT_OK(amuse_model_find_weight(m, "bn/moving_mean", &mean, NULL));
    ASSERT_OK(amuse_model_find_weight(m, "bn/moving_variance", &var, NULL));
    /* Column 0: mean 3, biased variance 3.5, unbiased 14/3. */
    ASSERT_NEAR(mean.data[0], 0.5 * 0 + 0.5 * 3, 1e-6);
    ASSERT_NEAR(mean.data[1], 0.5 * 30, 1e-5);
    ASSERT_NEAR(var.data[0], 0.5 * 1 + 0.5 * (14.0 / 3), 1e-5);
    ASSERT_NEAR(out[0], (1 - 3) / sqrt(3.5 + 1e-4), 1e-5);
    float mm = mean.data[0], mv = var.data[0];
    ASSERT_OK(amuse_model_forward(m, x, 4, 0, &out));
    ASSERT_NEAR(out[0], (1 - mm) / sqrt(mv + 1e-4), 1e-5);
    ASSERT_NEAR(mean.data[0], mm, 0);
    /* The moving statistics are non-trainable: placed after the trainable weights. */
    ASSERT_EQ_INT(m->n_trainable, 4);
    ASSERT_EQ_INT(amuse_model_param_count(m), 8);
    amuse_model_free(m);
}

TEST(layer_average_pooling)
{
    static const char *const configs[] = {
        "\"pool_size\": [2, 2], \"padding\": \"valid\"",
        "\"pool_size\": [2, 2], \"padding\": \"same\"",
        "\"pool_size\": [3, 3], \"strides\": [2, 2], \"padding\": \"same\"",
        "\"pool_size\": [3, 2], \"strides\": [1, 2], \"padding\": \"valid\"",
    };
    for (int c = 0; c < 4; c++) {
        char layer[256], what[128];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"AveragePooling2D\", \"config\": {\"name\": \"t\", %s}}",
                 configs[c]);
        snprintf(what, sizeof what, "layer AveragePooling2D(%s)", configs[c]);
        layer_check(what, single("5, 5, 2", layer), "t", 2, 10);
    }
    layer_check("layer GlobalAveragePooling2D",
                single("3, 4, 3", "{\"class_name\": \"GlobalAveragePooling2D\", \"config\": "
                                  "{\"name\": \"t\"}}"),
                "t", 2, 10);
}

TEST(model_voice_layers)
{
    /* A DS-CNN block end to end: the front Dense's gradient needs every input gradient. */
    run_model_check(
        "Conv2D-BN-ReLU-DepthwiseConv2D-BN-AvgPool-GAP",
        sequential("6, 4, 2", 3,
                   "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn1\"}},"
                   "{\"class_name\": \"Activation\", \"config\": {\"activation\": \"tanh\"}},"
                   "{\"class_name\": \"DepthwiseConv2D\", \"config\": {\"kernel_size\": 3, "
                   "\"padding\": \"same\"}},"
                   "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn2\"}},"
                   "{\"class_name\": \"AveragePooling2D\", \"config\": {\"pool_size\": 2}},"
                   "{\"class_name\": \"GlobalAveragePooling2D\", \"config\": {}}, " DENSE_OUT(
                       3, "softmax"),
                   "categorical_crossentropy"),
        4, ONE_HOT, 10);
}

TEST(dropout_semantics)
{
    const char *json = single("1000", "{\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.25}}");
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, json, strlen(json), "dropout"));
    ASSERT_OK(amuse_model_init_weights(m, 5));
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = 1.0f + (float)i / 1000.0f;
    const float *out;
    ASSERT_OK(amuse_model_forward(m, x, 1, 0, &out));
    for (int i = 0; i < 1000; i++)
        ASSERT_TRUE(out[i] == x[i]);
    ASSERT_OK(amuse_model_forward(m, x, 1, 1, &out));
    int kept = 0;
    for (int i = 0; i < 1000; i++) {
        if (out[i] != 0.0f) {
            kept++;
            ASSERT_NEAR(out[i], x[i] / 0.75f, 1e-5);
        }
    }
    ASSERT_TRUE(kept > 700 && kept < 800);
    amuse_model_free(m);
}

int main(void)
{
    amuse_set_threads(1); /* tiny tensors: threads would only add overhead */
    RUN(model_dense_activations);
    RUN(model_conv2d);
    RUN(model_maxpool);
    RUN(model_flatten_dropout);
    RUN(model_activation_layer);
    RUN(model_merge_layers);
    RUN(model_losses);
    RUN(layer_dense);
    RUN(layer_conv2d);
    RUN(layer_maxpool);
    RUN(layer_flatten_dropout_activation);
    RUN(layer_merge);
    RUN(layer_depthwise_conv2d);
    RUN(layer_batchnorm);
    RUN(batchnorm_moving_statistics);
    RUN(layer_average_pooling);
    RUN(model_voice_layers);
    RUN(dropout_semantics);
    return test_summary();
}
