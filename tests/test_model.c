/* test_model.c - the model as a whole: save/load round trips, every config and weight-file error
 * giving a clear message that names the place at fault, fit()'s Keras semantics (validation tail,
 * per-epoch reproducible shuffling, EarlyStopping, restore_best_weights, checkpoints, history),
 * loss values, and the training-curve SVG.
 *
 * Malformed weight files are written byte by byte here, not with the library's writer, so the
 * reader is tested against what a foreign or damaged file really contains. Everything is written
 * under a mkdtemp directory that is removed at the end. Layer math is tested in test_layers.c and
 * test_gradcheck.c; the CLI in cli_*.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include "amuse/data.h"
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/rng.h"
#include "amuse/runtime.h"
#include "test.h"
#include "test_model_util.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0)
        TEST_FAIL("cannot write %s", path);
}

static char *read_text(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        TEST_FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = xcalloc((size_t)len + 1, 1);
    if (fread(text, 1, (size_t)len, f) != (size_t)len)
        TEST_FAIL("cannot read %s", path);
    fclose(f);
    if (len_out)
        *len_out = (size_t)len;
    return text;
}

/* Fail if dir holds a leftover temp file ("*.tmp.*"). */
static void expect_no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        TEST_FAIL("cannot list %s", dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) {
            closedir(d);
            TEST_FAIL("%s: leftover temp file %s", dir, e->d_name);
        }
    closedir(d);
}

/* A tiny CNN with labels. */
static const char *small_cnn_json =
    "{\"name\": \"small_cnn\", \"labels\": [\"a\", \"b\", \"c\"],"
    "\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 8, 8, 1]}},"
    "{\"class_name\": \"Conv2D\", \"config\": {\"filters\": 4, \"kernel_size\": 3, "
    "\"activation\": \"relu\", \"padding\": \"same\"}},"
    "{\"class_name\": \"MaxPooling2D\", \"config\": {\"pool_size\": 2}},"
    "{\"class_name\": \"Flatten\", \"config\": {}},"
    "{\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.3}},"
    "{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\": \"softmax\"}}]}},"
    "\"compile\": {\"optimizer\": \"adam\", \"loss\": \"categorical_crossentropy\", "
    "\"metrics\": [\"accuracy\"]}}";

/* ---------------------------------------------------------------- save / load */

TEST(save_then_load_gives_identical_predictions)
{
    struct amuse_model *m = model_from(small_cnn_json);
    ASSERT_OK(amuse_model_init_weights(m, 3));
    enum { N = 7 };
    float x[N * 64], *p1 = xcalloc(N * 3, sizeof(float)), *p2 = xcalloc(N * 3, sizeof(float));
    struct amuse_rng rng;
    amuse_rng_seed(&rng, 11);
    for (int i = 0; i < N * 64; i++)
        x[i] = amuse_rng_uniform(&rng);
    ASSERT_OK(amuse_model_predict(m, x, N, 4, p1));
    const char *dir = tmp_path("roundtrip/model");
    ASSERT_OK(amuse_model_save(m, dir));
    expect_no_temp_files(dir);

    struct amuse_model *loaded = NULL;
    ASSERT_OK(amuse_model_load(&loaded, dir));
    ASSERT_OK(amuse_model_predict(loaded, x, N, 4, p2));
    ASSERT_TRUE(memcmp(p1, p2, N * 3 * sizeof(float)) == 0);
    ASSERT_EQ_INT(amuse_model_param_count(loaded), amuse_model_param_count(m));
    ASSERT_STR_EQ(amuse_model_name(loaded), "small_cnn");
    ASSERT_STR_EQ(amuse_model_label(loaded, 2), "c");
    /* Every weight is bit-identical too, under the same name. */
    ASSERT_EQ_INT(amuse_model_weight_count(loaded), amuse_model_weight_count(m));
    for (int w = 0; w < amuse_model_weight_count(m); w++) {
        struct amuse_tensor a, b;
        const char *name = amuse_model_weight_info(m, w, &a, NULL);
        ASSERT_OK(amuse_model_find_weight(loaded, name, &b, NULL));
        ASSERT_EQ_INT(a.size, b.size);
        ASSERT_TRUE(memcmp(a.data, b.data, (size_t)a.size * sizeof(float)) == 0);
    }
    /* Saving over an existing model replaces it atomically and leaves no temp files. */
    ASSERT_OK(amuse_model_save(loaded, dir));
    expect_no_temp_files(dir);
    amuse_model_free(loaded);
    amuse_model_free(m);
    free(p1);
    free(p2);
}

/* ---------------------------------------------------------------- config errors */

/* A Sequential config with one layer after a (6, 6, 1) input, and a compile section. */
static char *config_with(const char *layer, const char *compile, const char *extra)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{%s\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 6, 6, 1]}},"
             "%s]}}, \"compile\": %s}",
             extra, layer, compile);
    return buf;
}

static const char *ok_compile = "{\"optimizer\": \"adam\", \"loss\": \"categorical_crossentropy\"}";

static void expect_config_error(const char *json, int status, const char *text1, const char *text2)
{
    struct amuse_model *m = (struct amuse_model *)1;
    ASSERT_FAILS(amuse_model_from_json(&m, json, strlen(json), "recipe.json"), status, text1);
    ASSERT_TRUE(m == NULL);
    ASSERT_CONTAINS(amuse_last_error(), "recipe.json");
    if (text2)
        ASSERT_CONTAINS(amuse_last_error(), text2);
}

