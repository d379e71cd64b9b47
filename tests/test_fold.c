/* test_fold.c - BatchNormalization folded into the Conv2D or DepthwiseConv2D before it at
 * inference (nn/model.c, AM__LAYER_FOLDS_BATCHNORM), and the fast paths next to it (1x1 Conv2D
 * without im2col, the unrolled 3x3 depthwise kernel).
 *
 * Every check runs the same model twice on the same input, folded and as written (the engine's
 * fold_off switch), and compares: outputs within 1e-5, and gradients after an inference pass
 * (backward must see the unfolded activations). The models have random weights and moving
 * statistics far from their initial values, biases on and off, strides, "valid" and "same"
 * padding, a depth multiplier, and the shipped voice DS-CNN on the features of a real clip.
 * It does not time anything (bench/voice.sh does).
 */
#include "amuse/audio.h"
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/voice.h"
#include "nn/model_internal.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mixed_json =
    "{\"name\": \"fold\", \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
    " {\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 11, 9, 3]}},"
    " {\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c1\", \"filters\": 8,"
    "  \"kernel_size\": [4, 3], \"strides\": [2, 2], \"padding\": \"same\"}},"
    " {\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b1\"}},"
    " {\"class_name\": \"Activation\", \"config\": {\"activation\": \"relu\"}},"
    " {\"class_name\": \"DepthwiseConv2D\", \"config\": {\"name\": \"d1\", \"kernel_size\": [3, 3],"
    "  \"padding\": \"same\", \"use_bias\": false}},"
    " {\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b2\", \"center\": false}},"
    " {\"class_name\": \"DepthwiseConv2D\", \"config\": {\"name\": \"d2\", \"kernel_size\": [3, 2],"
    "  \"depth_multiplier\": 2, \"padding\": \"valid\"}},"
    " {\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b3\", \"scale\": false}},"
    " {\"class_name\": \"Conv2D\", \"config\": {\"name\": \"p1\", \"filters\": 6,"
    "  \"kernel_size\": [1, 1], \"use_bias\": false}},"
    " {\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b4\"}},"
    " {\"class_name\": \"Conv2D\", \"config\": {\"name\": \"c2\", \"filters\": 4,"
    "  \"kernel_size\": [2, 2], \"activation\": \"relu\"}},"
    " {\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"b5\"}},"
    " {\"class_name\": \"GlobalAveragePooling2D\", \"config\": {}},"
    " {\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": 3}}]}},"
    " \"compile\": {\"optimizer\": \"adam\", \"loss\": \"mean_squared_error\"}}";

static uint32_t rng_state = 2024;
static float uniform(float lo, float hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}

/* Every weight uniform in [-1, 1), moving variances in [0.3, 3). */
static void randomise(struct amuse_model *m)
{
    for (int64_t i = 0; i < m->n_params; i++)
        m->params[i] = uniform(-1.0f, 1.0f);
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_weights; k++)
            if (strcmp(l->w[k].name, "moving_variance") == 0)
                for (int64_t j = 0; j < amuse_shape_size(&l->w[k].shape); j++)
                    l->w[k].value[j] = uniform(0.3f, 3.0f);
    }
}

/* Forward folded and as written on the same input; the largest difference between outputs. */
static double fold_difference(struct amuse_model *m, const float *x, int64_t batch)
{
    int64_t n = batch * amuse_shape_size(amuse_model_output_shape(m));
    float *ref = malloc((size_t)n * sizeof *ref);
    ASSERT_TRUE(ref != NULL);
    const float *y;
    m->fold_off = 1;
    ASSERT_OK(amuse_model_forward(m, x, batch, 0, &y));
    memcpy(ref, y, (size_t)n * sizeof *ref);
    m->fold_off = 0;
    ASSERT_OK(amuse_model_forward(m, x, batch, 0, &y));
    ASSERT_TRUE(m->last_folded);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - ref[i]);
        worst = d > worst ? d : worst;
        scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    }
    ASSERT_TRUE(scale > 1e-3); /* the outputs are not all zero: the comparison means something */
    free(ref);
    return worst;
}

TEST(fold_plan_picks_linear_single_consumer_pairs)
{
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, mixed_json, strlen(mixed_json), "fold"));
    /* b1..b4 fold; b5 follows a Conv2D with a relu of its own, which must not fold. */
    ASSERT_EQ_INT(m->n_folds, 4);
    for (int i = 0; i < m->n_layers; i++) {
        const char *name = m->layers[i].name;
        int folded = m->folded_into[i] >= 0;
        if (strcmp(name, "b5") == 0)
            ASSERT_EQ_INT(folded, 0);
        if (name[0] == 'b' && strcmp(name, "b5") != 0)
            ASSERT_EQ_INT(folded, 1);
    }
    amuse_model_free(m);
}

