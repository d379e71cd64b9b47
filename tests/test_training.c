/* test_training.c - learning-rate schedules, ReduceLROnPlateau and resuming a run: each
 * schedule's value against Keras's formula (and PyTorch's schedulers through a committed
 * fixture), the optimizer really applying the scheduled rate per step, the plateau callback's
 * patience, cooldown and min_lr, resumed runs bit-identical to uninterrupted ones, and the errors
 * for bad configs and bad training-state files.
 *
 * Small MLPs on random data, one thread, seconds in all. Files live under a mkdtemp directory that
 * is removed at the end. fit()'s other semantics are tested in test_model.c; the command in
 * cli_train.sh. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/data.h"
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/rng.h"
#include "amuse/runtime.h"
#include "amuse/safetensors.h"
#include "nn/model_internal.h" /* am__schedule_parse / am__schedule_value */
#include "test.h"
#include "test_model_util.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Four features, `classes` classes. */

/* An MLP with Dropout; `name`, `units` (hidden), the optimizer and the fit section vary. */
static const char *mlp_json(const char *name, int units, const char *optimizer, const char *fit)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"name\": \"%s\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4]}},"
             "{\"class_name\": \"Dense\", \"config\": {\"units\": %d, \"activation\": \"tanh\"}},"
             "{\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.3}},"
             "{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\": \"softmax\"}}"
             "]}}, \"compile\": {\"optimizer\": %s, \"loss\": "
             "\"sparse_categorical_crossentropy\", \"metrics\": [\"accuracy\"]}, \"fit\": %s}",
             name, units, optimizer, fit);
    return buf;
}

static struct am__schedule schedule_from(const char *json)
{
    cJSON *v = cJSON_Parse(json);
    if (!v)
        TEST_FAIL("bad test JSON %s", json);
    struct am__schedule s;
    int rc = am__schedule_parse(v, "lr", &s);
    cJSON_Delete(v);
    if (rc)
        TEST_FAIL("schedule %s: %s", json, amuse_last_error());
    return s;
}

/* ---------------------------------------------------------------- schedules */

/* Values worked out by hand from Keras's definitions, then the formulas themselves at many
 * steps. */
TEST(schedules_follow_keras_formulas)
{
    struct am__schedule e = schedule_from(
        "{\"class_name\": \"ExponentialDecay\", \"config\": {\"initial_learning_rate\": 0.1, "
        "\"decay_steps\": 10, \"decay_rate\": 0.5}}");
    ASSERT_NEAR(am__schedule_value(&e, 0), 0.1, 1e-15);
    ASSERT_NEAR(am__schedule_value(&e, 5), 0.1 * sqrt(0.5), 1e-15);
    ASSERT_NEAR(am__schedule_value(&e, 10), 0.05, 1e-15);
    ASSERT_NEAR(am__schedule_value(&e, 20), 0.025, 1e-15);
    struct am__schedule st = schedule_from(
        "{\"class_name\": \"ExponentialDecay\", \"config\": {\"initial_learning_rate\": 0.1, "
        "\"decay_steps\": 10, \"decay_rate\": 0.5, \"staircase\": true}}");
    ASSERT_NEAR(am__schedule_value(&st, 9), 0.1, 1e-15);
    ASSERT_NEAR(am__schedule_value(&st, 10), 0.05, 1e-15);
    ASSERT_NEAR(am__schedule_value(&st, 19), 0.05, 1e-15);
    for (int64_t t = 0; t < 200; t += 7) {
        ASSERT_NEAR(am__schedule_value(&e, t), 0.1 * pow(0.5, t / 10.0), 1e-15);
        ASSERT_NEAR(am__schedule_value(&st, t), 0.1 * pow(0.5, floor(t / 10.0)), 1e-15);
    }

    struct am__schedule c = schedule_from(
        "{\"class_name\": \"CosineDecay\", \"config\": {\"initial_learning_rate\": 0.1, "
        "\"decay_steps\": 100, \"alpha\": 0.1}}");
    ASSERT_NEAR(am__schedule_value(&c, 0), 0.1, 1e-15);
    ASSERT_NEAR(am__schedule_value(&c, 50), 0.1 * (0.9 * 0.5 + 0.1), 1e-15);
    ASSERT_NEAR(am__schedule_value(&c, 100), 0.01, 1e-15);
    ASSERT_NEAR(am__schedule_value(&c, 250), 0.01, 1e-15); /* held at alpha after decay_steps */
    for (int64_t t = 0; t <= 100; t += 9)
        ASSERT_NEAR(am__schedule_value(&c, t),
                    0.1 * (0.9 * 0.5 * (1 + cos(3.14159265358979323846 * t / 100.0)) + 0.1), 1e-15);

    /* Keras 3's warmup: linear from initial to warmup_target, then the cosine from the target. */
    struct am__schedule w = schedule_from(
        "{\"class_name\": \"CosineDecay\", \"config\": {\"initial_learning_rate\": 0.0, "
        "\"decay_steps\": 100, \"warmup_target\": 0.1, \"warmup_steps\": 10}}");
    ASSERT_NEAR(am__schedule_value(&w, 0), 0.0, 1e-15);
    ASSERT_NEAR(am__schedule_value(&w, 5), 0.05, 1e-15);
    ASSERT_NEAR(am__schedule_value(&w, 10), 0.1, 1e-15);
    ASSERT_NEAR(am__schedule_value(&w, 60), 0.05, 1e-15);
    ASSERT_NEAR(am__schedule_value(&w, 110), 0.0, 1e-15);
    ASSERT_NEAR(am__schedule_value(&w, 500), 0.0, 1e-15);

    /* values[i] for boundaries[i-1] < step <= boundaries[i]. */
    struct am__schedule p = schedule_from(
        "{\"class_name\": \"PiecewiseConstantDecay\", \"config\": {\"boundaries\": [10, 20], "
        "\"values\": [1.0, 0.5, 0.1]}}");
    ASSERT_NEAR(am__schedule_value(&p, 0), 1.0, 0);
    ASSERT_NEAR(am__schedule_value(&p, 10), 1.0, 0);
    ASSERT_NEAR(am__schedule_value(&p, 11), 0.5, 0);
    ASSERT_NEAR(am__schedule_value(&p, 20), 0.5, 0);
    ASSERT_NEAR(am__schedule_value(&p, 21), 0.1, 0);
    ASSERT_NEAR(am__schedule_value(&p, 100000), 0.1, 0);
}