TEST(config_invalid_json_names_the_byte_offset)
{
    /* The second comma is byte 13. cJSON reports where it stopped, which can be the byte after
     * the offending one, so 13 or 14 is accepted, but not some other place in the text. */
    const char *json = "{\"name\": \"x\",, \"model\": {}}";
    expect_config_error(json, AMUSE_EFORMAT, "invalid JSON at byte ", NULL);
    long at = strtol(strstr(amuse_last_error(), "at byte ") + 8, NULL, 10);
    ASSERT_TRUE(at == 13 || at == 14);
    expect_config_error("[1, 2", AMUSE_EFORMAT, "invalid JSON at byte", NULL);
    expect_config_error("", AMUSE_EFORMAT, "invalid JSON", NULL);
    expect_config_error("[1, 2]", AMUSE_EFORMAT, "must be a JSON object", NULL);
}

TEST(config_wrong_type_names_key_and_layer)
{
    expect_config_error(config_with("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", "
                                    "\"filters\": \"32\", \"kernel_size\": 3}}",
                                    ok_compile, ""),
                        AMUSE_EFORMAT, "'filters'", "'conv'");
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", "
                                    "\"units\": 2.5}}",
                                    ok_compile, ""),
                        AMUSE_EFORMAT, "'units'", "'fc'");
    expect_config_error(config_with("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv\", "
                                    "\"filters\": 2, \"kernel_size\": 3, \"padding\": \"full\"}}",
                                    ok_compile, ""),
                        AMUSE_EFORMAT, "'padding'", "'conv'");
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"units\": 2}}",
                                    ok_compile, "\"labels\": \"a,b\", "),
                        AMUSE_EFORMAT, "'labels'", NULL);
}

TEST(config_unknown_names)
{
    expect_config_error(config_with("{\"class_name\": \"Conv3D\", \"config\": {\"filters\": 2}}",
                                    ok_compile, ""),
                        AMUSE_EUNSUPPORTED, "unknown layer class 'Conv3D'", "layer 1");
    /* The list of known classes comes from the registry. */
    expect_config_error(config_with("{\"class_name\": \"Conv3D\", \"config\": {\"filters\": 2}}",
                                    ok_compile, ""),
                        AMUSE_EUNSUPPORTED, "MaxPooling2D, Flatten, Dropout", "known: InputLayer");
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", "
                                    "\"units\": 2, \"activation\": \"swish_v9\"}}",
                                    ok_compile, ""),
                        AMUSE_EUNSUPPORTED, "swish_v9", "'fc'");
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"units\": 2}}",
                                    "{\"optimizer\": \"adamax9\", \"loss\": "
                                    "\"categorical_crossentropy\"}",
                                    ""),
                        AMUSE_EUNSUPPORTED, "unknown optimizer 'adamax9'", NULL);
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"units\": 2}}",
                                    "{\"optimizer\": \"sgd\", \"loss\": \"hinge9\"}", ""),
                        AMUSE_EUNSUPPORTED, "unknown loss 'hinge9'", NULL);
}

/* One Dense layer (in -> units) with the given kernel initializer, initialised from a seed. */
static struct amuse_model *dense_with_init(int in, int units, const char *init)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"Dense\", \"config\": {\"units\": %d, \"input_shape\": [%d], "
             "\"kernel_initializer\": %s, \"bias_initializer\": %s}}]}}}",
             units, in, init, init);
    struct amuse_model *m = model_from(json);
    ASSERT_OK(amuse_model_init_weights(m, 7));
    return m;
}

/* Orthogonal (Keras's config form with a gain): the shorter side is orthonormal times the gain;
 * RandomUniform stays inside [minval, maxval); RandomNormal has the asked mean and spread. */
TEST(initializers_follow_keras_configs)
{
    static const int shapes[][2] = {{16, 16}, {40, 8}, {8, 40}};
    for (int s = 0; s < 3; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        struct amuse_model *m = dense_with_init(
            rows, cols, "{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": 2.0}}");
        struct amuse_tensor k;
        ASSERT_OK(amuse_model_find_weight(m, "dense/kernel", &k, NULL));
        int tall = rows >= cols, n = tall ? cols : rows, len = tall ? rows : cols;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                double dot = 0;
                for (int i = 0; i < len; i++)
                    dot += tall ? (double)k.data[i * cols + a] * k.data[i * cols + b]
                                : (double)k.data[a * cols + i] * k.data[b * cols + i];
                ASSERT_NEAR(dot, a == b ? 4.0 : 0.0, 1e-4);
            }
        amuse_model_free(m);
    }
    struct amuse_model *m = dense_with_init(
        64, 64, "{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": 0.5, \"maxval\": 0.75}}");
    struct amuse_tensor k;
    ASSERT_OK(amuse_model_find_weight(m, "dense/kernel", &k, NULL));
    double sum = 0;
    for (int64_t i = 0; i < k.size; i++) {
        ASSERT_TRUE(k.data[i] >= 0.5f && k.data[i] < 0.75f);
        sum += k.data[i];
    }
    ASSERT_NEAR(sum / (double)k.size, 0.625, 0.01);
    amuse_model_free(m);
    m = dense_with_init(64, 64, "{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 1.0, "
                                "\"stddev\": 0.5}}");
    ASSERT_OK(amuse_model_find_weight(m, "dense/kernel", &k, NULL));
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < k.size; i++) {
        s1 += k.data[i];
        s2 += (double)k.data[i] * k.data[i];
    }
    double mean = s1 / (double)k.size;
    ASSERT_NEAR(mean, 1.0, 0.05);
    ASSERT_NEAR(sqrt(s2 / (double)k.size - mean * mean), 0.5, 0.05);
    amuse_model_free(m);
    /* Keras's defaults for the string forms: RandomUniform is [-0.05, 0.05). */
    m = dense_with_init(32, 32, "\"random_uniform\"");
    ASSERT_OK(amuse_model_find_weight(m, "dense/kernel", &k, NULL));
    for (int64_t i = 0; i < k.size; i++)
        ASSERT_TRUE(k.data[i] >= -0.05f && k.data[i] < 0.05f);
    amuse_model_free(m);
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\", "
                                    "\"units\": 2, \"kernel_initializer\": {\"class_name\": "
                                    "\"RandomUniform\", \"config\": {\"minval\": 1, \"maxval\": 0}}}}",
                                    ok_compile, ""),
                        AMUSE_EFORMAT, "minval is above maxval", "'fc'");
}

