/* test_rnn.c - Embedding, LSTM, GRU and TimeDistributed(Dense): forward against a naive
 * per-sample reference written from Keras's formulas (in double), central-difference gradient
 * checks of every weight, of the sequence input and of the initial states (masked and not,
 * forwards and backwards), step masks reaching the loss, kept state for one-step-at-a-time
 * generation, and bad configs and ids. No fixtures: the references are computed here. */
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/rng.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        TEST_FAIL("out of memory");
    return p;
}

static struct amuse_model *model_from(const char *json)
{
    struct amuse_model *m = NULL;
    if (amuse_model_from_json(&m, json, strlen(json), "test"))
        TEST_FAIL("model: %s", amuse_last_error());
    return m;
}

/* Fill every weight uniformly in [-a, a) from a seed (biases included, so they matter). */
static void randomize(struct amuse_model *m, uint64_t seed, float a)
{
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed);
    for (int i = 0; i < amuse_model_weight_count(m); i++) {
        struct amuse_tensor v;
        amuse_model_weight_info(m, i, &v, NULL);
        for (int64_t j = 0; j < v.size; j++)
            v.data[j] = a * (2.0f * amuse_rng_uniform(&rng) - 1.0f);
    }
}

static float *weight(struct amuse_model *m, const char *name)
{
    struct amuse_tensor v;
    if (amuse_model_find_weight(m, name, &v, NULL))
        TEST_FAIL("%s", amuse_last_error());
    return v.data;
}

