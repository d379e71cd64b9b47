/* test_textdata.c - text datasets (amuse/textdata.h): language-model windows and their shifted
 * targets, seq2seq pairs with <s>, </s>, padding and weights, a text recipe that sizes its model
 * from the data, and malformed corpora reported with file and byte offset. */
#include "amuse/charvocab.h"
#include "amuse/model.h"
#include "amuse/textdata.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *write_file(const char *name, const char *data, size_t len)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/textdata-%s", AMUSE_BINARY_DIR, name);
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ_INT(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

static struct amuse_charvocab *vocab_of(const char *text)
{
    struct amuse_charvocab *v = NULL;
    size_t len = strlen(text);
    ASSERT_OK(amuse_charvocab_build(&v, &text, &len, 1, 1, 0, "test"));
    return v;
}

TEST(lm_windows_and_shifted_targets)
{
    const char *text = "白日依山尽，黄河入海流。\n";
    struct amuse_charvocab *v = vocab_of(text);
    struct amuse_text_layout ids = {{0, 0}, 1}, hot = {{1, 0}, 0};
    struct amuse_dataset d;
    ASSERT_OK(amuse_text_lm_dataset(&d, v, text, strlen(text), "poem", 4, 2, &ids));
    /* 13 characters: windows start at 0, 2, 4, 6, 8 (start + 4 + 1 <= 13) */
    ASSERT_EQ_INT(d.n, 5);
    int32_t all[16];
    size_t n;
    ASSERT_OK(amuse_charvocab_encode(v, text, strlen(text), AMUSE_UNKNOWN_FAIL, all, 16, &n, NULL));
    ASSERT_EQ_INT(n, 13);
    for (int i = 0; i < 5; i++)
        for (int t = 0; t < 4; t++) {
            ASSERT_EQ_INT(d.input[0].i32[i * 4 + t], all[2 * i + t]);
            ASSERT_EQ_INT(d.target.i32[i * 4 + t], all[2 * i + t + 1]);
        }
    amuse_dataset_release(&d);
    ASSERT_OK(amuse_text_lm_dataset(&d, v, text, strlen(text), "poem", 4, 4, &hot));
    int V = amuse_charvocab_size(v);
    ASSERT_EQ_INT(d.input[0].shape.dim[1], V);
    ASSERT_TRUE(d.input[0].f32[1 * V + all[1]] == 1.0f);
    ASSERT_TRUE(d.target.f32[1 * V + all[2]] == 1.0f);
    amuse_dataset_release(&d);
    ASSERT_FAILS(amuse_text_lm_dataset(&d, v, text, strlen(text), "poem", 13, 1, &ids),
                 AMUSE_EINVAL, "too short");
    ASSERT_FAILS(amuse_text_lm_dataset(&d, v, "ab\xc3", 3, "bad.txt", 1, 1, &ids), AMUSE_EFORMAT,
                 "byte 2");
    amuse_charvocab_free(v);
}

TEST(pairs_teacher_forcing_with_masked_padding)
{
    const char *text = "ab\tcd\n\nabc\tx\r\nlonger source\ty\n";
    struct amuse_charvocab *v = vocab_of(text);
    struct amuse_text_layout ids = {{0, 0}, 1};
    int smax, tmax;
    ASSERT_OK(amuse_text_pairs_lengths(text, strlen(text), "p.tsv", &smax, &tmax));
    ASSERT_EQ_INT(smax, 13);
    ASSERT_EQ_INT(tmax, 2);
    struct amuse_dataset d;
    int64_t skipped;
    ASSERT_OK(amuse_text_pairs_dataset(&d, v, text, strlen(text), "p.tsv", 3, 4, 0, &ids,
                                       &skipped));
    ASSERT_EQ_INT(d.n, 2);
    ASSERT_EQ_INT(skipped, 1);
    int32_t a = amuse_charvocab_id(v, 'a'), b = amuse_charvocab_id(v, 'b'),
            c = amuse_charvocab_id(v, 'c'), dd = amuse_charvocab_id(v, 'd');
    int32_t want_src[3] = {a, b, AMUSE_CHAR_PAD};
    int32_t want_in[4] = {AMUSE_CHAR_BOS, c, dd, AMUSE_CHAR_PAD};
    int32_t want_out[4] = {c, dd, AMUSE_CHAR_EOS, AMUSE_CHAR_PAD};
    float want_w[4] = {1, 1, 1, 0};
    for (int t = 0; t < 3; t++)
        ASSERT_EQ_INT(d.input[0].i32[t], want_src[t]);
    for (int t = 0; t < 4; t++) {
        ASSERT_EQ_INT(d.input[1].i32[t], want_in[t]);
        ASSERT_EQ_INT(d.target.i32[t], want_out[t]);
        ASSERT_NEAR(d.weight[t], want_w[t], 0);
    }
    ASSERT_EQ_INT(d.target.i32[4 + 1], AMUSE_CHAR_EOS); /* "x" + </s>: the CR is not text */
    amuse_dataset_release(&d);
    const char *no_tab = "ab\tcd\nno tab here\n";
    ASSERT_FAILS(amuse_text_pairs_dataset(&d, v, no_tab, strlen(no_tab), "p.tsv", 3, 4, 0, &ids,
                                          NULL),
                 AMUSE_EFORMAT, "p.tsv: line 2 (byte 6): expected one TAB");
    const char *two = "a\tb\tc\n";
    ASSERT_FAILS(amuse_text_pairs_lengths(two, strlen(two), "q.tsv", &smax, &tmax), AMUSE_EFORMAT,
                 "found more");
    amuse_charvocab_free(v);
}

TEST(malformed_files_name_file_and_byte)
{
    char *text;
    size_t len;
    const char *p = write_file("bad.txt", "fine line\nthen \xe4\xb8 broken", 22);
    ASSERT_FAILS(amuse_text_read(p, &text, &len), AMUSE_EFORMAT, "bad.txt: byte 15: invalid");
    ASSERT_TRUE(text == NULL);
    p = write_file("nul.txt", "abc\0def", 7);
    ASSERT_FAILS(amuse_text_read(p, &text, &len), AMUSE_EFORMAT, "nul.txt: byte 3: NUL");
    ASSERT_FAILS(amuse_text_read(AMUSE_BINARY_DIR "/no-such-corpus.txt", &text, &len),
                 AMUSE_ENOTFOUND, "no-such-corpus");
}

/* A text recipe: the vocabulary and data set the input length, Embedding input_dim and output
 * units, whatever the recipe said; the vocabulary is in the config. */
TEST(text_recipe_sizes_the_model)
{
    const char *corpus = write_file("corpus.txt", "hello world\nhello there\n", 24);
    char recipe[2048];
    snprintf(recipe, sizeof recipe,
             "{\"name\": \"t\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": [{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": "
             "[null, 99], \"dtype\": \"int32\"}}, {\"class_name\": \"Embedding\", \"config\": "
             "{\"input_dim\": 7, \"output_dim\": 3}}, {\"class_name\": \"LSTM\", \"config\": "
             "{\"units\": 4, \"return_sequences\": true}}, {\"class_name\": \"Dense\", "
             "\"config\": {\"units\": 2, \"activation\": \"softmax\"}}]}}, "
             "\"data\": {\"text\": \"%s\", \"task\": \"lm\", \"seq_length\": 5}, "
             "\"compile\": {\"optimizer\": \"adam\", \"loss\": "
             "\"sparse_categorical_crossentropy\"}}",
             corpus);
    const char *rp = write_file("recipe.json", recipe, strlen(recipe));
    struct amuse_model *m;
    struct amuse_dataset d;
    ASSERT_OK(amuse_text_recipe_load(&m, &d, rp, 0));
    /* h e l o space w r d \n t: 10 characters + 4 reserved */
    ASSERT_EQ_INT(amuse_model_input_shape(m)->dim[0], 5);
    ASSERT_EQ_INT(amuse_model_output_shape(m)->dim[1], 14);
    ASSERT_EQ_INT(d.n, (24 - 1 - 5) / 5 + 1);
    ASSERT_CONTAINS(amuse_model_config_json(m), "\"vocabulary\"");
    amuse_model_free(m);
    amuse_dataset_release(&d);
    snprintf(recipe, sizeof recipe,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": []}}, "
             "\"data\": {\"text\": \"%s\", \"task\": \"poetry\"}}",
             corpus);
    rp = write_file("recipe2.json", recipe, strlen(recipe));
    ASSERT_FAILS(amuse_text_recipe_load(&m, &d, rp, 0), AMUSE_EFORMAT, "data.task");
    ASSERT_TRUE(m == NULL);
}

int main(void)
{
    RUN(lm_windows_and_shifted_targets);
    RUN(pairs_teacher_forcing_with_masked_padding);
    RUN(malformed_files_name_file_and_byte);
    RUN(text_recipe_sizes_the_model);
    return test_summary();
}