TEST(config_missing_and_impossible_values)
{
    expect_config_error(config_with("{\"class_name\": \"Dense\", \"config\": {\"name\": \"fc\"}}",
                                    ok_compile, ""),
                        AMUSE_EFORMAT, "missing key 'units'", "'fc'");
    expect_config_error(config_with("{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"big\", "
                                    "\"filters\": 2, \"kernel_size\": 7}}",
                                    ok_compile, ""),
                        AMUSE_ESHAPE, "kernel 7x7 is larger than the input 6x6", "'big'");
    /* Flatten of the (6, 6, 1) input has 36 outputs; three labels cannot name them. */
    expect_config_error(config_with("{\"class_name\": \"Flatten\", \"config\": {}}", ok_compile,
                                    "\"labels\": [\"a\", \"b\", \"c\"], "),
                        AMUSE_ESHAPE, "3 labels but the model has 36 outputs", NULL);
}

/* ---------------------------------------------------------------- weight-file errors */

/* A model with two weights, "d/kernel" (4, 3) = 48 bytes and "d/bias" (3) = 12 bytes. */
static const char *dense_json =
    "{\"name\": \"tiny\", \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4]}},"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": 3, "
    "\"activation\": \"softmax\"}}]}}}";

/* Write model.safetensors by hand: header length (given, or the real one if 0), header, data. */
static void write_safetensors(const char *dir, const char *header, uint64_t declared_len,
                              size_t data_len, size_t keep)
{
    size_t hlen = strlen(header), total = 8 + hlen + data_len;
    unsigned char *bytes = xcalloc(total, 1);
    uint64_t n = declared_len ? declared_len : hlen;
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(n >> (8 * i));
    memcpy(bytes + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++)
        bytes[8 + hlen + i] = (unsigned char)(i * 7);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_bytes(path, bytes, keep ? keep : total);
    free(bytes);
}

static const char *weights_dir(void)
{
    const char *dir = tmp_path("weights");
    struct amuse_model *m = model_from(dense_json);
    ASSERT_OK(amuse_model_save(m, dir)); /* a valid config.json to pair the files with */
    amuse_model_free(m);
    return dir;
}

static void expect_load_error(const char *dir, int status, const char *text1, const char *text2)
{
    struct amuse_model *m = (struct amuse_model *)1;
    ASSERT_FAILS(amuse_model_load(&m, dir), status, text1);
    ASSERT_TRUE(m == NULL);
    ASSERT_CONTAINS(amuse_last_error(), "model.safetensors");
    if (text2)
        ASSERT_CONTAINS(amuse_last_error(), text2);
}

#define KERNEL_OK "\"d/kernel\": {\"dtype\": \"F32\", \"shape\": [4, 3], \"data_offsets\": [0, 48]}"
#define BIAS_OK "\"d/bias\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [48, 60]}"

TEST(weights_valid_hand_written_file_loads)
{
    const char *dir = weights_dir();
    write_safetensors(dir, "{" KERNEL_OK ", " BIAS_OK "}", 0, 60, 0);
    struct amuse_model *m = NULL;
    ASSERT_OK(amuse_model_load(&m, dir));
    struct amuse_tensor bias;
    ASSERT_OK(amuse_model_find_weight(m, "d/bias", &bias, NULL));
    /* bytes 48..51 are 48*7, 49*7, 50*7, 51*7 (mod 256), little-endian */
    uint32_t bits = (uint32_t)((48 * 7) & 255) | (uint32_t)((49 * 7) & 255) << 8 |
                    (uint32_t)((50 * 7) & 255) << 16 | (uint32_t)((51 * 7) & 255) << 24;
    float want;
    memcpy(&want, &bits, sizeof want);
    ASSERT_TRUE(memcmp(&bias.data[0], &want, sizeof want) == 0);
    amuse_model_free(m);
}

TEST(weights_shape_mismatch_names_tensor_and_both_shapes)
{
    const char *dir = weights_dir();
    write_safetensors(
        dir,
        "{\"d/kernel\": {\"dtype\": \"F32\", \"shape\": [3, 4], \"data_offsets\": [0, 48]}, " BIAS_OK
        "}",
        0, 60, 0);
    expect_load_error(dir, AMUSE_ESHAPE, "'d/kernel'", "(3, 4)");
    ASSERT_CONTAINS(amuse_last_error(), "(4, 3)");
}

TEST(weights_missing_and_extra_tensors)
{
    const char *dir = weights_dir();
    write_safetensors(dir, "{" KERNEL_OK "}", 0, 48, 0);
    expect_load_error(dir, AMUSE_ENOTFOUND, "'d/bias'", "missing");
    write_safetensors(dir,
                      "{" KERNEL_OK ", " BIAS_OK ", \"d/extra\": {\"dtype\": \"F32\", \"shape\": "
                      "[1], \"data_offsets\": [60, 64]}}",
                      0, 64, 0);
    expect_load_error(dir, AMUSE_EFORMAT, "'d/extra'", "not a weight");
}