static double sigm(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* ---------------------------------------------------------------- naive references */

/* One sample of Keras's LSTM (return_sequences): x (T, I) -> y (T, U) in processing order.
 * mask (T) or NULL; a masked step carries h and c and outputs the carried h. */
static void lstm_reference(const float *x, const float *mask, int t, int in, int u, const float *k,
                           const float *r, const float *bias, int backwards, const float *h0,
                           const float *c0, double *y, double *h_end, double *c_end)
{
    double h[64] = {0}, c[64] = {0}, z[256];
    for (int j = 0; j < u; j++) {
        h[j] = h0 ? h0[j] : 0;
        c[j] = c0 ? c0[j] : 0;
    }
    for (int s = 0; s < t; s++) {
        int ti = backwards ? t - 1 - s : s;
        for (int g = 0; g < 4 * u; g++) {
            double acc = bias ? bias[g] : 0;
            for (int i = 0; i < in; i++)
                acc += (double)x[ti * in + i] * k[i * 4 * u + g];
            for (int i = 0; i < u; i++)
                acc += h[i] * r[i * 4 * u + g];
            z[g] = acc;
        }
        if (!mask || mask[ti] != 0) {
            for (int j = 0; j < u; j++) {
                double ig = sigm(z[j]), fg = sigm(z[u + j]), cg = tanh(z[2 * u + j]);
                double og = sigm(z[3 * u + j]);
                c[j] = fg * c[j] + ig * cg;
                h[j] = og * tanh(c[j]);
            }
        }
        for (int j = 0; j < u; j++)
            y[s * u + j] = h[j];
    }
    for (int j = 0; j < u; j++) {
        if (h_end)
            h_end[j] = h[j];
        if (c_end)
            c_end[j] = c[j];
    }
}

/* One sample of Keras's GRU with reset_after=True; bias (2, 3U) = [input; recurrent]. */
static void gru_reference(const float *x, const float *mask, int t, int in, int u, const float *k,
                          const float *r, const float *bias, int backwards, const float *h0,
                          double *y)
{
    double h[64] = {0}, xz[192], hz[192];
    for (int j = 0; j < u; j++)
        h[j] = h0 ? h0[j] : 0;
    for (int s = 0; s < t; s++) {
        int ti = backwards ? t - 1 - s : s;
        for (int g = 0; g < 3 * u; g++) {
            double a = bias ? bias[g] : 0, b = bias ? bias[3 * u + g] : 0;
            for (int i = 0; i < in; i++)
                a += (double)x[ti * in + i] * k[i * 3 * u + g];
            for (int i = 0; i < u; i++)
                b += h[i] * r[i * 3 * u + g];
            xz[g] = a;
            hz[g] = b;
        }
        if (!mask || mask[ti] != 0)
            for (int j = 0; j < u; j++) {
                double zg = sigm(xz[j] + hz[j]), rg = sigm(xz[u + j] + hz[u + j]);
                double ng = tanh(xz[2 * u + j] + rg * hz[2 * u + j]);
                h[j] = zg * h[j] + (1 - zg) * ng;
            }
        for (int j = 0; j < u; j++)
            y[s * u + j] = h[j];
    }
}

/* ---------------------------------------------------------------- forward vs reference */

static const char *seq_model(char *buf, size_t len, const char *cls, int t, int in, int u,
                             const char *extra)
{
    snprintf(
        buf, len,
        "{\"name\": \"seq\", \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d, %d]}},"
        "{\"class_name\": \"%s\", \"config\": {\"name\": \"rnn\", \"units\": %d, "
        "\"return_sequences\": true%s}}]}}}",
        t, in, cls, u, extra);
    return buf;
}

TEST(lstm_and_gru_forward_match_the_reference)
{
    enum { B = 3, T = 5, I = 4, U = 6 };
    for (int kind = 0; kind < 2; kind++)
        for (int backwards = 0; backwards < 2; backwards++) {
            char json[1024];
            struct amuse_model *m =
                model_from(seq_model(json, sizeof json, kind ? "GRU" : "LSTM", T, I, U,
                                     backwards ? ", \"go_backwards\": true" : ""));
            randomize(m, 11 + (uint64_t)kind, 0.6f);
            float x[B * T * I];
            struct amuse_rng rng;
            amuse_rng_seed(&rng, 3);
            for (int i = 0; i < B * T * I; i++)
                x[i] = 2.0f * amuse_rng_uniform(&rng) - 1.0f;
            const float *y;
            ASSERT_OK(amuse_model_forward(m, x, B, 0, &y));
            const float *k = weight(m, "rnn/kernel"), *r = weight(m, "rnn/recurrent_kernel");
            const float *bias = weight(m, "rnn/bias");
            for (int b = 0; b < B; b++) {
                double want[T * U];
                if (kind)
                    gru_reference(x + b * T * I, NULL, T, I, U, k, r, bias, backwards, NULL, want);
                else
                    lstm_reference(x + b * T * I, NULL, T, I, U, k, r, bias, backwards, NULL, NULL,
                                   want, NULL, NULL);
                for (int i = 0; i < T * U; i++)
                    ASSERT_NEAR(y[b * T * U + i], want[i], 2e-5);
            }
            amuse_model_free(m);
        }
}

/* Keras's defaults: glorot-uniform kernel, orthogonal recurrent kernel, unit_forget_bias. */
TEST(lstm_default_initialisers_are_keras_s)
{
    char json[1024];
    struct amuse_model *m = model_from(seq_model(json, sizeof json, "LSTM", 4, 8, 16, ""));
    ASSERT_OK(amuse_model_init_weights(m, 1));
    const float *b = weight(m, "rnn/bias");
    for (int j = 0; j < 64; j++)
        ASSERT_NEAR(b[j], j >= 16 && j < 32 ? 1.0 : 0.0, 0);
    const float *r = weight(m, "rnn/recurrent_kernel"); /* (16, 64): rows orthonormal */
    for (int a = 0; a < 16; a++)
        for (int c = 0; c < 16; c++) {
            double dot = 0;
            for (int j = 0; j < 64; j++)
                dot += (double)r[a * 64 + j] * r[c * 64 + j];
            ASSERT_NEAR(dot, a == c ? 1.0 : 0.0, 1e-4);
        }
    const float *k = weight(m, "rnn/kernel");
    float limit = sqrtf(6.0f / (8 + 64));
    for (int j = 0; j < 8 * 64; j++)
        ASSERT_TRUE(fabsf(k[j]) <= limit);
    amuse_model_free(m);
}

/* ---------------------------------------------------------------- gradient checks */

struct gc_case {
    struct amuse_model *m;
    struct amuse_batch batch;
    int training; /* 1: dropout on, with the same masks in every pass (see case_loss) */
};

/* Re-seed every layer's dropout stream without changing the weights: init_weights re-seeds the
 * streams (and overwrites the weights, which are put back). */
static void reseed_dropout(struct amuse_model *m)
{
    int n = amuse_model_weight_count(m);
    float **saved = xcalloc((size_t)n, sizeof *saved);
    for (int i = 0; i < n; i++) {
        struct amuse_tensor v;
        amuse_model_weight_info(m, i, &v, NULL);
        saved[i] = xcalloc((size_t)v.size, sizeof(float));
        memcpy(saved[i], v.data, (size_t)v.size * sizeof(float));
    }
    ASSERT_OK(amuse_model_init_weights(m, 77));
    for (int i = 0; i < n; i++) {
        struct amuse_tensor v;
        amuse_model_weight_info(m, i, &v, NULL);
        memcpy(v.data, saved[i], (size_t)v.size * sizeof(float));
        free(saved[i]);
    }
    free(saved);
}

static double case_loss(struct gc_case *gc)
{
    const float *p;
    float loss;
    if (gc->training)
        reseed_dropout(gc->m);
    if (amuse_model_forward_batch(gc->m, &gc->batch, gc->training, &p) ||
        amuse_model_loss_batch(gc->m, &gc->batch, &loss))
        TEST_FAIL("%s", amuse_last_error());
    return loss;
}

/* Central differences on up to `per_weight` coordinates of every weight. float32 forward
 * passes: step 1e-2 and a tolerance of 2e-3 absolute + 2% relative. */
static void gradient_check(struct gc_case *gc, const char *what, int per_weight)
{
    struct amuse_model *m = gc->m;
    case_loss(gc);
    amuse_model_zero_grad(m);
    ASSERT_OK(amuse_model_backward(m));
    int checked = 0;
    for (int i = 0; i < amuse_model_weight_count(m); i++) {
        struct amuse_tensor v, g;
        const char *name = amuse_model_weight_info(m, i, &v, &g);
        float *analytic = xcalloc((size_t)g.size, sizeof(float));
        memcpy(analytic, g.data, (size_t)g.size * sizeof(float));
        int64_t stride = v.size > per_weight ? v.size / per_weight : 1;
        for (int64_t j = 0; j < v.size; j += stride) {
            float saved = v.data[j];
            const float eps = 1e-2f;
            v.data[j] = saved + eps;
            double up = case_loss(gc);
            v.data[j] = saved - eps;
            double down = case_loss(gc);
            v.data[j] = saved;
            double numeric = (up - down) / (2.0 * eps);
            double tol = 2e-3 + 0.02 * fabs(numeric);
            if (fabs(numeric - analytic[j]) > tol)
                TEST_FAIL("%s: d/d %s[%lld]: analytic %.6g, numeric %.6g", what, name, (long long)j,
                          (double)analytic[j], numeric);
            checked++;
        }
        free(analytic);
    }
    ASSERT_TRUE(checked > 20);
}

/* Embedding(mask_zero) -> LSTM/GRU(return_sequences) -> TimeDistributed(Dense softmax), sparse
 * targets per step; padded steps (id 0) are masked through to the loss. */
static void check_sequence_model(const char *cls, int masked, int backwards, int dropout)
{
    enum { B = 3, T = 6, V = 7, E = 5, U = 4 };
    char json[2048], what[96];
    snprintf(what, sizeof what, "%s%s%s%s", cls, masked ? " masked" : "",
             backwards ? " go_backwards" : "", dropout ? " dropout" : "");
    snprintf(
        json, sizeof json,
        "{\"name\": \"lm\", \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], "
        "\"dtype\": \"int32\"}},"
        "{\"class_name\": \"Embedding\", \"config\": {\"input_dim\": %d, \"output_dim\": %d, "
        "\"mask_zero\": %s}},"
        "{\"class_name\": \"%s\", \"config\": {\"units\": %d, \"return_sequences\": true, "
        "\"go_backwards\": %s%s}},"
        "{\"class_name\": \"TimeDistributed\", \"config\": {\"layer\": {\"class_name\": "
        "\"Dense\", \"config\": {\"units\": %d, \"activation\": \"softmax\"}}}}]}},"
        "\"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\"}}",
        T, V, E, masked ? "true" : "false", cls, U, backwards ? "true" : "false",
        dropout ? ", \"dropout\": 0.3, \"recurrent_dropout\": 0.25" : "", V);
    struct gc_case gc;
    memset(&gc, 0, sizeof gc);
    gc.m = model_from(json);
    gc.training = dropout;
    randomize(gc.m, 5, 0.5f);
    int32_t ids[B * T] = {1, 2, 3, 4, 5, 6, 3, 3, 1, 0, 0, 0, 6, 5, 0, 2, 2, 0};
    int32_t targets[B * T];
    for (int i = 0; i < B * T; i++)
        targets[i] = (ids[i] * 3 + 1) % V;
    gc.batch.n = B;
    gc.batch.n_inputs = 1;
    gc.batch.input[0].dtype = AMUSE_INT32;
    gc.batch.input[0].shape.ndim = 1;
    gc.batch.input[0].shape.dim[0] = T;
    gc.batch.input[0].i32 = ids;
    gc.batch.target.dtype = AMUSE_INT32;
    gc.batch.target.shape = gc.batch.input[0].shape;
    gc.batch.target.i32 = targets;
    gradient_check(&gc, what, 24);
    if (masked) {
        /* Masked steps count for nothing: changing their targets leaves the loss alone. */
        double before = case_loss(&gc);
        for (int i = 0; i < B * T; i++)
            if (ids[i] == 0)
                targets[i] = (targets[i] + 1) % V;
        ASSERT_NEAR(case_loss(&gc), before, 1e-6);
    }
    amuse_model_free(gc.m);
}

/* Dropout and recurrent dropout in training, with the masks held fixed across the passes. */
TEST(sequence_models_gradients_with_dropout)
{
    check_sequence_model("LSTM", 1, 0, 1);
    check_sequence_model("GRU", 0, 1, 1);
}

TEST(sequence_models_gradients_masked_and_not)
{
    for (int masked = 0; masked < 2; masked++)
        for (int backwards = 0; backwards < 2; backwards++) {
            check_sequence_model("LSTM", masked, backwards, 0);
            check_sequence_model("GRU", masked, backwards, 0);
        }
}

/* Float sequence -> Dense (so the RNN's input gradient is checked through its kernel) -> RNN with
 * initial states computed from a second input by Dense layers (checks d/d initial state) and
 * return_state (checks the state outputs' gradients): the last output and states are
 * concatenated into a softmax classifier. */
static void check_state_model(const char *cls)
{
    int lstm = strcmp(cls, "LSTM") == 0;
    enum { B = 3, T = 4, I = 3, U = 4, S = 2, C = 3 };
    char json[4096];
    snprintf(
        json, sizeof json,
        "{\"name\": \"st\", \"model\": {\"class_name\": \"Functional\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"x\", \"batch_input_shape\": "
        "[null, %d, %d]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"s\", \"batch_input_shape\": "
        "[null, %d]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"pre\", \"units\": %d, "
        "\"activation\": \"tanh\"}, \"inbound_nodes\": [[[\"x\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"h0\", \"units\": %d, "
        "\"activation\": \"tanh\"}, \"inbound_nodes\": [[[\"s\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"c0\", \"units\": %d}, "
        "\"inbound_nodes\": [[[\"s\", 0, 0, {}]]]},"
        "{\"class_name\": \"%s\", \"config\": {\"name\": \"rnn\", \"units\": %d, "
        "\"return_state\": true}, \"inbound_nodes\": [[[\"pre\", 0, 0, {}], "
        "[\"h0\", 0, 0, {}]%s]]},"
        "{\"class_name\": \"Concatenate\", \"config\": {\"name\": \"cat\"}, \"inbound_nodes\": "
        "[[[\"rnn\", 0, 0, {}], [\"rnn\", 0, 1, {}]%s]]},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": %d, "
        "\"activation\": \"softmax\"}, \"inbound_nodes\": [[[\"cat\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"x\", 0, 0], [\"s\", 0, 0]], \"output_layers\": [[\"out\", 0, 0]]}},"
        "\"compile\": {\"loss\": \"sparse_categorical_crossentropy\"}}",
        T, I, S, I, U, U, cls, U, lstm ? ", [\"c0\", 0, 0, {}]" : "",
        lstm ? ", [\"rnn\", 0, 2, {}]" : "", C);
    struct gc_case gc;
    memset(&gc, 0, sizeof gc);
    gc.m = model_from(json);
    randomize(gc.m, 9, 0.7f);
    float x[B * T * I], s[B * S];
    int32_t y[B] = {0, 2, 1};
    struct amuse_rng rng;
    amuse_rng_seed(&rng, 4);
    for (int i = 0; i < B * T * I; i++)
        x[i] = 2.0f * amuse_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < B * S; i++)
        s[i] = 2.0f * amuse_rng_uniform(&rng) - 1.0f;
    gc.batch.n = B;
    gc.batch.n_inputs = 2;
    snprintf(gc.batch.input[0].name, sizeof gc.batch.input[0].name, "x");
    gc.batch.input[0].shape.ndim = 2;
    gc.batch.input[0].shape.dim[0] = T;
    gc.batch.input[0].shape.dim[1] = I;
    gc.batch.input[0].f32 = x;
    snprintf(gc.batch.input[1].name, sizeof gc.batch.input[1].name, "s");
    gc.batch.input[1].shape.ndim = 1;
    gc.batch.input[1].shape.dim[0] = S;
    gc.batch.input[1].f32 = s;
    gc.batch.target.dtype = AMUSE_INT32;
    gc.batch.target.i32 = y;
    gradient_check(&gc, lstm ? "LSTM states" : "GRU states", 16);
    amuse_model_free(gc.m);
}