TEST(folded_outputs_match_within_1e5)
{
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, mixed_json, strlen(mixed_json), "fold"));
    randomise(m);
    int64_t per = amuse_shape_size(amuse_model_input_shape(m));
    for (int64_t batch = 1; batch <= 5; batch += 4) {
        float *x = malloc((size_t)(batch * per) * sizeof *x);
        ASSERT_TRUE(x != NULL);
        for (int64_t i = 0; i < batch * per; i++)
            x[i] = uniform(-2.0f, 2.0f);
        ASSERT_NEAR(fold_difference(m, x, batch), 0.0, 1e-5);
        free(x);
    }
    amuse_model_free(m);
}

/* Gradients after an inference pass: the same whether that pass ran folded or not. */
TEST(backward_after_folded_inference_matches)
{
    struct amuse_model *m;
    ASSERT_OK(amuse_model_from_json(&m, mixed_json, strlen(mixed_json), "fold"));
    randomise(m);
    int64_t batch = 3, per = amuse_shape_size(amuse_model_input_shape(m));
    float x[3 * 11 * 9 * 3], t[3 * 3];
    ASSERT_TRUE((int64_t)(sizeof x / sizeof *x) == batch * per);
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = uniform(-2.0f, 2.0f);
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        t[i] = uniform(-1.0f, 1.0f);
    float *g[2];
    for (int pass = 0; pass < 2; pass++) {
        const float *y;
        float loss;
        m->fold_off = pass == 0;
        amuse_model_zero_grad(m);
        ASSERT_OK(amuse_model_forward(m, x, batch, 0, &y));
        ASSERT_OK(amuse_model_loss(m, t, NULL, &loss));
        ASSERT_OK(amuse_model_backward(m));
        g[pass] = malloc((size_t)m->n_params * sizeof(float));
        ASSERT_TRUE(g[pass] != NULL);
        memcpy(g[pass], m->grads, (size_t)m->n_params * sizeof(float));
    }
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < m->n_params; i++) {
        double d = fabs((double)g[0][i] - g[1][i]);
        worst = d > worst ? d : worst;
        scale = fabs(g[0][i]) > scale ? fabs(g[0][i]) : scale;
    }
    ASSERT_TRUE(scale > 1e-3);
    ASSERT_NEAR(worst / scale, 0.0, 1e-5);
    free(g[0]);
    free(g[1]);
    amuse_model_free(m);
}

/* The shipped DS-CNN on the features of a real recording: the posteriors do not move. */
TEST(shipped_dscnn_posteriors_unchanged)
{
    struct amuse_model *m;
    ASSERT_OK(amuse_model_load(&m, AMUSE_SOURCE_DIR "/models/default/voice-dscnn/1"));
    ASSERT_TRUE(m->n_folds >= 5); /* the first conv and every depthwise and pointwise one */
    struct amuse_audio_features_options fo;
    size_t clip;
    ASSERT_OK(amuse_voice_model_features(m, &fo, &clip));
    struct amuse_audio_frontend *fe;
    ASSERT_OK(amuse_audio_frontend_new(&fo, &fe));
    struct amuse_audio a;
    struct amuse_audio_options ao = {0};
    ASSERT_OK(amuse_audio_load(AMUSE_FIXTURES "/audio/speech16k.wav", &ao, &a));
    int64_t per = amuse_shape_size(amuse_model_input_shape(m));
    float *feat = malloc((size_t)per * sizeof *feat);
    ASSERT_TRUE(feat != NULL);
    ASSERT_OK(amuse_voice_clip_features(fe, a.samples, a.count, clip, feat, (size_t)per));
    ASSERT_NEAR(fold_difference(m, feat, 1), 0.0, 1e-5);
    free(feat);
    amuse_audio_release(&a);
    amuse_audio_frontend_free(fe);
    amuse_model_free(m);
}

int main(void)
{
    RUN(fold_plan_picks_linear_single_consumer_pairs);
    RUN(folded_outputs_match_within_1e5);
    RUN(backward_after_folded_inference_matches);
    RUN(shipped_dscnn_posteriors_unchanged);
    return test_summary();
}