TEST(weights_truncated_file)
{
    const char *dir = weights_dir();
    const char *header = "{" KERNEL_OK ", " BIAS_OK "}";
    /* Cut inside the data, then inside the header, then inside the length field. */
    write_safetensors(dir, header, 0, 60, 8 + strlen(header) + 50);
    expect_load_error(dir, AMUSE_EFORMAT, "d/bias", NULL);
    write_safetensors(dir, header, 0, 60, 8 + 20);
    expect_load_error(dir, AMUSE_EFORMAT, "header length", NULL);
    write_safetensors(dir, header, 0, 60, 5);
    expect_load_error(dir, AMUSE_EFORMAT, "5 bytes", NULL);
}

TEST(weights_header_length_larger_than_file)
{
    const char *dir = weights_dir();
    write_safetensors(dir, "{" KERNEL_OK ", " BIAS_OK "}", 1000000, 60, 0);
    expect_load_error(dir, AMUSE_EFORMAT, "header length 1000000", "byte 0");
    /* Over the 100 MB cap: refused before anything is allocated for it. */
    write_safetensors(dir, "{" KERNEL_OK ", " BIAS_OK "}", (uint64_t)1 << 40, 60, 0);
    expect_load_error(dir, AMUSE_ETOOBIG, "header length", NULL);
}

TEST(weights_overlapping_offsets)
{
    const char *dir = weights_dir();
    write_safetensors(dir,
                      "{" KERNEL_OK ", \"d/bias\": {\"dtype\": \"F32\", \"shape\": [3], "
                      "\"data_offsets\": [40, 52]}}",
                      0, 52, 0);
    expect_load_error(dir, AMUSE_EFORMAT, "overlap", "d/");
}

TEST(weights_unknown_dtype)
{
    const char *dir = weights_dir();
    write_safetensors(dir,
                      "{\"d/kernel\": {\"dtype\": \"F33\", \"shape\": [4, 3], \"data_offsets\": "
                      "[0, 48]}, " BIAS_OK "}",
                      0, 60, 0);
    expect_load_error(dir, AMUSE_EUNSUPPORTED, "'F33'", "d/kernel");
}

/* ---------------------------------------------------------------- fit semantics */

/* Four features, `classes` classes; labels[i] = fn of the sample. */

static const char *mlp_json(const char *optimizer)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"name\": \"mlp\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4]}},"
             "{\"class_name\": \"Dense\", \"config\": {\"units\": 8, \"activation\": \"tanh\"}},"
             "{\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.2}},"
             "{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\": \"softmax\"}}"
             "]}}, \"compile\": {\"optimizer\": %s, \"loss\": "
             "\"sparse_categorical_crossentropy\", \"metrics\": [\"accuracy\"]}}",
             optimizer);
    return buf;
}

static struct amuse_fit_options quiet_options(int epochs, int batch, double split, uint64_t seed)
{
    struct amuse_fit_options o;
    memset(&o, 0, sizeof o);
    o.batch_size = batch;
    o.epochs = epochs;
    o.validation_split = split;
    o.shuffle = 1;
    o.seed = seed;
    o.verbose = 0;
    o.monitor = "val_loss";
    o.patience = -1;
    return o;
}

TEST(fit_validation_split_holds_out_the_tail)
{
    static const struct {
        int64_t n;
        double split;
        int64_t train;
    } cases[] = {{50, 0.2, 40}, {53, 0.3, 37}, {10, 0.25, 7}};
    for (int c = 0; c < 3; c++) {
        struct amuse_dataset d, tail;
        make_dataset(&d, cases[c].n, 3, 21);
        struct amuse_model *m = model_from(mlp_json("\"adam\""));
        ASSERT_OK(amuse_model_init_weights(m, 1));
        struct amuse_fit_options o = quiet_options(2, 4, cases[c].split, 5);
        struct amuse_epoch_log h[2];
        int ran = 0;
        ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
        ASSERT_EQ_INT(ran, 2);
        ASSERT_EQ_INT(h[0].train_samples, cases[c].train);
        ASSERT_EQ_INT(h[1].train_samples, cases[c].train);
        ASSERT_EQ_INT(h[1].epoch, 2);
        /* The last epoch's validation figures are exactly evaluate() on the tail slice. */
        ASSERT_OK(amuse_dataset_slice(&tail, &d, cases[c].train, d.n));
        struct amuse_eval_result r;
        ASSERT_OK(amuse_model_evaluate(m, &tail, 4, &r));
        ASSERT_TRUE(r.loss == h[1].val_loss);
        ASSERT_TRUE(r.accuracy == h[1].val_accuracy);
        ASSERT_EQ_INT(r.samples, d.n - cases[c].train);
        amuse_eval_result_release(&r);
        amuse_dataset_release(&tail);
        amuse_dataset_release(&d);
        amuse_model_free(m);
    }
}

/* The tail's labels never appear in the head: if any tail sample leaked into training (shuffle
 * before the split), the training accuracy could count class 2; validation accuracy is exactly 0
 * because the model, trained only on classes 0 and 1, never predicts class 2 above them. */
TEST(fit_validation_tail_is_never_trained_on)
{
    struct amuse_dataset d;
    make_dataset(&d, 100, 3, 8);
    for (int64_t i = 0; i < 100; i++)
        d.target.i32[i] = i < 80 ? (int32_t)(i % 2) : 2;
    struct amuse_model *m = model_from(mlp_json("{\"class_name\": \"Adam\", \"config\": "
                                                "{\"learning_rate\": 0.05}}"));
    ASSERT_OK(amuse_model_init_weights(m, 2));
    struct amuse_fit_options o = quiet_options(5, 8, 0.2, 3);
    struct amuse_epoch_log h[5];
    int ran;
    ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
    ASSERT_EQ_INT(ran, 5);
    ASSERT_NEAR(h[4].val_accuracy, 0.0, 0);
    /* Class 2's probability only ever fell, so the validation loss rose every epoch. */
    for (int e = 1; e < 5; e++)
        ASSERT_TRUE(h[e].val_loss > h[e - 1].val_loss);
    amuse_dataset_release(&d);
    amuse_model_free(m);
}