TEST(initial_states_and_state_outputs_gradients)
{
    check_state_model("LSTM");
    check_state_model("GRU");
}

/* Masking: a sequence padded with id 0 gives the same last output as the unpadded one when the
 * padding is masked (state carried through), for both cells, and the reference agrees. */
TEST(masked_padding_carries_the_state)
{
    for (int kind = 0; kind < 2; kind++) {
        char json[2048];
        snprintf(
            json, sizeof json,
            "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
            "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 5], "
            "\"dtype\": \"int32\"}},"
            "{\"class_name\": \"Embedding\", \"config\": {\"name\": \"emb\", \"input_dim\": 9, "
            "\"output_dim\": 3, \"mask_zero\": true}},"
            "{\"class_name\": \"%s\", \"config\": {\"name\": \"rnn\", \"units\": 4}}]}}}",
            kind ? "GRU" : "LSTM");
        struct amuse_model *m = model_from(json);
        randomize(m, 2, 0.8f);
        int32_t ids[2 * 5] = {3, 0, 4, 0, 0, 3, 4, 0, 0, 0};
        struct amuse_batch b;
        memset(&b, 0, sizeof b);
        b.n = 2;
        b.n_inputs = 1;
        b.input[0].dtype = AMUSE_INT32;
        b.input[0].shape.ndim = 1;
        b.input[0].shape.dim[0] = 5;
        b.input[0].i32 = ids;
        const float *y;
        ASSERT_OK(amuse_model_forward_batch(m, &b, 0, &y));
        for (int j = 0; j < 4; j++)
            ASSERT_NEAR(y[j], y[4 + j], 1e-6);
        /* The reference on the embedded rows with the mask. */
        const float *table = weight(m, "emb/embeddings");
        float x[5 * 3], mask[5];
        for (int s = 0; s < 5; s++) {
            memcpy(x + s * 3, table + ids[s] * 3, 3 * sizeof(float));
            mask[s] = ids[s] != 0;
        }
        double want[5 * 4];
        const float *k = weight(m, "rnn/kernel"), *r = weight(m, "rnn/recurrent_kernel");
        const float *bias = weight(m, "rnn/bias");
        if (kind)
            gru_reference(x, mask, 5, 3, 4, k, r, bias, 0, NULL, want);
        else
            lstm_reference(x, mask, 5, 3, 4, k, r, bias, 0, NULL, NULL, want, NULL, NULL);
        for (int j = 0; j < 4; j++)
            ASSERT_NEAR(y[j], want[4 * 4 + j], 2e-5);
        /* An id outside [0, input_dim) is an error naming the sample and position. */
        ids[7] = 9;
        ASSERT_FAILS(amuse_model_forward_batch(m, &b, 0, &y), AMUSE_EINVAL,
                     "sample 1, position 2: id 9 is outside [0, 9)");
        /* Float data for an int32 input must be whole numbers. */
        float fx[5] = {1, 2, 2.5f, 0, 0};
        ASSERT_FAILS(amuse_model_forward(m, fx, 1, 0, &y), AMUSE_EINVAL,
                     "value 2 is 2.5, not an id");
        fx[2] = 3;
        ASSERT_OK(amuse_model_forward(m, fx, 1, 0, &y));
        amuse_model_free(m);
    }
}