/* PyTorch's schedulers compute the same curves: ExponentialLR is ExponentialDecay with
 * decay_steps 1, StepLR the staircase, CosineAnnealingLR CosineDecay with alpha = eta_min / lr,
 * LinearLR + CosineAnnealingLR the warmup. tests/fixtures/lr_schedules.txt comes from
 * tests/golden/make_lr_schedules.py: "<name> <step> <lr>" lines. */
TEST(schedules_match_pytorch)
{
    static const struct {
        const char *name, *json;
    } cases[] = {
        {"exponential",
         "{\"class_name\": \"ExponentialDecay\", \"config\": "
         "{\"initial_learning_rate\": 0.1, \"decay_steps\": 1, \"decay_rate\": 0.9}}"},
        {"step", "{\"class_name\": \"ExponentialDecay\", \"config\": {\"initial_learning_rate\": "
                 "0.1, \"decay_steps\": 7, \"decay_rate\": 0.5, \"staircase\": true}}"},
        {"cosine", "{\"class_name\": \"CosineDecay\", \"config\": {\"initial_learning_rate\": "
                   "0.1, \"decay_steps\": 40, \"alpha\": 0.05}}"},
        {"warmup_cosine", "{\"class_name\": \"CosineDecay\", \"config\": "
                          "{\"initial_learning_rate\": 0.01, \"decay_steps\": 30, "
                          "\"warmup_target\": 0.1, \"warmup_steps\": 10}}"},
        {"multistep", "{\"class_name\": \"PiecewiseConstantDecay\", \"config\": "
                      "{\"boundaries\": [9, 19], \"values\": [0.1, 0.01, 0.001]}}"},
    };
    FILE *f = fopen(AMUSE_FIXTURES "/lr_schedules.txt", "r");
    if (!f)
        TEST_FAIL("cannot open %s", AMUSE_FIXTURES "/lr_schedules.txt");
    char name[64];
    long long step;
    double lr;
    int lines = 0, seen[5] = {0};
    while (fscanf(f, "%63s %lld %lf", name, &step, &lr) == 3) {
        int k = -1;
        for (int i = 0; i < 5; i++)
            if (strcmp(name, cases[i].name) == 0)
                k = i;
        if (k < 0) {
            fclose(f);
            TEST_FAIL("unknown schedule %s in the fixture", name);
        }
        struct am__schedule s = schedule_from(cases[k].json);
        double ours = am__schedule_value(&s, step);
        if (!(fabs(ours - lr) <= 1e-12 + 1e-9 * fabs(lr))) {
            fclose(f);
            TEST_FAIL("%s at step %lld: amuse %.12g, PyTorch %.12g", name, step, ours, lr);
        }
        seen[k]++;
        lines++;
    }
    fclose(f);
    ASSERT_TRUE(lines >= 200);
    for (int i = 0; i < 5; i++)
        ASSERT_TRUE(seen[i] >= 40);
}

/* SGD without momentum moves a weight by exactly lr * g: with g = 1 every update shows the rate
 * the optimizer used, which must be the schedule's value at the updates made before it. */