TEST(fit_is_reproducible_and_reshuffles_every_epoch)
{
    amuse_set_threads(1);
    struct amuse_dataset d;
    make_dataset(&d, 60, 3, 4);
    const char *sgd = "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": 0.1}}";
    struct amuse_model *a = model_from(mlp_json(sgd)), *b = model_from(mlp_json(sgd));
    struct amuse_model *c = model_from(mlp_json(sgd)), *e = model_from(mlp_json(sgd));
    int64_t n = amuse_model_param_count(a);
    float *wa = xcalloc((size_t)n, sizeof(float)), *wb = xcalloc((size_t)n, sizeof(float));
    float *wc = xcalloc((size_t)n, sizeof(float)), *we = xcalloc((size_t)n, sizeof(float));
    struct amuse_epoch_log h[2];
    int ran;
    struct amuse_fit_options two = quiet_options(2, 5, 0.0, 77);
    struct amuse_fit_options one = quiet_options(1, 5, 0.0, 77);
    struct amuse_fit_options other = quiet_options(2, 5, 0.0, 78);
    ASSERT_OK(amuse_model_init_weights(a, 9));
    ASSERT_OK(amuse_model_init_weights(b, 9));
    ASSERT_OK(amuse_model_init_weights(c, 9));
    ASSERT_OK(amuse_model_init_weights(e, 9));
    /* Same seed, one thread: bit-identical weights. */
    ASSERT_OK(amuse_model_fit(a, &d, &two, h, &ran));
    ASSERT_OK(amuse_model_fit(b, &d, &two, h, &ran));
    weights_copy(a, wa);
    weights_copy(b, wb);
    ASSERT_TRUE(memcmp(wa, wb, (size_t)n * sizeof(float)) == 0);
    /* Two one-epoch fits with the same seed repeat the first epoch's order (plain SGD keeps no
     * state), so if every epoch used one order they would match the two-epoch fit. */
    ASSERT_OK(amuse_model_fit(c, &d, &one, h, &ran));
    ASSERT_OK(amuse_model_fit(c, &d, &one, h, &ran));
    weights_copy(c, wc);
    ASSERT_TRUE(memcmp(wa, wc, (size_t)n * sizeof(float)) != 0);
    /* Another seed, another order. */
    ASSERT_OK(amuse_model_fit(e, &d, &other, h, &ran));
    weights_copy(e, we);
    ASSERT_TRUE(memcmp(wa, we, (size_t)n * sizeof(float)) != 0);
    amuse_set_threads(0);
    free(wa);
    free(wb);
    free(wc);
    free(we);
    amuse_model_free(a);
    amuse_model_free(b);
    amuse_model_free(c);
    amuse_model_free(e);
    amuse_dataset_release(&d);
}

/* Training samples say class 0, the validation tail says class 1 for the same kind of input, so
 * val_loss is best after epoch 1 and rises after. Keras's EarlyStopping(patience=2) stops after
 * two epochs without improvement (epoch 3); restore_best_weights puts back epoch 1's weights,
 * which is also the only checkpoint written. */
TEST(fit_early_stopping_restores_the_best_epoch)
{
    struct amuse_dataset d;
    make_dataset(&d, 50, 2, 6);
    for (int64_t i = 0; i < 50; i++)
        d.target.i32[i] = i < 40 ? 0 : 1;
    const char *json =
        "{\"name\": \"es\", \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4]}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 2, \"activation\": \"softmax\"}}]}},"
        "\"compile\": {\"optimizer\": {\"class_name\": \"SGD\", \"config\": {\"learning_rate\": "
        "0.5}}, \"loss\": \"sparse_categorical_crossentropy\", \"metrics\": [\"accuracy\"]},"
        "\"fit\": {\"batch_size\": 10, \"epochs\": 10, \"validation_split\": 0.2, \"seed\": 4,"
        "\"callbacks\": [{\"class_name\": \"EarlyStopping\", \"config\": {\"monitor\": "
        "\"val_loss\", \"patience\": 2, \"restore_best_weights\": true}},"
        "{\"class_name\": \"ModelCheckpoint\", \"config\": {\"monitor\": \"val_loss\", "
        "\"save_best_only\": true}}]}}";
    struct amuse_model *m = model_from(json);
    ASSERT_OK(amuse_model_init_weights(m, 1));
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    ASSERT_EQ_INT(o.patience, 2);
    ASSERT_TRUE(o.restore_best_weights);
    ASSERT_TRUE(o.checkpoint);
    ASSERT_EQ_INT(o.epochs, 10);
    ASSERT_EQ_INT(o.batch_size, 10);
    ASSERT_NEAR(o.validation_split, 0.2, 0);
    o.verbose = 0;
    const char *ckpt = tmp_path("checkpoint");
    o.checkpoint_dir = ckpt;
    struct amuse_epoch_log h[10];
    int ran = 0;
    ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
    for (int e = 1; e < ran; e++)
        ASSERT_TRUE(h[e].val_loss > h[e - 1].val_loss);
    ASSERT_EQ_INT(ran, 3);
    for (int e = 0; e < ran; e++)
        ASSERT_EQ_INT(h[e].train_samples, 40);

    struct amuse_model *best = NULL;
    ASSERT_OK(amuse_model_load(&best, ckpt));
    expect_no_temp_files(ckpt);
    int64_t n = amuse_model_param_count(m);
    float *w = xcalloc((size_t)n, sizeof(float)), *wb = xcalloc((size_t)n, sizeof(float));
    weights_copy(m, w);
    weights_copy(best, wb);
    ASSERT_TRUE(memcmp(w, wb, (size_t)n * sizeof(float)) == 0);
    /* And the restored weights really are epoch 1's: their val_loss is history[0]'s. */
    struct amuse_dataset tail;
    ASSERT_OK(amuse_dataset_slice(&tail, &d, 40, 50));
    struct amuse_eval_result r;
    ASSERT_OK(amuse_model_evaluate(m, &tail, 10, &r));
    ASSERT_TRUE(r.loss == h[0].val_loss);
    amuse_eval_result_release(&r);
    amuse_dataset_release(&tail);
    free(w);
    free(wb);
    amuse_model_free(best);
    amuse_model_free(m);
    amuse_dataset_release(&d);
}

