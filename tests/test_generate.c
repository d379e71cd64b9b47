/* test_generate.c - generators (amuse/generate.h) on tiny models trained here: the derived
 * one-step stateful graph gives the full-sequence graph's probabilities, the seq2seq encoder and
 * one-step decoder give the full graph's, a fixed seed reproduces the text alone or batched with
 * other streams, stop strings and max_tokens end streams, and bad requests are refused. Prompts
 * are read together by the next step: a long one a chunk per step while running streams go on,
 * and the text does not depend on the prompts read alongside or on the thread count. */
#include "amuse/charvocab.h"
#include "amuse/generate.h"
#include "amuse/model.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TEXT[] = "the cat sat on the mat. the dog sat on the log.\n";
enum { T = 8 };

static struct amuse_charvocab *vocab_of(const char *text)
{
    struct amuse_charvocab *v = NULL;
    size_t len = strlen(text);
    if (amuse_charvocab_build(&v, &text, &len, 1, 1, 0, "test"))
        TEST_FAIL("vocab: %s", amuse_last_error());
    return v;
}

/* Build from a JSON config with the vocabulary attached. */
static struct amuse_model *model_with_vocab(const char *json, const struct amuse_charvocab *v)
{
    struct amuse_model *m = NULL;
    if (amuse_model_from_json(&m, json, strlen(json), "test"))
        TEST_FAIL("model: %s", amuse_last_error());
    char *vj = NULL;
    ASSERT_OK(amuse_charvocab_to_json(v, &vj));
    ASSERT_OK(amuse_model_config_set(m, "vocabulary", vj));
    free(vj);
    ASSERT_OK(amuse_model_init_weights(m, 5));
    return m;
}

static char *lm_json(int V)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"name\": \"tiny-lm\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], "
             "\"dtype\": \"int32\"}},"
             "{\"class_name\": \"Embedding\", \"config\": {\"name\": \"emb\", \"input_dim\": %d, "
             "\"output_dim\": 8}},"
             "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"l1\", \"units\": 24, "
             "\"return_sequences\": true}},"
             "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"l2\", \"units\": 24, "
             "\"return_sequences\": true}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": %d, "
             "\"activation\": \"softmax\"}}]}},"
             "\"compile\": {\"optimizer\": {\"class_name\": \"Adam\", \"config\": "
             "{\"learning_rate\": 0.02}}, \"loss\": \"sparse_categorical_crossentropy\"}}",
             T, V, V);
    return json;
}

/* A char LM trained for a few epochs on TEXT repeated (windows of T, targets shifted by one). */
static struct amuse_model *lm_cache;
static struct amuse_charvocab *lm_vocab;

static struct amuse_model *train_lm(struct amuse_charvocab **vout);

/* Trained once, shared by the tests (each test frees what it gets from here: a reloaded copy). */
static struct amuse_model *trained_lm(struct amuse_charvocab **vout)
{
    if (!lm_cache)
        lm_cache = train_lm(&lm_vocab);
    static int n;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/generate-lm-%d", AMUSE_BINARY_DIR, n++);
    ASSERT_OK(amuse_model_save(lm_cache, dir));
    struct amuse_model *m = NULL;
    ASSERT_OK(amuse_model_load(&m, dir));
    char *vj = NULL;
    ASSERT_OK(amuse_charvocab_to_json(lm_vocab, &vj));
    ASSERT_OK(amuse_charvocab_from_json(vout, vj, strlen(vj), "test"));
    free(vj);
    return m;
}