TEST(optimizer_applies_the_schedule_each_step)
{
    const char *opt =
        "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": {\"class_name\": "
        "\"PiecewiseConstantDecay\", \"config\": {\"boundaries\": [2, 4], \"values\": [0.5, "
        "0.25, 0.125]}}}}";
    struct amuse_model *m = model_from(mlp_json("sched", 2, opt, "{}"));
    ASSERT_OK(amuse_model_init_weights(m, 1));
    struct amuse_tensor v, g;
    ASSERT_OK(amuse_model_find_weight(m, "dense/bias", &v, &g));
    const float *w = v.data;
    float *grad = g.data;
    static const float want[8] = {0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.125f, 0.125f, 0.125f};
    for (int t = 0; t < 8; t++) {
        ASSERT_EQ_INT(amuse_model_iterations(m), t);
        ASSERT_TRUE(amuse_model_learning_rate(m) == want[t]);
        amuse_model_zero_grad(m);
        grad[0] = 1.0f;
        float before = w[0];
        ASSERT_OK(amuse_model_step(m));
        ASSERT_TRUE(w[0] == before - want[t]);
    }
    amuse_model_free(m);

    /* Adam with a schedule: the first update of Adam moves each weight by about lr (m / sqrt(v)
     * is 1 for any gradient), so one step at step 0 shows the scheduled rate, not the config's. */
    const char *adam =
        "{\"class_name\": \"Adam\", \"config\": {\"learning_rate\": {\"class_name\": "
        "\"ExponentialDecay\", \"config\": {\"initial_learning_rate\": 0.04, "
        "\"decay_steps\": 1, \"decay_rate\": 0.5}}}}";
    m = model_from(mlp_json("sched", 2, adam, "{}"));
    ASSERT_OK(amuse_model_init_weights(m, 1));
    ASSERT_OK(amuse_model_find_weight(m, "dense/bias", &v, &g));
    w = v.data;
    grad = g.data;
    for (int t = 0; t < 3; t++) {
        amuse_model_zero_grad(m);
        grad[0] = 1.0f;
        float before = w[0];
        ASSERT_OK(amuse_model_step(m));
        /* Adam's step at t+1 with a constant gradient: lr_t * m_hat / (sqrt(v_hat) + eps) = lr. */
        ASSERT_NEAR(before - w[0], 0.04 * pow(0.5, t), 1e-6);
    }
    amuse_model_free(m);
}

/* fit() with a CosineDecay: the history logs the rate after each epoch's updates, the step count
 * is the batches run, and the progress line shows the rate. */
TEST(fit_logs_the_scheduled_rate)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 40, 3, 2);
    const char *opt =
        "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": {\"class_name\": "
        "\"CosineDecay\", \"config\": {\"initial_learning_rate\": 0.2, \"decay_steps\": 12}}}}";
    struct amuse_model *m =
        model_from(mlp_json("cos", 6, opt, "{\"batch_size\": 10, \"epochs\": 4, \"seed\": 3}"));
    ASSERT_OK(amuse_model_init_weights(m, 1));
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    char *text = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&text, &len);
    ASSERT_TRUE(log != NULL);
    o.progress = log;
    struct amuse_epoch_log h[4];
    int ran;
    ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
    fclose(log);
    ASSERT_EQ_INT(ran, 4);
    ASSERT_EQ_INT(amuse_model_iterations(m), 16);
    for (int e = 0; e < 4; e++) {
        double t = 4.0 * (e + 1) > 12 ? 12 : 4.0 * (e + 1);
        double want = 0.2 * 0.5 * (1 + cos(3.14159265358979323846 * t / 12));
        ASSERT_NEAR(h[e].learning_rate, (float)want, 1e-9);
    }
    ASSERT_CONTAINS(text, " - learning_rate: 1.5000e-01"); /* after epoch 1: step 4 of 12 */
    ASSERT_CONTAINS(text, " - learning_rate: 0.0000e+00");
    free(text);
    amuse_model_free(m);
    amuse_dataset_release(&d);
    amuse_set_threads(0);
}

/* ---------------------------------------------------------------- ReduceLROnPlateau */

/* Training samples say class 0 and the validation tail says class 1 for the same inputs, so
 * val_loss improves once and then rises every epoch (checked). With patience 2, cooldown 2,
 * factor 0.5 and min_lr 0.06 Keras's rules give the rates below: reduce after epoch 3; the
 * cooldown counts down on epochs 4-5 (epoch 5 already counts as waiting); reduce after 6 and 9
 * (0.05 is raised to min_lr 0.06); at min_lr nothing more happens. */
TEST(reduce_lr_on_plateau_follows_keras)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 50, 2, 6);
    for (int64_t i = 0; i < 50; i++)
        d.target.i32[i] = i < 40 ? 0 : 1;
    const char *json =
        "{\"name\": \"plateau\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
        "{\"layers\": [{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": "
        "[null, 4]}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 2, \"activation\": \"softmax\"}}]}},"
        "\"compile\": {\"optimizer\": {\"class_name\": \"SGD\", \"config\": {\"learning_rate\": "
        "0.4}}, \"loss\": \"sparse_categorical_crossentropy\"},"
        "\"fit\": {\"batch_size\": 10, \"epochs\": 12, \"validation_split\": 0.2, \"seed\": 4,"
        "\"callbacks\": [{\"class_name\": \"ReduceLROnPlateau\", \"config\": {\"monitor\": "
        "\"val_loss\", \"factor\": 0.5, \"patience\": 2, \"cooldown\": 2, \"min_lr\": 0.06}}]}}";
    struct amuse_model *m = model_from(json);
    ASSERT_OK(amuse_model_init_weights(m, 1));
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    ASSERT_STR_EQ(o.plateau_monitor, "val_loss");
    ASSERT_EQ_INT(o.plateau_patience, 2);
    ASSERT_EQ_INT(o.plateau_cooldown, 2);
    ASSERT_NEAR(o.plateau_factor, 0.5, 0);
    ASSERT_NEAR(o.plateau_min_lr, 0.06, 0);
    ASSERT_NEAR(o.plateau_min_delta, 1e-4, 0); /* Keras's default */
    char *text = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&text, &len);
    o.progress = log;
    struct amuse_epoch_log h[12];
    int ran;
    ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
    fclose(log);
    ASSERT_EQ_INT(ran, 12);
    for (int e = 1; e < ran; e++)
        ASSERT_TRUE(h[e].val_loss > h[e - 1].val_loss);
    static const float want[12] = {0.4f, 0.4f, 0.4f, 0.2f,  0.2f,  0.2f,
                                   0.1f, 0.1f, 0.1f, 0.06f, 0.06f, 0.06f};
    for (int e = 0; e < 12; e++)
        if (h[e].learning_rate != (double)want[e])
            TEST_FAIL("epoch %d: learning rate %.9g, want %.9g", e + 1, h[e].learning_rate,
                      (double)want[e]);
    ASSERT_TRUE(amuse_model_learning_rate(m) == 0.06f);
    ASSERT_CONTAINS(text, "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.2.");
    ASSERT_CONTAINS(text, "Epoch 9: ReduceLROnPlateau reducing learning rate to 0.06.");
    ASSERT_TRUE(strstr(text, "Epoch 12: ReduceLROnPlateau") == NULL);
    free(text);
    amuse_model_free(m);
    amuse_dataset_release(&d);
    amuse_set_threads(0);
}

/* ---------------------------------------------------------------- resume */

struct run {
    float *w;
    int64_t n;
    struct amuse_epoch_log h[8];
    int ran;
    int64_t iterations;
    float lr;
};

