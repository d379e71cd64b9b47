/* test_golden.c - the engine against PyTorch references: a tiny CNN and MLP, and Embedding ->
 * LSTM / GRU -> Dense sequence models with per-step sparse targets (forward output, loss, every
 * gradient, and 3 steps each of Adam, RMSprop and SGD with momentum).
 *
 * The fixtures in tests/fixtures/golden/ come from tests/golden/make_golden.py (float64 PyTorch,
 * Keras layouts, hand-written Keras update rules; that script also shows float32 PyTorch meets
 * the tolerances below). They are read with a small reader in this file, not with the library's
 * safetensors code, so a bug there cannot hide a bug here. This file does not test file I/O,
 * fit() or the CLI.
 *
 * Tolerances (absolute unless stated): output 1e-5, loss 1e-5, gradients 1e-4 + 1e-3 relative,
 * weights after the optimizer steps 1e-4.
 */
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/tensor.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define TOL_OUTPUT 1e-5
#define TOL_LOSS 1e-5
#define TOL_GRAD_ABS 1e-4
#define TOL_GRAD_REL 1e-3
#define TOL_WEIGHTS 1e-4
#define GOLDEN_STEPS 3
#define GOLDEN_MAX_FILE (1u << 20) /* the fixtures are a few KB */

/* ------------------------------------------------------------------------ fixture reader */

struct golden_tensor {
    const char *name; /* points into the parsed header */
    struct amuse_shape shape;
    int64_t count;
    float *data; /* owned copy (the file image need not be aligned for float) */
};

struct golden {
    cJSON *header;
    int n;
    struct golden_tensor *tensors;
};

static void golden_release(struct golden *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n; i++)
        free(g->tensors[i].data);
    free(g->tensors);
    cJSON_Delete(g->header);
    memset(g, 0, sizeof *g);
}

static uint64_t read_u64_le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Load an F32-only safetensors file, validating the header length against the file size, every
 * tensor's dtype, shape and offsets against the data buffer, and that the tensors tile the buffer
 * without holes or overlap. On failure err says why and g is empty. */
static int golden_load(struct golden *g, const char *path, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    unsigned char *bytes = NULL;
    int ok = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return 0;
    }
    bytes = malloc(GOLDEN_MAX_FILE + 1);
    size_t len = bytes ? fread(bytes, 1, GOLDEN_MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!bytes || len > GOLDEN_MAX_FILE || len < 8) {
        snprintf(err, errlen, "%s: %zu bytes: not a fixture (8 bytes to 1 MiB)", path, len);
        goto out;
    }
    uint64_t header_len = read_u64_le(bytes);
    if (header_len > len - 8) {
        snprintf(err, errlen, "%s: header length %llu larger than the file (%zu bytes)", path,
                 (unsigned long long)header_len, len);
        goto out;
    }
    g->header = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)header_len);
    if (!cJSON_IsObject(g->header)) {
        snprintf(err, errlen, "%s: header is not a JSON object", path);
        goto out;
    }
    const unsigned char *buffer = bytes + 8 + header_len;
    uint64_t buffer_len = len - 8 - header_len, covered = 0;
    int capacity = cJSON_GetArraySize(g->header);
    g->tensors = calloc((size_t)capacity + 1, sizeof *g->tensors);
    if (!g->tensors) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (cJSON *item = g->header->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0)
            continue;
        struct golden_tensor *t = &g->tensors[g->n];
        t->name = item->string;
        cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
        cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "F32") != 0 ||
            !cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > AMUSE_MAX_DIMS ||
            !cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2) {
            snprintf(err, errlen, "%s: tensor '%s': need dtype F32, a shape and 2 data_offsets",
                     path, t->name);
            goto out;
        }
        t->shape.ndim = cJSON_GetArraySize(shape);
        t->count = 1;
        for (int d = 0; d < t->shape.ndim; d++) {
            double v = cJSON_GetArrayItem(shape, d)->valuedouble;
            if (!(v >= 0 && v <= 1e6)) {
                snprintf(err, errlen, "%s: tensor '%s': bad dimension %d", path, t->name, d);
                goto out;
            }
            t->shape.dim[d] = (int64_t)v;
            t->count *= t->shape.dim[d];
        }
        double begin = cJSON_GetArrayItem(offsets, 0)->valuedouble;
        double end = cJSON_GetArrayItem(offsets, 1)->valuedouble;
        if (!(begin >= 0 && end >= begin && end <= (double)buffer_len) ||
            (uint64_t)(end - begin) != (uint64_t)t->count * sizeof(float)) {
            snprintf(err, errlen,
                     "%s: tensor '%s': data_offsets [%.0f, %.0f) do not fit %lld floats in a "
                     "%llu-byte buffer",
                     path, t->name, begin, end, (long long)t->count,
                     (unsigned long long)buffer_len);
            goto out;
        }
        t->data = malloc((size_t)t->count * sizeof(float) + 1);
        if (!t->data) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        /* The fixture is little-endian; so is every machine amuse targets (checked in main). */
        memcpy(t->data, buffer + (uint64_t)begin, (size_t)t->count * sizeof(float));
        covered += (uint64_t)(end - begin);
        g->n++;
    }
    /* Each range lies inside the buffer and the lengths sum to its size, so with no overlap
     * (checked pairwise below) the tensors tile the buffer exactly. */
    if (covered != buffer_len) {
        snprintf(err, errlen, "%s: tensors cover %llu of %llu data bytes", path,
                 (unsigned long long)covered, (unsigned long long)buffer_len);
        goto out;
    }
    for (cJSON *a = g->header->child; a; a = a->next) {
        if (strcmp(a->string, "__metadata__") == 0)
            continue;
        double ab = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "data_offsets"), 0)->valuedouble;
        double ae = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "data_offsets"), 1)->valuedouble;
        for (cJSON *b = a->next; b; b = b->next) {
            if (strcmp(b->string, "__metadata__") == 0)
                continue;
            double bb = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "data_offsets"), 0)->valuedouble;
            double be = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "data_offsets"), 1)->valuedouble;
            if (ab < be && bb < ae) {
                snprintf(err, errlen, "%s: tensors '%s' and '%s' overlap", path, a->string,
                         b->string);
                goto out;
            }
        }
    }
    ok = 1;