static struct amuse_model *train_lm(struct amuse_charvocab **vout)
{
    struct amuse_charvocab *v = vocab_of(TEXT);
    int V = amuse_charvocab_size(v);
    struct amuse_model *m = model_with_vocab(lm_json(V), v);
    size_t n_text = 0;
    int32_t ids[256];
    ASSERT_OK(
        amuse_charvocab_encode(v, TEXT, strlen(TEXT), AMUSE_UNKNOWN_FAIL, ids, 256, &n_text, NULL));
    enum { N = 96 };
    struct amuse_dataset d;
    memset(&d, 0, sizeof d);
    int64_t t = T;
    struct amuse_shape s;
    amuse_shape_make(&s, 1, &t);
    ASSERT_OK(amuse_array_alloc(&d.input[0], NULL, AMUSE_INT32, &s, N));
    ASSERT_OK(amuse_array_alloc(&d.target, NULL, AMUSE_INT32, &s, N));
    d.n = N;
    d.n_inputs = 1;
    d.n_classes = V;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < T; k++) {
            d.input[0].i32[i * T + k] = ids[(i + k) % n_text];
            d.target.i32[i * T + k] = ids[(i + k + 1) % n_text];
        }
    struct amuse_fit_options opt;
    ASSERT_OK(amuse_model_fit_options(m, &opt));
    opt.epochs = 40;
    opt.batch_size = 16;
    opt.verbose = 0;
    opt.seed = 3;
    struct amuse_epoch_log log[40];
    int ran = 0;
    ASSERT_OK(amuse_model_fit(m, &d, &opt, log, &ran));
    ASSERT_TRUE(log[ran - 1].loss < 0.6 * log[0].loss);
    amuse_dataset_release(&d);
    *vout = v;
    return m;
}

static struct amuse_generator *gen_of(struct amuse_model *m, int slots)
{
    struct amuse_generator *g = NULL;
    if (amuse_generator_from_model(&g, m, slots))
        TEST_FAIL("generator: %s", amuse_last_error());
    return g;
}

static void start(struct amuse_generator *g, int slot, const char *prompt, float temperature,
                  uint64_t seed, int max_tokens, const char *stop)
{
    struct amuse_generate_request r;
    amuse_generate_request_defaults(&r);
    r.prompt = prompt;
    r.prompt_len = strlen(prompt);
    r.sampling.temperature = temperature;
    r.sampling.seed = seed;
    r.max_tokens = max_tokens;
    const char *stops[1] = {stop};
    r.stop = stops;
    r.n_stop = stop ? 1 : 0;
    ASSERT_OK(amuse_generator_start(g, slot, &r));
}

/* Step until every slot is free, appending each slot's text to out[slot]. */
static void run_all(struct amuse_generator *g, char out[][512], enum amuse_finish *finish)
{
    struct amuse_generate_event ev[8];
    int n;
    while (amuse_generator_active_count(g) > 0) {
        ASSERT_OK(amuse_generator_step(g, ev, 8, &n));
        for (int i = 0; i < n; i++) {
            strncat(out[ev[i].slot], ev[i].text, ev[i].len);
            if (ev[i].finish)
                finish[ev[i].slot] = ev[i].finish;
        }
    }
}

/* The one-step stateful graph, primed with a prompt, gives the full graph's probabilities at the
 * prompt's last position; so does each further step. */
TEST(one_step_graph_matches_the_full_sequence)
{
    struct amuse_charvocab *v;
    struct amuse_model *m = trained_lm(&v);
    int V = amuse_charvocab_size(v);
    struct amuse_generator *g = gen_of(m, 4);
    ASSERT_EQ_INT(amuse_generator_kind(g), AMUSE_GENERATOR_LM);
    start(g, 2, "the c", 0.0f, 1, 3, NULL);
    int32_t seq[T];
    size_t n_ids;
    ASSERT_OK(amuse_charvocab_encode(v, "the c", 5, AMUSE_UNKNOWN_FAIL, seq, T, &n_ids, NULL));
    int len = (int)n_ids;
    struct amuse_generate_event ev[4];
    int n;
    for (int k = 0; k < 3; k++) {
        for (int i = len; i < T; i++)
            seq[i] = AMUSE_CHAR_RESERVED; /* later positions do not change earlier outputs */
        float *want = calloc((size_t)(T * V), sizeof(float));
        struct amuse_batch b;
        memset(&b, 0, sizeof b);
        b.n = 1;
        b.n_inputs = 1;
        b.input[0].dtype = AMUSE_INT32;
        b.input[0].shape.ndim = 1;
        b.input[0].shape.dim[0] = T;
        b.input[0].i32 = seq;
        ASSERT_OK(amuse_model_predict_batch(m, &b, 1, want));
        const float *got = amuse_generator_next_probs(g, 2);
        ASSERT_TRUE(got != NULL);
        for (int j = 0; j < V; j++)
            ASSERT_NEAR(got[j], want[(len - 1) * V + j], 1e-5);
        free(want);
        ASSERT_OK(amuse_generator_step(g, ev, 4, &n));
        ASSERT_EQ_INT(n, 1);
        ASSERT_EQ_INT(ev[0].slot, 2);
        seq[len++] = ev[0].token;
    }
    ASSERT_EQ_INT(ev[0].finish, AMUSE_FINISH_LENGTH);
    ASSERT_EQ_INT(ev[0].usage.prompt_tokens, 5);
    ASSERT_EQ_INT(ev[0].usage.completion_tokens, 3);
    ASSERT_EQ_INT(amuse_generator_active(g, 2), 0);
    amuse_generator_free(g);
    amuse_model_free(m);
    amuse_charvocab_free(v);
}