#define LM_FMT                                                                                     \
    "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["                      \
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], "            \
    "\"dtype\": \"int32\"}},"                                                                      \
    "{\"class_name\": \"Embedding\", \"config\": {\"name\": \"emb\", \"input_dim\": %d, "          \
    "\"output_dim\": 4}},"                                                                         \
    "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"l1\", \"units\": 5, "                     \
    "\"return_sequences\": true, \"stateful\": %s}},"                                              \
    "{\"class_name\": \"GRU\", \"config\": {\"name\": \"l2\", \"units\": 3, "                      \
    "\"return_sequences\": true, \"stateful\": %s}},"                                              \
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": %d, "                  \
    "\"activation\": \"softmax\"}}]}}}"

/* Kept state: running a sequence one step at a time through a stateful one-step model gives the
 * full model's outputs; rows are independent slots; reset and get/set move or clear a slot. */
TEST(stateful_one_step_matches_the_full_sequence)
{
    enum { T = 6, V = 8, B = 2 };
    char full_json[2048], step_json[2048];
    snprintf(full_json, sizeof full_json, LM_FMT, T, V, "false", "false", V);
    snprintf(step_json, sizeof step_json, LM_FMT, 1, V, "true", "true", V);
    struct amuse_model *full = model_from(full_json), *step = model_from(step_json);
    ASSERT_EQ_INT(amuse_model_state_size(full), 0);
    ASSERT_EQ_INT(amuse_model_state_size(step), 5 + 5 + 3);
    randomize(full, 8, 0.7f);
    randomize(step, 8, 0.7f);
    int32_t seq[B * T] = {1, 5, 2, 7, 3, 3, 6, 6, 0, 1, 2, 4};
    float want[B * T * V];
    struct amuse_batch fb;
    memset(&fb, 0, sizeof fb);
    fb.n = B;
    fb.n_inputs = 1;
    fb.input[0].dtype = AMUSE_INT32;
    fb.input[0].shape.ndim = 1;
    fb.input[0].shape.dim[0] = T;
    fb.input[0].i32 = seq;
    ASSERT_OK(amuse_model_predict_batch(full, &fb, B, want));
    struct amuse_batch sb = fb;
    sb.input[0].shape.dim[0] = 1;
    int32_t tok[B];
    sb.input[0].i32 = tok;
    const float *y;
    for (int s = 0; s < T; s++) {
        for (int b = 0; b < B; b++)
            tok[b] = seq[b * T + s];
        ASSERT_OK(amuse_model_forward_batch(step, &sb, 0, &y));
        for (int b = 0; b < B; b++)
            for (int v = 0; v < V; v++)
                ASSERT_NEAR(y[b * V + v], want[(b * T + s) * V + v], 1e-5);
    }
    /* Move row 1's state to row 0 and reset row 1: row 0 continues stream 1 (its next output
     * equals a full run of stream 1 extended by one token), row 1 starts afresh. */
    float *saved = xcalloc((size_t)amuse_model_state_size(step), sizeof(float));
    ASSERT_OK(amuse_model_state_get(step, 1, saved));
    ASSERT_OK(amuse_model_state_set(step, 0, saved));
    int64_t row1 = 1;
    ASSERT_OK(amuse_model_reset_states(step, &row1, 1));
    tok[0] = 5;
    tok[1] = seq[0];
    ASSERT_OK(amuse_model_forward_batch(step, &sb, 0, &y));
    for (int v = 0; v < V; v++)
        ASSERT_NEAR(y[V + v], want[v], 1e-5); /* row 1 = stream 0's first step */
    int32_t longer[T + 1];
    memcpy(longer, seq + T, T * sizeof(int32_t));
    longer[T] = 5;
    char longer_json[2048];
    snprintf(longer_json, sizeof longer_json, LM_FMT, T + 1, V, "false", "false", V);
    struct amuse_model *ext = model_from(longer_json);
    randomize(ext, 8, 0.7f);
    float want_ext[(T + 1) * V];
    struct amuse_batch eb = fb;
    eb.n = 1;
    eb.input[0].shape.dim[0] = T + 1;
    eb.input[0].i32 = longer;
    ASSERT_OK(amuse_model_predict_batch(ext, &eb, 1, want_ext));
    for (int v = 0; v < V; v++)
        ASSERT_NEAR(y[v], want_ext[T * V + v], 1e-5);
    ASSERT_FAILS(amuse_model_state_get(step, -1, saved), AMUSE_EINVAL, "state row -1");
    ASSERT_FAILS(amuse_model_state_get(full, 0, saved), AMUSE_EINVAL, "no stateful layer");
    ASSERT_OK(amuse_model_reset_states(step, NULL, 0));
    ASSERT_OK(amuse_model_state_get(step, 0, saved));
    for (int64_t i = 0; i < amuse_model_state_size(step); i++)
        ASSERT_TRUE(saved[i] == 0.0f);
    free(saved);
    amuse_model_free(ext);
    amuse_model_free(full);
    amuse_model_free(step);
}