/* Fit `json` for `epochs` in all, resuming from `resume` if set and writing the state to
 * `state` if set. Weights are initialised from `init_seed` first (a resumed run must not depend
 * on it). */
static void run_fit(const char *json, int epochs, const char *resume, const char *state,
                    uint64_t init_seed, const struct amuse_dataset *d, struct run *r)
{
    struct amuse_model *m = model_from(json);
    ASSERT_OK(amuse_model_init_weights(m, init_seed));
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    o.verbose = 0;
    o.epochs = epochs;
    o.resume_dir = resume;
    o.state_dir = state;
    memset(r->h, 0, sizeof r->h);
    int rc = amuse_model_fit(m, d, &o, r->h, &r->ran);
    if (rc) {
        amuse_model_free(m);
        TEST_FAIL("fit: %s", amuse_last_error());
    }
    r->n = amuse_model_param_count(m);
    r->w = xcalloc((size_t)r->n, sizeof(float));
    weights_copy(m, r->w);
    r->iterations = amuse_model_iterations(m);
    r->lr = amuse_model_learning_rate(m);
    amuse_model_free(m);
}

static void expect_same_run(const struct run *a, const struct run *b)
{
    ASSERT_EQ_INT(a->ran, b->ran);
    ASSERT_EQ_INT(a->iterations, b->iterations);
    ASSERT_TRUE(a->lr == b->lr);
    ASSERT_EQ_INT(a->n, b->n);
    ASSERT_TRUE(memcmp(a->w, b->w, (size_t)a->n * sizeof(float)) == 0);
    for (int e = 0; e < a->ran; e++) {
        ASSERT_EQ_INT(a->h[e].epoch, b->h[e].epoch);
        ASSERT_EQ_INT(a->h[e].train_samples, b->h[e].train_samples);
        const double x[4] = {a->h[e].loss, a->h[e].accuracy, a->h[e].val_loss,
                             a->h[e].learning_rate};
        const double y[4] = {b->h[e].loss, b->h[e].accuracy, b->h[e].val_loss,
                             b->h[e].learning_rate};
        for (int k = 0; k < 4; k++)
            if (!(x[k] == y[k] || (isnan(x[k]) && isnan(y[k]))))
                TEST_FAIL("epoch %d, figure %d: %.17g != %.17g", e + 1, k, x[k], y[k]);
    }
}

/* Training 7 epochs in one go equals training 3, stopping and resuming to 7 (and 2 + 2 + 3),
 * bit for bit: Adam's moments and step count, the shuffle order, Dropout's masks, EarlyStopping's
 * best value and restore_best_weights' copy, ReduceLROnPlateau's counters and rate all carry. */
TEST(resume_is_bit_identical_with_adam_dropout_and_callbacks)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 90, 3, 11);
    const char *fit =
        "{\"batch_size\": 8, \"epochs\": 7, \"validation_split\": 0.2, \"seed\": 5,"
        "\"callbacks\": [{\"class_name\": \"EarlyStopping\", \"config\": {\"monitor\": "
        "\"val_loss\", \"patience\": 50, \"restore_best_weights\": true}},"
        "{\"class_name\": \"ReduceLROnPlateau\", \"config\": {\"monitor\": \"loss\", "
        "\"factor\": 0.5, \"patience\": 0, \"min_delta\": 0.5}}]}";
    char json[4096];
    snprintf(json, sizeof json, "%s",
             mlp_json("resume", 16,
                      "{\"class_name\": \"Adam\", \"config\": {\"learning_rate\": 0.05}}", fit));
    struct run whole, part, rest, p1, p2, p3;
    run_fit(json, 7, NULL, NULL, 1, &d, &whole);
    ASSERT_TRUE(whole.lr < 0.05f); /* the plateau callback acted, so its rate is state */
    const char *dir = tmp_path("resume-a");
    run_fit(json, 3, NULL, dir, 1, &d, &part);
    ASSERT_EQ_INT(part.ran, 3);
    run_fit(json, 7, dir, NULL, 999, &d, &rest); /* other initial weights: the state wins */
    expect_same_run(&whole, &rest);

    const char *d1 = tmp_path("resume-b1"), *d2 = tmp_path("resume-b2");
    run_fit(json, 2, NULL, d1, 1, &d, &p1);
    run_fit(json, 4, d1, d2, 2, &d, &p2);
    run_fit(json, 7, d2, NULL, 3, &d, &p3);
    expect_same_run(&whole, &p3);
    ASSERT_EQ_INT(p2.ran, 4);
    ASSERT_TRUE(p2.h[1].loss == whole.h[1].loss); /* the history so far comes back too */

    /* The 2 + 2 run equals a 4-epoch run. Every resume started from other initial weights, so
     * none of these could match without the state. */
    struct run fresh;
    run_fit(json, 4, NULL, NULL, 1, &d, &fresh);
    expect_same_run(&fresh, &p2);
    struct run *all[] = {&whole, &part, &rest, &p1, &p2, &p3, &fresh};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]->w);
    amuse_dataset_release(&d);
    amuse_set_threads(0);
}

/* The same with SGD + momentum and a CosineDecay schedule (the schedule's position is the step
 * count), and with RMSprop + momentum (both slots). */