/* Same seed, same text: alone, or stepped together with other streams in other slots. Greedy
 * decoding continues the training text; a stop string ends it before the stop. */
TEST(seeds_reproduce_and_streams_are_independent)
{
    struct amuse_charvocab *v;
    struct amuse_model *m = trained_lm(&v);
    struct amuse_generator *g = gen_of(m, 4);
    char alone[4][512] = {{0}}, together[4][512] = {{0}};
    enum amuse_finish fin[4] = {0};
    start(g, 0, "the ", 1.0f, 42, 40, NULL);
    run_all(g, alone, fin);
    ASSERT_EQ_INT(fin[0], AMUSE_FINISH_LENGTH);
    ASSERT_EQ_INT(amuse_generator_usage(g, 0).completion_tokens, 40);
    start(g, 1, "on the", 0.9f, 7, 25, NULL);
    start(g, 3, "the ", 1.0f, 42, 40, NULL);
    start(g, 0, "dog", 1.2f, 9, 10, NULL);
    run_all(g, together, fin);
    ASSERT_STR_EQ(together[3], alone[0]);
    ASSERT_TRUE(strlen(alone[0]) == 40);
    /* greedy: the text it was trained on, up to a stop string (not sent) */
    char greedy[4][512] = {{0}};
    start(g, 2, "the cat sat", 0.0f, 0, 60, " the");
    run_all(g, greedy, fin);
    ASSERT_STR_EQ(greedy[2], " on");
    ASSERT_EQ_INT(fin[2], AMUSE_FINISH_STOP);
    amuse_generator_free(g);
    amuse_model_free(m);
    amuse_charvocab_free(v);
}

/* Prompts read together give each stream the probabilities it gets alone; a prompt longer than
 * AMUSE_GENERATE_PRIME_CHUNK is read a chunk per step while a running stream gets a token at
 * every step; the text is the same with one thread or several. */