/* A model built for 6 steps runs on 3 after amuse_model_set_input_shape, giving the first 3
 * steps' outputs (the layers are causal), with the same weights; a shape that would change a
 * weight is refused and leaves the model as it was. */
TEST(input_shape_can_change_the_number_of_steps)
{
    enum { T = 6, V = 8, B = 2 };
    char json[2048];
    snprintf(json, sizeof json, LM_FMT, T, V, "false", "false", V);
    struct amuse_model *m = model_from(json);
    randomize(m, 4, 0.7f);
    int32_t seq[B * T] = {1, 5, 2, 7, 3, 3, 6, 6, 0, 1, 2, 4};
    float full[B * T * V], part[B * 3 * V];
    struct amuse_batch b;
    memset(&b, 0, sizeof b);
    b.n = B;
    b.n_inputs = 1;
    b.input[0].dtype = AMUSE_INT32;
    b.input[0].shape.ndim = 1;
    b.input[0].shape.dim[0] = T;
    b.input[0].i32 = seq;
    ASSERT_OK(amuse_model_predict_batch(m, &b, B, full));
    int64_t params = amuse_model_param_count(m);
    struct amuse_shape three;
    int64_t d3 = 3;
    amuse_shape_make(&three, 1, &d3);
    ASSERT_OK(amuse_model_set_input_shape(m, 0, &three));
    ASSERT_EQ_INT(amuse_model_output_shape(m)->dim[0], 3);
    ASSERT_EQ_INT(amuse_model_param_count(m), params);
    int32_t first[B * 3] = {1, 5, 2, 6, 6, 0};
    b.input[0].shape = three;
    b.input[0].i32 = first;
    ASSERT_OK(amuse_model_predict_batch(m, &b, B, part));
    for (int i = 0; i < B; i++)
        for (int j = 0; j < 3 * V; j++)
            ASSERT_NEAR(part[i * 3 * V + j], full[i * T * V + j], 1e-6);
    /* One step at a time with kept state: the generator made from the trained model. */
    struct amuse_shape one;
    int64_t d1 = 1;
    amuse_shape_make(&one, 1, &d1);
    ASSERT_OK(amuse_model_set_input_shape(m, 0, &one));
    ASSERT_OK(amuse_model_set_stateful(m, 1));
    ASSERT_EQ_INT(amuse_model_state_size(m), 5 + 5 + 3);
    int32_t tok[B];
    b.input[0].shape = one;
    b.input[0].i32 = tok;
    for (int s = 0; s < T; s++) {
        const float *y;
        for (int i = 0; i < B; i++)
            tok[i] = seq[i * T + s];
        ASSERT_OK(amuse_model_forward_batch(m, &b, 0, &y));
        for (int i = 0; i < B; i++)
            for (int v = 0; v < V; v++)
                ASSERT_NEAR(y[i * V + v], full[(i * T + s) * V + v], 1e-5);
    }
    ASSERT_OK(amuse_model_set_stateful(m, 0));
    ASSERT_EQ_INT(amuse_model_state_size(m), 0);
    amuse_model_free(m);

    struct amuse_model *flat =
        model_from("{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                   "{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [4, 2]}},"
                   "{\"class_name\": \"Flatten\", \"config\": {}},"
                   "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", \"units\": 3}}]}}}");
    int64_t dims[2] = {5, 2};
    struct amuse_shape five;
    amuse_shape_make(&five, 2, dims);
    ASSERT_FAILS(amuse_model_set_input_shape(flat, 0, &five), AMUSE_ESHAPE,
                 "layer 'fc' (Dense): the new input shape would make weight 'kernel' (10, 3) "
                 "instead of (8, 3)");
    ASSERT_EQ_INT(amuse_model_input_shape(flat)->dim[0], 4);
    float x[8] = {0}, y[3];
    ASSERT_OK(amuse_model_predict(flat, x, 1, 1, y));
    ASSERT_FAILS(amuse_model_set_input_shape(flat, 1, &five), AMUSE_EINVAL, "no input 1");
    amuse_model_free(flat);
}