TEST(resume_is_bit_identical_with_schedules_and_other_optimizers)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 64, 3, 12);
    static const char *const opts[] = {
        "{\"class_name\": \"SGD\", \"config\": {\"momentum\": 0.9, \"nesterov\": true, "
        "\"learning_rate\": {\"class_name\": \"CosineDecay\", \"config\": "
        "{\"initial_learning_rate\": 0.01, \"decay_steps\": 30, \"warmup_target\": 0.2, "
        "\"warmup_steps\": 8}}}}",
        "{\"class_name\": \"RMSprop\", \"config\": {\"momentum\": 0.5, \"learning_rate\": "
        "{\"class_name\": \"ExponentialDecay\", \"config\": {\"initial_learning_rate\": 0.01, "
        "\"decay_steps\": 5, \"decay_rate\": 0.8, \"staircase\": true}}}}"};
    for (int k = 0; k < 2; k++) {
        char json[4096];
        snprintf(json, sizeof json, "%s",
                 mlp_json("resume", 8, opts[k],
                          "{\"batch_size\": 8, \"epochs\": 5, \"seed\": 9, \"shuffle\": true}"));
        struct run whole, part, rest;
        const char *dir = tmp_path(k ? "resume-rms" : "resume-sgd");
        run_fit(json, 5, NULL, NULL, 1, &d, &whole);
        run_fit(json, 2, NULL, dir, 1, &d, &part);
        run_fit(json, 5, dir, NULL, 4, &d, &rest);
        expect_same_run(&whole, &rest);
        ASSERT_EQ_INT(rest.iterations, 40);
        free(whole.w);
        free(part.w);
        free(rest.w);
    }
    amuse_dataset_release(&d);
    amuse_set_threads(0);
}

/* A checkpoint directory gets the state of its epoch, and a run resumes from it. */
TEST(checkpoint_keeps_a_resumable_state)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 50, 3, 13);
    const char *json = mlp_json("ckpt", 8, "\"adam\"",
                                "{\"batch_size\": 10, \"epochs\": 4, \"validation_split\": 0.2, "
                                "\"seed\": 2, \"callbacks\": [{\"class_name\": "
                                "\"ModelCheckpoint\", \"config\": {\"monitor\": \"loss\"}}]}");
    struct amuse_model *m = model_from(json);
    ASSERT_OK(amuse_model_init_weights(m, 1));
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    o.verbose = 0;
    const char *ckpt = tmp_path("ckpt");
    o.checkpoint_dir = ckpt;
    struct amuse_epoch_log h[4];
    int ran;
    ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
    int best = 0;
    for (int e = 1; e < ran; e++)
        if (h[e].loss < h[best].loss)
            best = e;
    struct amuse_safetensors st;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", ckpt, AMUSE_TRAINING_STATE_FILE);
    ASSERT_OK(amuse_safetensors_load(&st, path, 0));
    char want[16];
    snprintf(want, sizeof want, "%d", best + 1);
    ASSERT_STR_EQ(amuse_safetensors_metadata(&st, "epoch"), want);
    amuse_safetensors_release(&st);
    struct run r;
    run_fit(json, 6, ckpt, NULL, 7, &d, &r);
    ASSERT_EQ_INT(r.ran, 6);
    ASSERT_EQ_INT(r.iterations, 6 * 4);
    free(r.w);
    amuse_model_free(m);
    amuse_dataset_release(&d);
    amuse_set_threads(0);
}

/* ---------------------------------------------------------------- errors */

static void expect_compile_error(const char *lr, int status, const char *text)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"optimizer\": {\"class_name\": \"SGD\", \"config\": {\"learning_rate\": %s}}, "
             "\"loss\": \"mse\"}",
             lr);
    struct amuse_model *m = model_from(mlp_json("bad", 2, "\"sgd\"", "{}"));
    amuse_clear_error();
    int rc = amuse_model_compile(m, json);
    amuse_model_free(m);
    if (rc != status)
        TEST_FAIL("%s: status %d, want %d (%s)", lr, rc, status, amuse_last_error());
    if (!strstr(amuse_last_error(), text))
        TEST_FAIL("%s: message \"%s\" lacks \"%s\"", lr, amuse_last_error(), text);
}