TEST(prompts_are_read_together_and_in_chunks)
{
    struct amuse_charvocab *v;
    struct amuse_model *m = trained_lm(&v);
    int V = amuse_charvocab_size(v);
    struct amuse_generator *g = gen_of(m, 4);
    /* alone, then three prompts of different lengths started together */
    const char *prompts[3] = {"the dog sat on", "cat", "the mat. the"};
    float *alone = calloc((size_t)(3 * V), sizeof(float));
    for (int k = 0; k < 3; k++) {
        start(g, 0, prompts[k], 0.0f, 0, 5, NULL);
        const float *p = amuse_generator_next_probs(g, 0);
        ASSERT_TRUE(p != NULL);
        memcpy(alone + k * V, p, (size_t)V * sizeof(float));
        amuse_generator_cancel(g, 0);
    }
    for (int k = 0; k < 3; k++)
        start(g, k + 1, prompts[k], 0.0f, 0, 5, NULL);
    for (int k = 0; k < 3; k++) {
        const float *p = amuse_generator_next_probs(g, k + 1);
        ASSERT_TRUE(p != NULL);
        for (int j = 0; j < V; j++)
            ASSERT_NEAR(p[j], alone[k * V + j], 1e-6);
    }
    for (int k = 1; k < 4; k++)
        amuse_generator_cancel(g, k);
    free(alone);

    /* a long prompt: 2 * chunk + 6 characters, all but the last read over three steps */
    char long_prompt[2 * AMUSE_GENERATE_PRIME_CHUNK + 8];
    size_t L = sizeof long_prompt - 1;
    for (size_t i = 0; i < L; i++)
        long_prompt[i] = TEXT[i % (sizeof TEXT - 1)];
    long_prompt[L] = 0;
    char runs[2][4][512] = {{{0}}};
    for (int pass = 0; pass < 2; pass++) {
        ASSERT_OK(amuse_generator_set_threads(g, pass == 0 ? 1 : 2));
        start(g, 0, "the ", 1.0f, 5, 20, NULL);
        struct amuse_generate_event ev[4];
        int n;
        ASSERT_OK(amuse_generator_step(g, ev, 4, &n));
        ASSERT_EQ_INT(n, 1);
        strncat(runs[pass][0], ev[0].text, ev[0].len);
        start(g, 1, long_prompt, 0.8f, 11, 10, NULL);
        for (int step = 0; step < 3; step++) {
            ASSERT_OK(amuse_generator_step(g, ev, 4, &n));
            ASSERT_EQ_INT(n, step < 2 ? 1 : 2); /* slot 0 every step, slot 1 once read */
            ASSERT_EQ_INT(ev[0].slot, 0);
            for (int i = 0; i < n; i++)
                strncat(runs[pass][ev[i].slot], ev[i].text, ev[i].len);
        }
        ASSERT_EQ_INT(amuse_generator_usage(g, 1).prompt_tokens, (int)L);
        enum amuse_finish fin[4] = {0};
        run_all(g, runs[pass], fin);
        ASSERT_EQ_INT(fin[1], AMUSE_FINISH_LENGTH);
    }
    ASSERT_STR_EQ(runs[1][0], runs[0][0]);
    ASSERT_STR_EQ(runs[1][1], runs[0][1]);
    ASSERT_TRUE(strlen(runs[0][1]) == 10);
    ASSERT_EQ_INT(amuse_generator_threads(g), 2);
    ASSERT_FAILS(amuse_generator_set_threads(g, -1), AMUSE_EINVAL, "threads");
    ASSERT_FAILS(amuse_generator_set_threads(g, AMUSE_GENERATE_MAX_THREADS + 1), AMUSE_EINVAL,
                 "threads");
    ASSERT_EQ_INT(amuse_generator_threads(g), 2);
    amuse_generator_free(g);
    amuse_model_free(m);
    amuse_charvocab_free(v);
}

/* Line shape: with it kept, every half-line written has the prompt's first half-line length
 * (5 here), marks never start a half-line and the end token never cuts one; the same seeds
 * with it off do write other lengths (the weights are random, so marks come anywhere). The
 * model's config turns it on by default; bad values are refused. */
static void half_lines(const char *text, int *lengths, int *n, int *bad_start)
{
    static const char *const marks[] = {"，", "。", "？", "！", "；", "、", "\n"};
    int run = 0;
    *n = 0;
    for (const char *p = text; *p;) {
        int k = 1, mark = 0;
        while ((p[k] & 0xC0) == 0x80)
            k++;
        for (int i = 0; i < 7; i++)
            mark |= (int)strlen(marks[i]) == k && memcmp(p, marks[i], (size_t)k) == 0;
        if (mark) {
            if (run > 0)
                lengths[(*n)++] = run;
            else if (*p != '\n')
                (*bad_start)++;
            run = 0;
        } else {
            run++;
        }
        p += k;
    }
}