TEST(fit_rejects_bad_data)
{
    struct amuse_dataset d;
    make_dataset(&d, 10, 3, 1);
    struct amuse_model *m = model_from(mlp_json("\"adam\""));
    ASSERT_OK(amuse_model_init_weights(m, 1));
    struct amuse_fit_options o = quiet_options(1, 4, 0.0, 1);
    struct amuse_epoch_log h[1];
    int ran;
    d.target.i32[7] = 3;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_EINVAL, "sample 7 has label 3");
    d.target.i32[7] = 0;
    d.input[0].shape.dim[0] = 5;
    d.n = 8;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_ESHAPE, "samples are (5,)");
    d.input[0].shape.dim[0] = 4;
    d.n = 10;
    o.validation_split = 0.95;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_EINVAL, "validation_split");
    amuse_dataset_release(&d);
    amuse_model_free(m);
}

/* ---------------------------------------------------------------- losses by value */

static float loss_of(const char *activation, const char *loss, float bias0, const float *targets,
                     const int32_t *labels, int units)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 2]}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"d\", \"units\": %d, "
             "\"activation\": \"%s\"}}]}}, \"compile\": {\"optimizer\": \"sgd\", \"loss\": \"%s\"}}",
             units, activation, loss);
    struct amuse_model *m = model_from(json);
    struct amuse_tensor b;
    ASSERT_OK(amuse_model_find_weight(m, "d/bias", &b, NULL));
    b.data[0] = bias0; /* kernel is zero: the output depends on the bias only */
    float x[2] = {0.3f, -0.7f}, l;
    const float *out;
    ASSERT_OK(amuse_model_forward(m, x, 1, 0, &out));
    ASSERT_OK(amuse_model_loss(m, targets, labels, &l));
    amuse_model_free(m);
    return l;
}

TEST(loss_values_match_keras_formulas)
{
    float ln9 = logf(9.0f);
    /* sigmoid(ln 9) = 0.9 */
    float t1[1] = {1.0f}, t0[1] = {0.0f};
    ASSERT_NEAR(loss_of("sigmoid", "binary_crossentropy", ln9, t1, NULL, 1), -log(0.9), 1e-6);
    ASSERT_NEAR(loss_of("sigmoid", "binary_crossentropy", ln9, t0, NULL, 1), -log(0.1), 1e-5);
    ASSERT_NEAR(loss_of("sigmoid", "mean_squared_error", ln9, t0, NULL, 1), 0.81, 1e-6);
    /* softmax over 2 units with biases (ln 9, 0): p = (0.9, 0.1) */
    int32_t label1[1] = {1};
    float onehot1[2] = {0.0f, 1.0f};
    ASSERT_NEAR(loss_of("softmax", "sparse_categorical_crossentropy", ln9, NULL, label1, 2),
                -log(0.1), 1e-5);
    ASSERT_NEAR(loss_of("softmax", "categorical_crossentropy", ln9, onehot1, NULL, 2), -log(0.1),
                1e-5);
    /* Keras clips at 1e-7: p = sigmoid(-40) ~ 4e-18 gives -log(1e-7), not 40. */
    ASSERT_NEAR(loss_of("sigmoid", "binary_crossentropy", -40.0f, t1, NULL, 1), -log(1e-7), 1e-3);
}

/* A (T, V) output with (T) integer targets: the loss runs over B*T rows of the last axis, and
 * weighted rows count by their weight (0 = ignored), as a hand computation of -log p says. */