TEST(bad_schedules_name_the_field)
{
    const char *p = "compile.optimizer.config.learning_rate";
    char want[256];
    snprintf(want, sizeof want, "%s.config.decay_steps must be > 0", p);
    expect_compile_error(
        "{\"class_name\": \"ExponentialDecay\", \"config\": "
        "{\"initial_learning_rate\": 0.1, \"decay_steps\": 0, \"decay_rate\": 0.5}}",
        AMUSE_EFORMAT, want);
    expect_compile_error("{\"class_name\": \"ExponentialDecay\", \"config\": {\"decay_steps\": 3, "
                         "\"decay_rate\": 0.5}}",
                         AMUSE_EFORMAT, "learning_rate.config.initial_learning_rate is missing");
    expect_compile_error("{\"class_name\": \"ExponentialDecay\", \"config\": "
                         "{\"initial_learning_rate\": 0.1, \"decay_steps\": 3, \"decay_rate\": "
                         "\"fast\"}}",
                         AMUSE_EFORMAT, "learning_rate.config.decay_rate must be a number");
    expect_compile_error("{\"class_name\": \"ExponentialDecay\", \"config\": "
                         "{\"initial_learning_rate\": 0.1, \"decay_steps\": 3, \"decay_rate\": "
                         "0.5, \"staircase\": 1}}",
                         AMUSE_EFORMAT, "learning_rate.config.staircase must be true or false");
    expect_compile_error("{\"class_name\": \"CosineDecay\", \"config\": "
                         "{\"initial_learning_rate\": 0.1, \"decay_steps\": -5}}",
                         AMUSE_EFORMAT, "learning_rate.config.decay_steps must be >= 0");
    expect_compile_error("{\"class_name\": \"CosineDecay\", \"config\": "
                         "{\"initial_learning_rate\": 0.1, \"decay_steps\": 5, \"alpha\": 2}}",
                         AMUSE_EFORMAT, "learning_rate.config.alpha must be in [0, 1]");
    expect_compile_error("{\"class_name\": \"CosineDecay\", \"config\": "
                         "{\"initial_learning_rate\": 0.1, \"decay_steps\": 5, \"warmup_steps\": "
                         "3}}",
                         AMUSE_EFORMAT, "learning_rate.config.warmup_steps needs a warmup_target");
    expect_compile_error("{\"class_name\": \"CosineDecay\", \"config\": "
                         "{\"initial_learning_rate\": 0.1, \"decay_steps\": 5, \"warmup_target\": "
                         "0.5, \"warmup_steps\": 2.5}}",
                         AMUSE_EFORMAT, "learning_rate.config.warmup_steps must be a whole number");
    expect_compile_error("{\"class_name\": \"PiecewiseConstantDecay\", \"config\": "
                         "{\"boundaries\": [10, 5], \"values\": [1, 2, 3]}}",
                         AMUSE_EFORMAT, "learning_rate.config.boundaries must increase (entry 1");
    expect_compile_error("{\"class_name\": \"PiecewiseConstantDecay\", \"config\": "
                         "{\"boundaries\": [10], \"values\": [1, 2, 3]}}",
                         AMUSE_EFORMAT, "values must have one more entry than boundaries");
    expect_compile_error("{\"class_name\": \"PiecewiseConstantDecay\", \"config\": "
                         "{\"boundaries\": [10], \"values\": [1, null]}}",
                         AMUSE_EFORMAT, "learning_rate.config.values[1] must be a number");
    expect_compile_error("{\"class_name\": \"PiecewiseConstantDecay\", \"config\": "
                         "{\"values\": [1, 2]}}",
                         AMUSE_EFORMAT, "learning_rate.config.boundaries is missing");
    expect_compile_error("{\"class_name\": \"PolynomialDecay\", \"config\": {}}",
                         AMUSE_EUNSUPPORTED, "unknown schedule 'PolynomialDecay'");
    expect_compile_error("{\"class_name\": \"ExponentialDecay\"}", AMUSE_EFORMAT,
                         "learning_rate.config must be an object");
    expect_compile_error("{\"config\": {}}", AMUSE_EFORMAT, "learning_rate must be a number or");
    /* A hundred boundaries: over the cap. */
    char many[2048];
    int at =
        snprintf(many, sizeof many,
                 "{\"class_name\": \"PiecewiseConstantDecay\", \"config\": {\"boundaries\": [");
    for (int i = 0; i < 100; i++)
        at += snprintf(many + at, sizeof many - (size_t)at, "%s%d", i ? "," : "", i + 1);
    snprintf(many + at, sizeof many - (size_t)at, "], \"values\": [1, 2]}}");
    expect_compile_error(many, AMUSE_EFORMAT, "boundaries must have 1 to 65 entries (has 100)");
}

static void expect_fit_options_error(const char *callbacks, const char *text)
{
    char fit[1024];
    snprintf(fit, sizeof fit, "{\"callbacks\": [%s]}", callbacks);
    struct amuse_model *m = model_from(mlp_json("bad", 2, "\"sgd\"", fit));
    struct amuse_fit_options o;
    amuse_clear_error();
    int rc = amuse_model_fit_options(m, &o);
    amuse_model_free(m);
    if (rc != AMUSE_EFORMAT)
        TEST_FAIL("%s: status %d (%s)", callbacks, rc, amuse_last_error());
    if (!strstr(amuse_last_error(), text))
        TEST_FAIL("%s: message \"%s\" lacks \"%s\"", callbacks, amuse_last_error(), text);
}

TEST(bad_plateau_callbacks_name_the_field)
{
    expect_fit_options_error("{\"class_name\": \"ReduceLROnPlateau\", \"config\": {\"factor\": 1}}",
                             "fit.callbacks[0].config.factor must be a number in (0, 1)");
    expect_fit_options_error("{\"class_name\": \"EarlyStopping\", \"config\": {}}, "
                             "{\"class_name\": \"ReduceLROnPlateau\", \"config\": {\"patience\": "
                             "-1}}",
                             "fit.callbacks[1] (ReduceLROnPlateau): fit.patience must be");
    expect_fit_options_error("{\"class_name\": \"ReduceLROnPlateau\", \"config\": {\"cooldown\": "
                             "1.5}}",
                             "patience and cooldown must be whole numbers");
    expect_fit_options_error("{\"class_name\": \"ReduceLROnPlateau\", \"config\": {\"monitor\": "
                             "\"val_f1\"}}",
                             "fit.callbacks[0].config.monitor must be val_loss");
    expect_fit_options_error("{\"class_name\": \"ReduceLROnPlateau\", \"config\": 3}",
                             "fit.callbacks[0].config must be an object");

    /* A plateau callback and a schedule both want to own the rate. */
    struct amuse_dataset d;
    make_dataset(&d, 10, 3, 1);
    struct amuse_model *m = model_from(mlp_json(
        "both", 2,
        "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": {\"class_name\": "
        "\"ExponentialDecay\", \"config\": {\"initial_learning_rate\": 0.1, \"decay_steps\": 3, "
        "\"decay_rate\": 0.5}}}}",
        "{\"callbacks\": [{\"class_name\": \"ReduceLROnPlateau\", \"config\": {}}]}"));
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    o.verbose = 0;
    struct amuse_epoch_log h[1];
    int ran;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_EINVAL,
                 "ReduceLROnPlateau needs a constant learning rate, but the optimizer's "
                 "learning_rate is a ExponentialDecay schedule");
    amuse_model_free(m);
    amuse_dataset_release(&d);
}

/* Rewrite a state file with metadata `key` set to `value` (NULL: removed), or with one tensor
 * dropped (drop_tensor). */