TEST(line_shape_keeps_the_prompts_half_line_length)
{
    const char *poem = "白日依山尽，黄河入海流。\n欲穷千里目，更上一层楼。\n";
    struct amuse_charvocab *v = vocab_of(poem);
    struct amuse_model *m = model_with_vocab(lm_json(amuse_charvocab_size(v)), v);
    struct amuse_tensor bias, grad;
    ASSERT_OK(amuse_model_find_weight(m, "out/bias", &bias, &grad));
    bias.data[AMUSE_CHAR_EOS] = -8.0f; /* streams of several lines */
    struct amuse_generator *g = gen_of(m, 4);
    ASSERT_EQ_INT(amuse_generator_line_shape(g), 0);
    char kept[4][512] = {{0}}, free_text[4][512] = {{0}};
    enum amuse_finish fin[4] = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (int s = 0; s < 4; s++) {
            struct amuse_generate_request r;
            amuse_generate_request_defaults(&r);
            r.prompt = "白日依山尽，黄河";
            r.prompt_len = strlen(r.prompt);
            r.max_tokens = 60;
            r.sampling.seed = 100 + (uint64_t)s;
            r.line_shape = pass == 0 ? AMUSE_LINE_SHAPE_KEEP : AMUSE_LINE_SHAPE_OFF;
            ASSERT_OK(amuse_generator_start(g, s, &r));
        }
        run_all(g, pass == 0 ? kept : free_text, fin);
    }
    int other_lengths = 0;
    for (int s = 0; s < 4; s++) {
        int len[128], n, bad_start = 0;
        /* the prompt's last half-line had 2 characters: the first one written ends at 5 */
        char whole[600];
        snprintf(whole, sizeof whole, "黄河%s", kept[s]);
        half_lines(whole, len, &n, &bad_start);
        ASSERT_TRUE(n >= 5);
        for (int i = 0; i < n; i++)
            ASSERT_EQ_INT(len[i], 5);
        ASSERT_EQ_INT(bad_start, 0);
        snprintf(whole, sizeof whole, "黄河%s", free_text[s]);
        half_lines(whole, len, &n, &bad_start);
        for (int i = 0; i < n; i++)
            other_lengths += len[i] != 5;
    }
    ASSERT_TRUE(other_lengths > 0);
    /* the model's config: on by default, a request can turn it off; bad values refused */
    amuse_generator_free(g);
    ASSERT_OK(amuse_model_config_set(m, "generation", "{\"line_shape\": true}"));
    g = gen_of(m, 1);
    ASSERT_EQ_INT(amuse_generator_line_shape(g), 1);
    struct amuse_generate_request r;
    amuse_generate_request_defaults(&r);
    r.prompt = "欲穷千里目，";
    r.prompt_len = strlen(r.prompt);
    r.max_tokens = 3;
    ASSERT_OK(amuse_generator_start(g, 0, &r));
    struct amuse_generate_event ev[1];
    int n;
    ASSERT_OK(amuse_generator_step(g, ev, 1, &n));
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(ev[0].line_length, 5);
    amuse_generator_cancel(g, 0);
    r.prompt = "欲Q千里目，"; /* a character the vocabulary lacks still counts in the shape */
    r.prompt_len = strlen(r.prompt);
    ASSERT_OK(amuse_generator_start(g, 0, &r));
    ASSERT_EQ_INT(amuse_generator_usage(g, 0).prompt_unknown, 1);
    ASSERT_OK(amuse_generator_step(g, ev, 1, &n));
    ASSERT_EQ_INT(ev[0].line_length, 5);
    amuse_generator_cancel(g, 0);
    r.line_shape = AMUSE_LINE_SHAPE_OFF;
    ASSERT_OK(amuse_generator_start(g, 0, &r));
    ASSERT_OK(amuse_generator_step(g, ev, 1, &n));
    ASSERT_EQ_INT(ev[0].line_length, 0);
    amuse_generator_cancel(g, 0);
    r.line_shape = (enum amuse_line_shape)7;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "line_shape");
    amuse_generator_free(g);
    struct amuse_generator *bad = NULL;
    ASSERT_OK(amuse_model_config_set(m, "generation", "{\"line_shape\": 3}"));
    ASSERT_FAILS(amuse_generator_from_model(&bad, m, 1), AMUSE_EFORMAT, "line_shape");
    ASSERT_TRUE(bad == NULL);
    amuse_model_free(m);
    amuse_charvocab_free(v);
}