TEST(loss_runs_over_time_steps_with_weights)
{
    struct amuse_model *m = model_from(
        "{\"name\": \"seq\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
        "{\"layers\": [{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [3, 4]}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 5, \"activation\": \"softmax\"}}]}},"
        "\"compile\": {\"optimizer\": \"sgd\", \"loss\": \"sparse_categorical_crossentropy\"}}");
    ASSERT_OK(amuse_model_init_weights(m, 3));
    ASSERT_EQ_INT(amuse_model_output_rows(m), 3);
    float x[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    int32_t labels[6] = {0, 4, 2, 1, 3, 3};
    float weights[6] = {1, 0, 2, 1, 0, 1};
    const float *p;
    float loss, wloss;
    ASSERT_OK(amuse_model_forward(m, x, 2, 0, &p));
    ASSERT_OK(amuse_model_loss(m, NULL, labels, &loss));
    double want = 0, wsum = 0, wwant = 0;
    for (int r = 0; r < 6; r++) {
        want -= log(p[r * 5 + labels[r]]) / 6.0;
        wwant -= weights[r] * log(p[r * 5 + labels[r]]);
        wsum += weights[r];
    }
    ASSERT_NEAR(loss, want, 1e-5);
    ASSERT_OK(amuse_model_loss_weighted(m, NULL, labels, weights, &wloss));
    ASSERT_NEAR(wloss, wwant / wsum, 1e-5);
    /* Labels outside [0, V) name the row. */
    labels[4] = 5;
    ASSERT_FAILS(amuse_model_loss(m, NULL, labels, &loss), AMUSE_EINVAL, "row 4");
    amuse_model_free(m);
}

/* binary_crossentropy with integer labels: label 1 means target 1 for a one-unit sigmoid. */
TEST(binary_crossentropy_with_labels)
{
    float ln9 = logf(9.0f);
    int32_t one[1] = {1}, zero[1] = {0};
    ASSERT_NEAR(loss_of("sigmoid", "binary_crossentropy", ln9, NULL, one, 1), -log(0.9), 1e-6);
    ASSERT_NEAR(loss_of("sigmoid", "binary_crossentropy", ln9, NULL, zero, 1), -log(0.1), 1e-5);
}

/* A one-unit sigmoid trained with binary_crossentropy on 0/1 labels: fit accepts label 1, and
 * evaluate reports two classes. The labels follow the sign of the first feature, so a working
 * fit must learn it. */
TEST(binary_crossentropy_fit_with_one_output)
{
    struct amuse_dataset d;
    make_dataset(&d, 400, 2, 5);
    for (int64_t i = 0; i < d.n; i++)
        d.target.i32[i] = d.input[0].f32[i * 4] > 0.0f;
    struct amuse_model *m = model_from(
        "{\"name\": \"bce\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
        "{\"layers\": [{\"class_name\": \"InputLayer\", \"config\": {\"shape\": [4]}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 1, \"activation\": \"sigmoid\"}}]}},"
        "\"compile\": {\"optimizer\": {\"class_name\": \"Adam\", \"config\": "
        "{\"learning_rate\": 0.05}}, \"loss\": \"binary_crossentropy\", \"metrics\": [\"accuracy\"]}}");
    ASSERT_OK(amuse_model_init_weights(m, 3));
    struct amuse_fit_options o = quiet_options(20, 32, 0.25, 1);
    struct amuse_epoch_log h[20];
    int ran;
    ASSERT_OK(amuse_model_fit(m, &d, &o, h, &ran));
    ASSERT_EQ_INT(ran, 20);
    ASSERT_TRUE(h[19].val_accuracy > 0.9);
    struct amuse_eval_result r;
    ASSERT_OK(amuse_model_evaluate(m, &d, 64, &r));
    ASSERT_EQ_INT(r.n_classes, 2);
    ASSERT_EQ_INT(r.class_count[0] + r.class_count[1], d.n);
    ASSERT_TRUE(r.accuracy > 0.9);
    amuse_eval_result_release(&r);
    amuse_model_free(m);
    amuse_dataset_release(&d);
}

/* A Functional model with two inputs (the shape the seq2seq encoder-decoder needs): inputs are
 * fed in input_layers order, joined by Concatenate, and the output matches a hand computation. */
TEST(functional_model_with_two_inputs)
{
    struct amuse_model *m = model_from(
        "{\"name\": \"two\", \"model\": {\"class_name\": \"Functional\", \"config\": {"
        "\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"name\": \"a\", \"config\": {\"name\": \"a\", "
        "\"batch_input_shape\": [null, 3]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"InputLayer\", \"name\": \"b\", \"config\": {\"name\": \"b\", "
        "\"batch_input_shape\": [null, 2]}, \"inbound_nodes\": []},"
        "{\"class_name\": \"Concatenate\", \"config\": {\"name\": \"cat\"}, "
        "\"inbound_nodes\": [[[\"b\", 0, 0, {}], [\"a\", 0, 0, {}]]]},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": 1}, "
        "\"inbound_nodes\": [[[\"cat\", 0, 0, {}]]]}],"
        "\"input_layers\": [[\"b\", 0, 0], [\"a\", 0, 0]],"
        "\"output_layers\": [[\"out\", 0, 0]]}}}");
    ASSERT_EQ_INT(amuse_model_input_count(m), 2);
    ASSERT_EQ_INT(amuse_model_input_shape_at(m, 0)->dim[0], 2); /* b comes first */
    ASSERT_EQ_INT(amuse_model_input_shape_at(m, 1)->dim[0], 3);
    ASSERT_TRUE(amuse_model_input_shape_at(m, 2) == NULL);
    struct amuse_tensor k;
    ASSERT_OK(amuse_model_find_weight(m, "out/kernel", &k, NULL));
    for (int i = 0; i < 5; i++)
        k.data[i] = (float)(i + 1); /* concat order is [b0, b1, a0, a1, a2] */
    float a[3] = {1, 10, 100}, b[2] = {1000, 10000};
    const float *xs[2] = {b, a}, *out;
    ASSERT_OK(amuse_model_forward_inputs(m, xs, 2, 1, 0, &out));
    ASSERT_NEAR(out[0], 1000 * 1 + 10000 * 2 + 1 * 3 + 10 * 4 + 100 * 5, 1e-2);
    ASSERT_FAILS(amuse_model_forward(m, a, 1, 0, &out), AMUSE_EINVAL, "takes 2 inputs");
    struct amuse_dataset d;
    make_dataset(&d, 8, 2, 1);
    struct amuse_fit_options o = quiet_options(1, 4, 0, 1);
    struct amuse_epoch_log h[1];
    int ran;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_EINVAL,
                 "takes 2 inputs; the data has 1");
    amuse_dataset_release(&d);

    /* fit takes several named inputs, given here in the other order, with float targets. */
    struct amuse_dataset two;
    memset(&two, 0, sizeof two);
    int64_t n = 64, d3 = 3, d2 = 2, d1 = 1;
    struct amuse_shape s3, s2, s1;
    amuse_shape_make(&s3, 1, &d3);
    amuse_shape_make(&s2, 1, &d2);
    amuse_shape_make(&s1, 1, &d1);
    two.n = n;
    two.n_inputs = 2;
    ASSERT_OK(amuse_array_alloc(&two.input[0], "a", AMUSE_FLOAT32, &s3, n));
    ASSERT_OK(amuse_array_alloc(&two.input[1], "b", AMUSE_FLOAT32, &s2, n));
    ASSERT_OK(amuse_array_alloc(&two.target, NULL, AMUSE_FLOAT32, &s1, n));
    struct amuse_rng rng;
    amuse_rng_seed(&rng, 5);
    for (int64_t i = 0; i < n; i++) {
        float t = 0;
        for (int j = 0; j < 3; j++)
            t += (two.input[0].f32[i * 3 + j] = amuse_rng_uniform(&rng) - 0.5f) * (float)(j + 1);
        for (int j = 0; j < 2; j++)
            t -= (two.input[1].f32[i * 2 + j] = amuse_rng_uniform(&rng) - 0.5f) * 2.0f;
        two.target.f32[i] = t;
    }
    ASSERT_OK(amuse_model_compile(m, "{\"optimizer\": {\"class_name\": \"SGD\", \"config\": "
                                     "{\"learning_rate\": 0.1}}, \"loss\": \"mse\"}"));
    ASSERT_OK(amuse_model_init_weights(m, 2));
    struct amuse_fit_options o2 = quiet_options(30, 8, 0.25, 1);
    struct amuse_epoch_log h2[30];
    ASSERT_OK(amuse_model_fit(m, &two, &o2, h2, &ran));
    ASSERT_EQ_INT(ran, 30);
    ASSERT_TRUE(h2[29].loss < 0.1 * h2[0].loss);
    ASSERT_TRUE(h2[29].val_loss < 0.05);
    /* predict_batch with the same named arrays gives what forward_inputs gives. */
    struct amuse_batch all;
    memset(&all, 0, sizeof all);
    all.n = n;
    all.n_inputs = 2;
    all.input[0] = two.input[0];
    all.input[1] = two.input[1];
    float *pred = xcalloc((size_t)n, sizeof(float));
    ASSERT_OK(amuse_model_predict_batch(m, &all, 5, pred));
    const float *xs2[2] = {two.input[1].f32 + 7 * 2, two.input[0].f32 + 7 * 3};
    ASSERT_OK(amuse_model_forward_inputs(m, xs2, 2, 1, 0, &out));
    ASSERT_NEAR(pred[7], out[0], 1e-6);
    snprintf(all.input[1].name, sizeof all.input[1].name, "c");
    ASSERT_FAILS(amuse_model_predict_batch(m, &all, 5, pred), AMUSE_ENOTFOUND, "no input named 'c'");
    free(pred);
    amuse_dataset_release(&two);
    amuse_model_free(m);
}