out:
    free(bytes);
    if (!ok)
        golden_release(g);
    return ok;
}

static const struct golden_tensor *golden_find(const struct golden *g, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return &g->tensors[i];
    return NULL;
}

/* The named tensor, which must exist with `count` elements (count < 0: any). */
#define GOLDEN_GET(g, name, count)                                                                 \
    golden_get_checked((g), (name), (count), __FILE__, __LINE__)

static const struct golden_tensor *golden_get_checked(const struct golden *g, const char *name,
                                                      int64_t count, const char *file, int line)
{
    const struct golden_tensor *t = golden_find(g, name);
    if (!t) {
        fprintf(stderr, "%s:%d: fixture has no tensor '%s'\n", file, line, name);
        longjmp(test_jump, 1);
    }
    if (count >= 0 && t->count != count) {
        fprintf(stderr, "%s:%d: fixture tensor '%s' has %lld elements, expected %lld\n", file,
                line, name, (long long)t->count, (long long)count);
        longjmp(test_jump, 1);
    }
    return t;
}

/* ------------------------------------------------------------------------ comparisons */

/* Compare n floats; |got - want| <= abs_tol + rel_tol * |want| everywhere. Prints the group's
 * worst error either way, and the first offending element on failure. Returns 1 if within. */
static int compare(const char *model, const char *what, const float *got, const float *want,
                   int64_t n, double abs_tol, double rel_tol)
{
    double worst = 0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (e > worst || isnan(e))
            worst = isnan(e) ? INFINITY : e;
        if (bad < 0 && !(e <= abs_tol + rel_tol * fabs((double)want[i])))
            bad = i;
    }
    printf("  %s %-26s max abs err %.3g (%lld values)%s\n", model, what, worst, (long long)n,
           bad >= 0 ? "  <-- FAIL" : "");
    if (bad >= 0)
        fprintf(stderr, "  %s %s[%lld]: got %.9g, expected %.9g (tolerance %g + %g relative)\n",
                model, what, (long long)bad, got[bad], want[bad], abs_tol, rel_tol);
    return bad < 0;
}

/* ------------------------------------------------------------------------ the golden run */

struct golden_case {
    const char *key;  /* "cnn" -> golden/cnn.json and golden/cnn.safetensors */
    const char *loss; /* compile "loss" */
    int sparse;       /* labels (sparse) or one-hot targets */
};