TEST(bad_requests_are_refused)
{
    struct amuse_charvocab *v;
    struct amuse_model *m = trained_lm(&v);
    struct amuse_generator *g = gen_of(m, 2);
    struct amuse_generate_request r;
    amuse_generate_request_defaults(&r);
    r.prompt = "QXZ";
    r.prompt_len = 3;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "none of its 3 characters");
    r.prompt = "";
    r.prompt_len = 0;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "prompt: empty");
    r.prompt = "the\xff";
    r.prompt_len = 4;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EFORMAT, "byte 3");
    r.prompt = "tQe";
    r.prompt_len = 3;
    r.max_tokens = AMUSE_GENERATE_MAX_TOKENS + 1;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "above the model's cap");
    r.max_tokens = 2;
    r.sampling.temperature = -0.5f;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "temperature");
    r.sampling.temperature = 1;
    r.sampling.top_p = 1.5f;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "top_p");
    r.sampling.top_p = 0.0f;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "top_p");
    r.sampling.top_p = 1;
    const char *stops[5] = {"a", "b", "c", "d", "e"};
    r.stop = stops;
    r.n_stop = 5;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "stop");
    r.n_stop = 0;
    ASSERT_FAILS(amuse_generator_start(g, 2, &r), AMUSE_EINVAL, "slot 2");
    ASSERT_EQ_INT(amuse_generator_active_count(g), 0);
    /* unknown characters are skipped and counted */
    ASSERT_OK(amuse_generator_start(g, 0, &r));
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "already active");
    ASSERT_EQ_INT(amuse_generator_usage(g, 0).prompt_tokens, 2);
    ASSERT_EQ_INT(amuse_generator_usage(g, 0).prompt_unknown, 1);
    ASSERT_EQ_INT(amuse_generator_free_slot(g), 1);
    amuse_generator_cancel(g, 0);
    ASSERT_EQ_INT(amuse_generator_active_count(g), 0);
    amuse_generator_free(g);
    amuse_model_free(m);
    /* not generators: no vocabulary; a classifier */
    struct amuse_generator *bad = NULL;
    m = model_with_vocab(lm_json(amuse_charvocab_size(v)), v);
    ASSERT_OK(amuse_model_config_set(m, "vocabulary", "null"));
    ASSERT_FAILS(amuse_generator_from_model(&bad, m, 1), AMUSE_EUNSUPPORTED, "no \"vocabulary\"");
    amuse_model_free(m);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4]}},"
             "{\"class_name\": \"Dense\", \"config\": {\"units\": %d}}]}}}",
             amuse_charvocab_size(v));
    m = model_with_vocab(json, v);
    ASSERT_FAILS(amuse_generator_from_model(&bad, m, 1), AMUSE_EUNSUPPORTED, "not a generator");
    ASSERT_TRUE(bad == NULL);
    amuse_model_free(m);
    amuse_charvocab_free(v);
}

/* A small encoder-decoder in the seed's shape (one-hot inputs, LSTM return_state, decoder LSTM
 * from [h, c], Dense softmax), random weights: the derived encoder + one-step decoder give the
 * full graph's probabilities at every step of a greedy reply. */