/* Dropout: inference ignores it; training draws masks (the output changes). */
TEST(rnn_dropout_only_in_training)
{
    char a[1024], b[1024];
    struct amuse_model *plain = model_from(seq_model(a, sizeof a, "LSTM", 4, 3, 5, ""));
    struct amuse_model *drop = model_from(
        seq_model(b, sizeof b, "LSTM", 4, 3, 5, ", \"dropout\": 0.5, \"recurrent_dropout\": 0.3"));
    randomize(plain, 3, 0.5f);
    randomize(drop, 3, 0.5f);
    float x[2 * 4 * 3];
    for (int i = 0; i < 24; i++)
        x[i] = (float)(i % 7) / 7.0f - 0.4f;
    const float *y1, *y2;
    float keep[40];
    ASSERT_OK(amuse_model_forward(plain, x, 2, 0, &y1));
    memcpy(keep, y1, sizeof keep);
    ASSERT_OK(amuse_model_forward(drop, x, 2, 0, &y2));
    for (int i = 0; i < 40; i++)
        ASSERT_NEAR(y2[i], keep[i], 1e-7);
    ASSERT_OK(amuse_model_forward(drop, x, 2, 1, &y2));
    double diff = 0;
    for (int i = 0; i < 40; i++)
        diff += fabs(y2[i] - keep[i]);
    ASSERT_TRUE(diff > 1e-3);
    amuse_model_free(plain);
    amuse_model_free(drop);
}