static void rewrite_state(const char *from_dir, const char *to_dir, const char *key,
                          const char *value, const char *drop_tensor)
{
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/%s", from_dir, AMUSE_TRAINING_STATE_FILE);
    snprintf(to, sizeof to, "%s/%s", to_dir, AMUSE_TRAINING_STATE_FILE);
    mkdir(to_dir, 0755);
    struct amuse_safetensors st;
    ASSERT_OK(amuse_safetensors_load(&st, from, 0));
    struct amuse_st_entry *e = xcalloc((size_t)st.n_tensors, sizeof *e);
    float **copies = xcalloc((size_t)st.n_tensors, sizeof *copies);
    int n = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        if (drop_tensor && strcmp(st.tensors[i].name, drop_tensor) == 0)
            continue;
        copies[n] = xcalloc((size_t)amuse_shape_size(&st.tensors[i].shape), sizeof(float));
        ASSERT_OK(amuse_safetensors_to_f32(&st.tensors[i], copies[n]));
        e[n].name = st.tensors[i].name;
        e[n].shape = st.tensors[i].shape;
        e[n].data = copies[n];
        n++;
    }
    const char **keys = xcalloc((size_t)st.n_metadata, sizeof *keys);
    const char **values = xcalloc((size_t)st.n_metadata, sizeof *values);
    int nm = 0;
    for (int i = 0; i < st.n_metadata; i++) {
        if (key && strcmp(st.metadata_keys[i], key) == 0) {
            if (!value)
                continue;
            keys[nm] = key;
            values[nm++] = value;
            continue;
        }
        keys[nm] = st.metadata_keys[i];
        values[nm++] = st.metadata_values[i];
    }
    ASSERT_OK(amuse_safetensors_write(to, e, n, keys, values, nm));
    for (int i = 0; i < n; i++)
        free(copies[i]);
    free(copies);
    free(e);
    free(keys);
    free(values);
    amuse_safetensors_release(&st);
}

/* Resume `json` from dir for `epochs`; the fit must fail with status and text, leaving the
 * model's weights as they were. */
static void expect_resume_error(const char *json, const char *dir, int epochs, uint64_t seed,
                                const struct amuse_dataset *d, int status, const char *text)
{
    struct amuse_model *m = model_from(json);
    ASSERT_OK(amuse_model_init_weights(m, 42));
    int64_t n = amuse_model_param_count(m);
    float *before = xcalloc((size_t)n, sizeof(float)), *after = xcalloc((size_t)n, sizeof(float));
    weights_copy(m, before);
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    o.verbose = 0;
    o.epochs = epochs;
    o.seed = seed;
    o.resume_dir = dir;
    struct amuse_epoch_log h[8];
    int ran = -1;
    amuse_clear_error();
    int rc = amuse_model_fit(m, d, &o, h, &ran);
    weights_copy(m, after);
    int same = memcmp(before, after, (size_t)n * sizeof(float)) == 0;
    int64_t iterations = amuse_model_iterations(m);
    free(before);
    free(after);
    amuse_model_free(m);
    if (rc != status)
        TEST_FAIL("resume from %s: status %d, want %d (%s)", dir, rc, status, amuse_last_error());
    if (!strstr(amuse_last_error(), text))
        TEST_FAIL("resume from %s: message \"%s\" lacks \"%s\"", dir, amuse_last_error(), text);
    if (!strstr(amuse_last_error(), AMUSE_TRAINING_STATE_FILE))
        TEST_FAIL("resume from %s: message \"%s\" does not name the file", dir, amuse_last_error());
    ASSERT_TRUE(same);
    ASSERT_EQ_INT(iterations, 0);
    ASSERT_EQ_INT(ran, 0);
}