static const struct {
    const char *key, *optimizer;
} optimizers[] = {
    {"adam", "{\"class_name\": \"Adam\", \"config\": {\"learning_rate\": 0.01, \"beta_1\": 0.9, "
             "\"beta_2\": 0.999, \"epsilon\": 1e-7}}"},
    {"rmsprop", "{\"class_name\": \"RMSprop\", \"config\": {\"learning_rate\": 0.01, \"rho\": 0.9, "
                "\"momentum\": 0.0, \"epsilon\": 1e-7}}"},
    {"sgd", "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": 0.1, \"momentum\": 0.9, "
            "\"nesterov\": false}}"},
};

/* Copy "<prefix><weight name>" from the fixture into every weight of the model. */
static void set_weights(struct amuse_model *m, const struct golden *g, const char *prefix)
{
    for (int i = 0; i < amuse_model_weight_count(m); i++) {
        struct amuse_tensor value, grad;
        const char *name = amuse_model_weight_info(m, i, &value, &grad);
        ASSERT_TRUE(name != NULL);
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, name);
        const struct golden_tensor *t = GOLDEN_GET(g, key, value.size);
        if (!amuse_shape_equal(&t->shape, &value.shape)) {
            char a[96], b[96];
            TEST_FAIL("weight '%s': model shape %s, fixture shape %s", name,
                      amuse_shape_format(&value.shape, 0, a, sizeof a),
                      amuse_shape_format(&t->shape, 0, b, sizeof b));
        }
        memcpy(value.data, t->data, (size_t)t->count * sizeof(float));
    }
}

/* Compare every model weight (or its gradient) with "<prefix><name>"; returns failures. */
static int compare_weights(struct amuse_model *m, const struct golden *g, const char *model,
                           const char *prefix, int grads, double abs_tol, double rel_tol)
{
    int failures = 0;
    for (int i = 0; i < amuse_model_weight_count(m); i++) {
        struct amuse_tensor value, grad;
        const char *name = amuse_model_weight_info(m, i, &value, &grad);
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, name);
        const struct golden_tensor *t = GOLDEN_GET(g, key, value.size);
        failures += !compare(model, key, grads ? grad.data : value.data, t->data, t->count,
                             abs_tol, rel_tol);
    }
    return failures;
}

static void compile_with(struct amuse_model *m, const char *optimizer, const char *loss)
{
    char json[512];
    snprintf(json, sizeof json, "{\"optimizer\": %s, \"loss\": \"%s\", \"metrics\": [\"accuracy\"]}",
             optimizer, loss);
    ASSERT_OK(amuse_model_compile(m, json));
}