/* A saved LSTM/GRU model directory loads back with the same weights and predictions. */
TEST(recurrent_models_save_and_load)
{
    char dir[] = "/tmp/amuse-test-rnn-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    for (int kind = 0; kind < 2; kind++) {
        char json[1024], path[512];
        struct amuse_model *m = model_from(seq_model(json, sizeof json, kind ? "GRU" : "LSTM", 3, 2,
                                                     4, ", \"return_state\": true"));
        randomize(m, 6, 0.5f);
        snprintf(path, sizeof path, "%s/%s", dir, kind ? "gru" : "lstm");
        ASSERT_OK(amuse_model_save(m, path));
        struct amuse_model *back = NULL;
        ASSERT_OK(amuse_model_load(&back, path));
        float x[6] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f}, a[12], b[12];
        ASSERT_OK(amuse_model_predict(m, x, 1, 1, a));
        ASSERT_OK(amuse_model_predict(back, x, 1, 1, b));
        for (int i = 0; i < 12; i++)
            ASSERT_NEAR(a[i], b[i], 0);
        amuse_model_free(back);
        amuse_model_free(m);
        char file[600];
        snprintf(file, sizeof file, "%s/config.json", path);
        remove(file);
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        remove(file);
        rmdir(path);
    }
    rmdir(dir);
}