TEST(seq2seq_split_matches_the_full_graph)
{
    struct amuse_charvocab *v = vocab_of("abcdefg");
    int V = amuse_charvocab_size(v);
    enum { TE = 6, TD = 7, U = 12 };
    char json[4096];
    snprintf(json, sizeof json,
             "{\"name\": \"tiny-s2s\", \"model\": {\"class_name\": \"Functional\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"name\": \"enc_in\", \"config\": "
             "{\"batch_input_shape\": [null, %d, %d]}, \"inbound_nodes\": []},"
             "{\"class_name\": \"LSTM\", \"name\": \"enc\", \"config\": {\"units\": %d, "
             "\"return_state\": true}, \"inbound_nodes\": [[[\"enc_in\", 0, 0, {}]]]},"
             "{\"class_name\": \"InputLayer\", \"name\": \"dec_in\", \"config\": "
             "{\"batch_input_shape\": [null, %d, %d]}, \"inbound_nodes\": []},"
             "{\"class_name\": \"LSTM\", \"name\": \"dec\", \"config\": {\"units\": %d, "
             "\"return_sequences\": true, \"return_state\": true}, \"inbound_nodes\": "
             "[[[\"dec_in\", 0, 0, {}], [\"enc\", 0, 1, {}], [\"enc\", 0, 2, {}]]]},"
             "{\"class_name\": \"Dense\", \"name\": \"out\", \"config\": {\"units\": %d, "
             "\"activation\": \"softmax\"}, \"inbound_nodes\": [[[\"dec\", 0, 0, {}]]]}],"
             "\"input_layers\": [[\"enc_in\", 0, 0], [\"dec_in\", 0, 0]],"
             "\"output_layers\": [[\"out\", 0, 0]]}}}",
             TE, V, U, TD, V, U, V);
    struct amuse_model *m = model_with_vocab(json, v);
    /* larger weights than glorot's so the probabilities differ visibly between steps */
    for (int i = 0; i < amuse_model_weight_count(m); i++) {
        struct amuse_tensor w, gr;
        amuse_model_weight_info(m, i, &w, &gr);
        for (int64_t k = 0; k < amuse_shape_size(&w.shape); k++)
            w.data[k] = 0.9f * sinf(0.37f * (float)(k + 13 * i));
    }
    struct amuse_tensor bias, gr;
    ASSERT_OK(amuse_model_find_weight(m, "out/bias", &bias, &gr));
    bias.data[AMUSE_CHAR_EOS] = -6.0f; /* a reply of several steps */
    struct amuse_generator *g = gen_of(m, 3);
    ASSERT_EQ_INT(amuse_generator_kind(g), AMUSE_GENERATOR_SEQ2SEQ);
    ASSERT_EQ_INT(amuse_generator_max_tokens(g), TD);
    struct amuse_generate_request r;
    amuse_generate_request_defaults(&r);
    r.prompt = "gfedcba"; /* 7 > TE characters */
    r.prompt_len = 7;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_ETOOBIG, "at most 6");
    r.max_tokens = TD + 1;
    r.prompt_len = 3;
    ASSERT_FAILS(amuse_generator_start(g, 0, &r), AMUSE_EINVAL, "cap of 7");
    /* a stream in slot 0 keeps the batch busy: the checked stream is in slot 1 */
    start(g, 0, "abc", 1.0f, 1, 0, NULL);
    start(g, 1, "bade", 0.0f, 0, TD, NULL);
    int32_t src[TE], dec[TD];
    size_t n_src;
    ASSERT_OK(amuse_charvocab_encode(v, "bade", 4, AMUSE_UNKNOWN_FAIL, src, TE, &n_src, NULL));
    float enc_x[TE * 16], dec_x[TD * 16], *want = calloc((size_t)(TD * V), sizeof(float));
    ASSERT_TRUE(V <= 16);
    dec[0] = AMUSE_CHAR_BOS;
    int len = 1, checked = 0;
    while (amuse_generator_active(g, 1)) {
        memset(enc_x, 0, sizeof enc_x);
        memset(dec_x, 0, sizeof dec_x);
        for (int t = 0; t < TE; t++)
            enc_x[t * V + (t < (int)n_src ? src[t] : AMUSE_CHAR_PAD)] = 1;
        for (int t = 0; t < TD; t++)
            dec_x[t * V + (t < len ? dec[t] : AMUSE_CHAR_PAD)] = 1;
        struct amuse_batch b;
        memset(&b, 0, sizeof b);
        b.n = 1;
        b.n_inputs = 2;
        for (int k = 0; k < 2; k++) {
            b.input[k].dtype = AMUSE_FLOAT32;
            b.input[k].shape.ndim = 2;
            b.input[k].shape.dim[0] = k ? TD : TE;
            b.input[k].shape.dim[1] = V;
            b.input[k].f32 = k ? dec_x : enc_x;
        }
        ASSERT_OK(amuse_model_predict_batch(m, &b, 1, want));
        const float *got = amuse_generator_next_probs(g, 1);
        ASSERT_TRUE(got != NULL);
        for (int j = 0; j < V; j++)
            ASSERT_NEAR(got[j], want[(len - 1) * V + j], 1e-5);
        checked++;
        struct amuse_generate_event ev[3];
        int n;
        ASSERT_OK(amuse_generator_step(g, ev, 3, &n));
        for (int i = 0; i < n; i++)
            if (ev[i].slot == 1 && len < TD)
                dec[len++] = ev[i].token;
    }
    ASSERT_TRUE(checked >= 2);
    free(want);
    amuse_generator_free(g);
    amuse_model_free(m);
    amuse_charvocab_free(v);
}

int main(void)
{
    RUN(one_step_graph_matches_the_full_sequence);
    RUN(seeds_reproduce_and_streams_are_independent);
    RUN(prompts_are_read_together_and_in_chunks);
    RUN(line_shape_keeps_the_prompts_half_line_length);
    RUN(bad_requests_are_refused);
    RUN(seq2seq_split_matches_the_full_graph);
    amuse_model_free(lm_cache);
    amuse_charvocab_free(lm_vocab);
    return test_summary();
}