/* ---------------------------------------------------------------- training curves */

TEST(history_svg_is_well_formed)
{
    struct amuse_epoch_log h[3] = {
        {1, 1.2, 0.5, 1.1, 0.55, 1, 0.1, 40, 0.001},
        {2, 0.8, 0.7, 0.9, 0.65, 1, 0.1, 40, 0.001},
        {3, 0.6, 0.8, NAN, NAN, 1, 0.1, 40, 0.001},
    };
    const char *path = tmp_path("training.svg");
    ASSERT_OK(amuse_history_write_svg(path, h, 3));
    size_t len;
    char *text = read_text(path, &len);
    ASSERT_TRUE(strncmp(text, "<svg", 4) == 0);
    ASSERT_CONTAINS(text, "polyline");
    ASSERT_TRUE(len > 7 && strcmp(text + len - 7, "</svg>\n") == 0);
    ASSERT_TRUE(strstr(text, "nan") == NULL && strstr(text, "NaN") == NULL);
    ASSERT_TRUE(strlen(text) == len); /* no NUL bytes */
    free(text);
    /* One epoch (a single point) and an unwritable path. */
    ASSERT_OK(amuse_history_write_svg(path, h, 1));
    text = read_text(path, &len);
    ASSERT_TRUE(strncmp(text, "<svg", 4) == 0 && strcmp(text + len - 7, "</svg>\n") == 0);
    free(text);
    ASSERT_FAILS(amuse_history_write_svg(tmp_path("no/such/dir/x.svg"), h, 3), AMUSE_EIO,
                 "no/such/dir");
    expect_no_temp_files(tmp_root);
}

int main(void)
{
    char pattern[] = "/tmp/amuse-test-model-XXXXXX";
    if (!mkdtemp(pattern)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(tmp_root, sizeof tmp_root, "%s", pattern);
    RUN(save_then_load_gives_identical_predictions);
    RUN(config_invalid_json_names_the_byte_offset);
    RUN(config_wrong_type_names_key_and_layer);
    RUN(config_unknown_names);
    RUN(config_missing_and_impossible_values);
    RUN(initializers_follow_keras_configs);
    RUN(weights_valid_hand_written_file_loads);
    RUN(weights_shape_mismatch_names_tensor_and_both_shapes);
    RUN(weights_missing_and_extra_tensors);
    RUN(weights_truncated_file);
    RUN(weights_header_length_larger_than_file);
    RUN(weights_overlapping_offsets);
    RUN(weights_unknown_dtype);
    RUN(fit_validation_split_holds_out_the_tail);
    RUN(fit_validation_tail_is_never_trained_on);
    RUN(fit_is_reproducible_and_reshuffles_every_epoch);
    RUN(fit_early_stopping_restores_the_best_epoch);
    RUN(fit_rejects_bad_data);
    RUN(loss_values_match_keras_formulas);
    RUN(loss_runs_over_time_steps_with_weights);
    RUN(binary_crossentropy_with_labels);
    RUN(binary_crossentropy_fit_with_one_output);
    RUN(functional_model_with_two_inputs);
    RUN(history_svg_is_well_formed);
    remove_tree(tmp_root);
    return test_summary();
}