static void expect_error(const char *json, int status, const char *text)
{
    struct amuse_model *m = NULL;
    int rc = amuse_model_from_json(&m, json, strlen(json), "test");
    if (rc != status || !strstr(amuse_last_error(), text))
        TEST_FAIL("got %d '%s', want %d containing '%s'", rc, amuse_last_error(), status, text);
    ASSERT_TRUE(m == NULL);
}

TEST(bad_recurrent_configs_name_layer_and_key)
{
    char json[1024];
    expect_error(seq_model(json, sizeof json, "GRU", 4, 3, 5, ", \"reset_after\": false"),
                 AMUSE_EUNSUPPORTED, "reset_after");
    expect_error(seq_model(json, sizeof json, "LSTM", 4, 3, 5, ", \"dropout\": 1.5"), AMUSE_EFORMAT,
                 "'dropout'");
    expect_error(seq_model(json, sizeof json, "LSTM", 4, 3, 0, ""), AMUSE_EFORMAT, "'units'");
    expect_error("{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                 "{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [7]}},"
                 "{\"class_name\": \"LSTM\", \"config\": {\"units\": 2}}]}}}",
                 AMUSE_ESHAPE, "(timesteps, features)");
    expect_error("{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
                 "{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [3, 2]}},"
                 "{\"class_name\": \"TimeDistributed\", \"config\": {\"layer\": {\"class_name\": "
                 "\"Conv2D\", \"config\": {}}}}]}}}",
                 AMUSE_EUNSUPPORTED, "TimeDistributed(Conv2D)");
    expect_error(
        "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [3], \"dtype\": \"str\"}},"
        "{\"class_name\": \"Embedding\", \"config\": {\"input_dim\": 4, \"output_dim\": 2}}"
        "]}}}",
        AMUSE_EUNSUPPORTED, "'dtype'");
    expect_error(
        "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [3], \"dtype\": \"int32\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", \"units\": 2}}]}}}",
        AMUSE_ESHAPE, "layer 'fc' (Dense): input 0 holds int32 token ids");
}

int main(void)
{
    RUN(lstm_and_gru_forward_match_the_reference);
    RUN(lstm_default_initialisers_are_keras_s);
    RUN(sequence_models_gradients_masked_and_not);
    RUN(sequence_models_gradients_with_dropout);
    RUN(initial_states_and_state_outputs_gradients);
    RUN(masked_padding_carries_the_state);
    RUN(stateful_one_step_matches_the_full_sequence);
    RUN(input_shape_can_change_the_number_of_steps);
    RUN(rnn_dropout_only_in_training);
    RUN(recurrent_models_save_and_load);
    RUN(bad_recurrent_configs_name_layer_and_key);
    return test_summary();
}