TEST(bad_training_states_are_refused)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 40, 3, 14);
    const char *fit = "{\"batch_size\": 10, \"epochs\": 4, \"seed\": 6}";
    char json[4096];
    snprintf(json, sizeof json, "%s", mlp_json("good", 6, "\"adam\"", fit));
    char good[512];
    snprintf(good, sizeof good, "%s", tmp_path("state-good"));
    struct run r;
    run_fit(json, 2, NULL, good, 1, &d, &r);
    free(r.w);
    /* Sanity: the untouched state resumes. */
    run_fit(json, 3, good, NULL, 1, &d, &r);
    free(r.w);

    /* No state at all. */
    expect_resume_error(json, tmp_path("no-such-dir"), 4, 6, &d, AMUSE_ENOTFOUND, "cannot open");

    /* Truncated: half the file. */
    char path[600], cut[600];
    snprintf(path, sizeof path, "%s/%s", good, AMUSE_TRAINING_STATE_FILE);
    const char *cut_dir = tmp_path("state-cut");
    mkdir(cut_dir, 0755);
    snprintf(cut, sizeof cut, "%s/%s", cut_dir, AMUSE_TRAINING_STATE_FILE);
    {
        FILE *f = fopen(path, "rb");
        ASSERT_TRUE(f != NULL);
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *bytes = xcalloc((size_t)len, 1);
        ASSERT_TRUE(fread(bytes, 1, (size_t)len, f) == (size_t)len);
        fclose(f);
        FILE *g = fopen(cut, "wb");
        ASSERT_TRUE(g && fwrite(bytes, 1, (size_t)len / 2, g) == (size_t)len / 2);
        fclose(g);
        free(bytes);
    }
    expect_resume_error(json, cut_dir, 4, 6, &d, AMUSE_EFORMAT, "");

    /* Another model, another shape, another optimizer, another seed, other data. */
    char other[4096];
    snprintf(other, sizeof other, "%s", mlp_json("other", 6, "\"adam\"", fit));
    expect_resume_error(other, good, 4, 6, &d, AMUSE_EINVAL,
                        "metadata 'model' is 'good', but this run trains 'other'");
    snprintf(other, sizeof other, "%s", mlp_json("good", 5, "\"adam\"", fit));
    expect_resume_error(
        other, good, 4, 6, &d, AMUSE_EINVAL,
        "tensor 'weights/dense/kernel' is F32 (4, 6) but the model needs F32 (4, 5)");
    snprintf(other, sizeof other, "%s", mlp_json("good", 6, "\"rmsprop\"", fit));
    expect_resume_error(other, good, 4, 6, &d, AMUSE_EINVAL,
                        "metadata 'optimizer' is 'Adam', but this run uses RMSprop");
    expect_resume_error(json, good, 4, 7, &d, AMUSE_EINVAL,
                        "metadata 'seed' is 6, but this run's seed is 7");
    expect_resume_error(json, good, 2, 6, &d, AMUSE_EINVAL,
                        "the run already reached epoch 2; ask for more epochs than that");
    struct amuse_dataset fewer;
    ASSERT_OK(amuse_dataset_slice(&fewer, &d, 0, 30));
    expect_resume_error(json, good, 4, 6, &fewer, AMUSE_EINVAL,
                        "metadata 'train_samples' is 40, but this run trains on 30 samples");
    amuse_dataset_release(&fewer);
    snprintf(
        other, sizeof other, "%s",
        mlp_json("good", 6, "\"adam\"",
                 "{\"batch_size\": 10, \"epochs\": 4, \"seed\": 6, \"callbacks\": "
                 "[{\"class_name\": \"EarlyStopping\", \"config\": {\"monitor\": \"accuracy\", "
                 "\"restore_best_weights\": true}}]}"));
    expect_resume_error(other, good, 4, 6, &d, AMUSE_EINVAL,
                        "metadata 'monitor' is 'loss', but this run monitors accuracy");

    /* Damaged fields, one at a time. */
    static const struct {
        const char *key, *value;
        int status;
        const char *text;
    } bad[] = {
        {"format", "something-else", AMUSE_EFORMAT, "metadata 'format' is 'something-else', not"},
        {"version", "2", AMUSE_EFORMAT, "metadata 'version' is '2'; this build reads 1"},
        {"iterations", NULL, AMUSE_EFORMAT, "metadata 'iterations' is missing"},
        {"iterations", "-3", AMUSE_EFORMAT, "metadata 'iterations' is '-3', not a whole number"},
        {"epoch", "two", AMUSE_EFORMAT, "metadata 'epoch' is 'two', not a whole number"},
        {"learning_rate", "fast", AMUSE_EFORMAT,
         "metadata 'learning_rate' is 'fast', not a number"},
        {"shuffle_rng", "0123", AMUSE_EFORMAT,
         "metadata 'shuffle_rng' is '0123', not four 16-digit hex words"},
        {"shuffle_rng", "0000000000000001 0000000000000002 0000000000000003 0000000000000004",
         AMUSE_EINVAL, "metadata 'shuffle_rng' does not follow from seed 6 over 2 epochs"},
        {"rng/dropout", NULL, AMUSE_EFORMAT, "metadata 'rng/dropout' is missing"},
        {"history", "[]", AMUSE_EFORMAT, "metadata 'history' must be a JSON list of 2 epochs"},
        {"history",
         "[{\"epoch\": 1, \"train_samples\": 40}, {\"epoch\": 3, "
         "\"train_samples\": 40}]",
         AMUSE_EFORMAT, "metadata 'history' entry 1 is not epoch 2"},
        {"history", "[[[[[[]]]]]]", AMUSE_EFORMAT,
         "metadata 'history': JSON nests deeper than 2 levels (byte 2)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *dir = tmp_path("state-bad");
        rewrite_state(good, dir, bad[i].key, bad[i].value, NULL);
        expect_resume_error(json, dir, 4, 6, &d, bad[i].status, bad[i].text);
        remove_tree(dir);
    }
    /* A missing tensor, and an extra one (a state of a model with another layer). */
    const char *dir = tmp_path("state-bad");
    rewrite_state(good, dir, NULL, NULL, "slot2/dense_1/bias");
    expect_resume_error(json, dir, 4, 6, &d, AMUSE_EINVAL,
                        "tensor 'slot2/dense_1/bias' is missing");
    remove_tree(dir);
    snprintf(other, sizeof other, "%s",
             mlp_json("good", 6, "\"adam\"",
                      "{\"batch_size\": 10, \"epochs\": 4, \"seed\": 6, \"callbacks\": "
                      "[{\"class_name\": \"EarlyStopping\", \"config\": {\"monitor\": \"loss\", "
                      "\"restore_best_weights\": true}}]}"));
    /* A state without best weights cannot serve restore_best_weights (the monitor matches: with
     * no validation data val_loss falls back to loss). */
    expect_resume_error(other, good, 4, 6, &d, AMUSE_EINVAL,
                        "tensor 'best_weights/dense/kernel' is missing (restore_best_weights needs "
                        "the best weights");
    amuse_dataset_release(&d);
    amuse_set_threads(0);
}

int main(void)
{
    char pattern[] = "/tmp/amuse-test-training-XXXXXX";
    if (!mkdtemp(pattern)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(tmp_root, sizeof tmp_root, "%s", pattern);
    RUN(schedules_follow_keras_formulas);
    RUN(schedules_match_pytorch);
    RUN(optimizer_applies_the_schedule_each_step);
    RUN(fit_logs_the_scheduled_rate);
    RUN(reduce_lr_on_plateau_follows_keras);
    RUN(resume_is_bit_identical_with_adam_dropout_and_callbacks);
    RUN(resume_is_bit_identical_with_schedules_and_other_optimizers);
    RUN(checkpoint_keeps_a_resumable_state);
    RUN(bad_schedules_name_the_field);
    RUN(bad_plateau_callbacks_name_the_field);
    RUN(bad_training_states_are_refused);
    remove_tree(tmp_root);
    return test_summary();
}