static void run_golden(const struct golden_case *c)
{
    char path[1024], err[512];
    struct golden g;
    struct amuse_model *m = NULL;
    int failures = 0;

    snprintf(path, sizeof path, "%s/golden/%s.safetensors", AMUSE_FIXTURES, c->key);
    if (!golden_load(&g, path, err, sizeof err))
        TEST_FAIL("%s", err);
    snprintf(path, sizeof path, "%s/golden/%s.json", AMUSE_FIXTURES, c->key);
    int rc = amuse_model_from_file(&m, path);
    if (rc != AMUSE_OK) {
        golden_release(&g);
        TEST_FAIL("amuse_model_from_file(%s): %s (%s)", path, amuse_strerror(rc),
                  amuse_last_error());
    }

    /* The fixture's initial weights are exactly the model's weights: none missing, none extra. */
    int fixture_weights = 0;
    for (int i = 0; i < g.n; i++) {
        const char *n = g.tensors[i].name;
        if (strchr(n, '/') && strncmp(n, "grad/", 5) != 0 && strncmp(n, "adam/", 5) != 0 &&
            strncmp(n, "rmsprop/", 8) != 0 && strncmp(n, "sgd/", 4) != 0)
            fixture_weights++;
    }
    ASSERT_EQ_INT(amuse_model_weight_count(m), fixture_weights);

    const struct golden_tensor *x = GOLDEN_GET(&g, "x", -1);
    const struct golden_tensor *want_out = GOLDEN_GET(&g, "output", -1);
    int64_t batch = x->shape.dim[0];
    int64_t classes = want_out->shape.dim[want_out->shape.ndim - 1];
    int64_t rows = want_out->count / classes; /* batch, or batch * steps for sequences */
    ASSERT_EQ_INT(amuse_shape_size(amuse_model_input_shape(m)) * batch, x->count);
    ASSERT_EQ_INT(amuse_shape_size(amuse_model_output_shape(m)) * batch, want_out->count);

    const float *targets = NULL;
    int32_t labels[256];
    const int32_t *labels_arg = NULL;
    if (c->sparse) {
        const struct golden_tensor *l = GOLDEN_GET(&g, "labels", rows);
        ASSERT_TRUE(rows <= 256);
        for (int64_t i = 0; i < rows; i++)
            labels[i] = (int32_t)l->data[i];
        labels_arg = labels;
    } else {
        targets = GOLDEN_GET(&g, "y", rows * classes)->data;
    }

    /* Forward, loss and gradients. The optimizer does not matter here; compile sets the loss. */
    set_weights(m, &g, "");
    compile_with(m, optimizers[0].optimizer, c->loss);
    const float *out = NULL;
    float loss = 0;
    ASSERT_OK(amuse_model_forward(m, x->data, batch, 0, &out));
    failures += !compare(c->key, "output", out, want_out->data, rows * classes, TOL_OUTPUT, 0);
    ASSERT_OK(amuse_model_loss(m, targets, labels_arg, &loss));
    failures += !compare(c->key, "loss", &loss, GOLDEN_GET(&g, "loss", 1)->data, 1, TOL_LOSS, 0);
    amuse_model_zero_grad(m);
    ASSERT_OK(amuse_model_backward(m));
    failures += compare_weights(m, &g, c->key, "grad/", 1, TOL_GRAD_ABS, TOL_GRAD_REL);

    /* Three optimizer steps on the same batch, from the initial weights, for each optimizer. */
    for (size_t o = 0; o < sizeof optimizers / sizeof optimizers[0]; o++) {
        char key[64];
        snprintf(key, sizeof key, "%s/losses", optimizers[o].key);
        const struct golden_tensor *want_losses = GOLDEN_GET(&g, key, GOLDEN_STEPS);
        float losses[GOLDEN_STEPS];
        set_weights(m, &g, "");
        compile_with(m, optimizers[o].optimizer, c->loss);
        for (int s = 0; s < GOLDEN_STEPS; s++) {
            ASSERT_OK(amuse_model_forward(m, x->data, batch, 1, &out));
            ASSERT_OK(amuse_model_loss(m, targets, labels_arg, &losses[s]));
            amuse_model_zero_grad(m);
            ASSERT_OK(amuse_model_backward(m));
            ASSERT_OK(amuse_model_step(m));
        }
        failures += !compare(c->key, key, losses, want_losses->data, GOLDEN_STEPS, TOL_LOSS, 0);
        snprintf(key, sizeof key, "%s/", optimizers[o].key);
        failures += compare_weights(m, &g, c->key, key, 0, TOL_WEIGHTS, 0);
    }

    amuse_model_free(m);
    golden_release(&g);
    if (failures)
        TEST_FAIL("%s: %d tensor group(s) outside tolerance (see the table above)", c->key,
                  failures);
}

TEST(golden_cnn_matches_pytorch)
{
    static const struct golden_case c = {"cnn", "categorical_crossentropy", 0};
    run_golden(&c);
}

TEST(golden_mlp_matches_pytorch)
{
    static const struct golden_case c = {"mlp", "sparse_categorical_crossentropy", 1};
    run_golden(&c);
}

TEST(golden_lstm_matches_pytorch)
{
    static const struct golden_case c = {"lstm", "sparse_categorical_crossentropy", 1};
    run_golden(&c);
}

TEST(golden_gru_matches_pytorch)
{
    static const struct golden_case c = {"gru", "sparse_categorical_crossentropy", 1};
    run_golden(&c);
}

/* The reader must refuse what it cannot vouch for, or the tests above could compare garbage. */
/* The voice-model layers (tests/golden/make_voice_layers.py): DepthwiseConv2D,
 * BatchNormalization in both modes (and its moving-statistics update), AveragePooling2D with
 * TensorFlow's "same" rule, GlobalAveragePooling2D. */
TEST(golden_voice_layers_match_pytorch)
{
    char path[1024], err[512];
    struct golden g;
    struct amuse_model *m = NULL;
    int failures = 0;
    snprintf(path, sizeof path, "%s/golden/voice.safetensors", AMUSE_FIXTURES);
    if (!golden_load(&g, path, err, sizeof err))
        TEST_FAIL("%s", err);
    snprintf(path, sizeof path, "%s/golden/voice.json", AMUSE_FIXTURES);
    ASSERT_OK(amuse_model_from_file(&m, path));
    const struct golden_tensor *x = GOLDEN_GET(&g, "x", -1);
    int64_t batch = x->shape.dim[0], classes = 4;
    const struct golden_tensor *l = GOLDEN_GET(&g, "labels", batch);
    int32_t labels[16];
    ASSERT_TRUE(batch <= 16);
    for (int64_t i = 0; i < batch; i++)
        labels[i] = (int32_t)l->data[i];
    set_weights(m, &g, "");
    compile_with(m, optimizers[0].optimizer, "sparse_categorical_crossentropy");
    const float *out = NULL;
    ASSERT_OK(amuse_model_forward(m, x->data, batch, 0, &out));
    failures += !compare("voice", "output_inference", out,
                         GOLDEN_GET(&g, "output_inference", batch * classes)->data,
                         batch * classes, TOL_OUTPUT, 0);
    ASSERT_OK(amuse_model_forward(m, x->data, batch, 1, &out));
    failures += !compare("voice", "output", out, GOLDEN_GET(&g, "output", batch * classes)->data,
                         batch * classes, TOL_OUTPUT, 0);
    float loss = 0;
    ASSERT_OK(amuse_model_loss(m, NULL, labels, &loss));
    failures += !compare("voice", "loss", &loss, GOLDEN_GET(&g, "loss", 1)->data, 1, TOL_LOSS, 0);
    amuse_model_zero_grad(m);
    ASSERT_OK(amuse_model_backward(m));
    static const char *const trainable[] = {"dw/depthwise_kernel", "dw/bias", "bn/gamma",
                                            "bn/beta", "head/kernel", "head/bias"};
    for (size_t i = 0; i < sizeof trainable / sizeof trainable[0]; i++) {
        struct amuse_tensor value, grad;
        char key[128];
        ASSERT_OK(amuse_model_find_weight(m, trainable[i], &value, &grad));
        snprintf(key, sizeof key, "grad/%s", trainable[i]);
        failures += !compare("voice", key, grad.data, GOLDEN_GET(&g, key, value.size)->data,
                             value.size, TOL_GRAD_ABS, TOL_GRAD_REL);
    }
    static const char *const moving[] = {"bn/moving_mean", "bn/moving_variance"};
    for (int i = 0; i < 2; i++) {
        struct amuse_tensor value;
        char key[128];
        ASSERT_OK(amuse_model_find_weight(m, moving[i], &value, NULL));
        snprintf(key, sizeof key, "after/%s", moving[i]);
        failures += !compare("voice", key, value.data, GOLDEN_GET(&g, key, value.size)->data,
                             value.size, TOL_WEIGHTS, 0);
    }
    amuse_model_free(m);
    golden_release(&g);
    if (failures)
        TEST_FAIL("voice: %d tensor group(s) outside tolerance (see the table above)", failures);
}

TEST(golden_reader_rejects_bad_files)
{
    char path[1024], err[512];
    struct golden g;
    snprintf(path, sizeof path, "%s/golden/mlp.safetensors", AMUSE_FIXTURES);
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    static unsigned char good[1 << 16];
    size_t len = fread(good, 1, sizeof good, f);
    fclose(f);
    ASSERT_TRUE(len > 64 && len < sizeof good);
    ASSERT_TRUE(golden_load(&g, path, err, sizeof err));
    golden_release(&g);

    const char *bad = AMUSE_BINARY_DIR "/golden_bad.safetensors";
    /* Truncated by one byte: the tensors no longer fit the buffer. */
    f = fopen(bad, "wb");
    ASSERT_TRUE(f != NULL);
    fwrite(good, 1, len - 1, f);
    fclose(f);
    ASSERT_TRUE(!golden_load(&g, bad, err, sizeof err));
    ASSERT_CONTAINS(err, "data_offsets");
    /* Header length larger than the file. */
    unsigned char copy[1 << 16];
    memcpy(copy, good, len);
    copy[0] = 0xff;
    copy[1] = 0xff;
    copy[2] = 0xff;
    f = fopen(bad, "wb");
    ASSERT_TRUE(f != NULL);
    fwrite(copy, 1, len, f);
    fclose(f);
    ASSERT_TRUE(!golden_load(&g, bad, err, sizeof err));
    ASSERT_CONTAINS(err, "header length");
    remove(bad);
}

int main(void)
{
    const uint32_t one = 1;
    if (*(const unsigned char *)&one != 1) {
        printf("skipping: the fixtures are little-endian and this machine is not\n");
        return 0;
    }
    RUN(golden_reader_rejects_bad_files);
    RUN(golden_cnn_matches_pytorch);
    RUN(golden_mlp_matches_pytorch);
    RUN(golden_lstm_matches_pytorch);
    RUN(golden_gru_matches_pytorch);
    RUN(golden_voice_layers_match_pytorch);
    return test_summary();
}
