/* test_glove.c - GloVe: co-occurrence counts against hand-computed ones (window weighting,
 * symmetric and left-only), the external-memory merge against the in-memory count, temporary
 * files gone even on error, the shuffle as a permutation, training (determinism, -model outputs,
 * topics learnt), and bad input: duplicate vocabulary words, invalid UTF-8, -memory too small,
 * truncated or out-of-range co-occurrence files. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/glove.h"
#include "amuse/rng.h"
#include "test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>

static char dir[64];

static const char *path_in(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        TEST_FAIL("cannot write %s", path);
    fclose(f);
}

/* Records collected from a count, sorted by (word1, word2) for comparison. */
struct collected {
    struct amuse_glove_record *r;
    int64_t n, cap;
    int64_t fail_after; /* > 0: the sink fails once this many records arrived */
};

static int collect(void *ctx, const struct amuse_glove_record *r, size_t n)
{
    struct collected *c = ctx;
    if (c->n + (int64_t)n > c->cap) {
        c->cap = (c->n + (int64_t)n) * 2;
        c->r = realloc(c->r, (size_t)c->cap * sizeof *c->r);
    }
    memcpy(c->r + c->n, r, n * sizeof *r);
    c->n += (int64_t)n;
    if (c->fail_after > 0 && c->n >= c->fail_after)
        return AMUSE_EIO;
    return AMUSE_OK;
}

static int by_words(const void *pa, const void *pb)
{
    const struct amuse_glove_record *a = pa, *b = pb;
    if (a->word1 != b->word1)
        return a->word1 < b->word1 ? -1 : 1;
    return (a->word2 > b->word2) - (a->word2 < b->word2);
}

static void sort_records(struct collected *c)
{
    qsort(c->r, (size_t)c->n, sizeof *c->r, by_words);
}

static int files_in_dir(const char *d, const char *prefix)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    int n = 0;
    while (dp && (e = readdir(dp)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (dp)
        closedir(dp);
    return n;
}

/* Count corpus text with window w into c (sorted). */
static void count_text(const char *text, int window, int symmetric, int weighting,
                       struct amuse_vocab **vocab, struct collected *c)
{
    struct amuse_glove_options o;
    amuse_glove_options_default(&o);
    o.window_size = window;
    o.symmetric = symmetric;
    o.distance_weighting = weighting;
    o.memory = 0.05;
    o.threads = 2;
    const char *corpus = path_in("tiny.txt");
    write_file(corpus, text, strlen(text));
    ASSERT_OK(amuse_glove_vocab_count(corpus, &o, vocab, NULL));
    memset(c, 0, sizeof *c);
    ASSERT_OK(amuse_glove_cooccur(corpus, *vocab, &o, collect, c, NULL));
    sort_records(c);
}

struct expected {
    int w1, w2;
    double v;
};

static void assert_records(const struct collected *c, const struct expected *e, int n)
{
    ASSERT_EQ_INT(c->n, n);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ_INT(c->r[i].word1, e[i].w1);
        ASSERT_EQ_INT(c->r[i].word2, e[i].w2);
        ASSERT_NEAR(c->r[i].value, e[i].v, 1e-12);
    }
}

/* "a b c a / b c / d a b": a and b occur 3 times, c twice, d once, so the vocabulary is
 * a=1, b=2, c=3, d=4 (ties in byte order). */
static const char *tiny = "a b c a\nb c\nd a b\n";

TEST(vocab_order)
{
    struct amuse_glove_options o;
    struct amuse_vocab *v = NULL;
    int64_t tokens = 0;
    amuse_glove_options_default(&o);
    write_file(path_in("v.txt"), "zeta b b a zeta c\nc\n", 20);
    ASSERT_OK(amuse_glove_vocab_count(path_in("v.txt"), &o, &v, &tokens));
    ASSERT_EQ_INT(tokens, 7);
    ASSERT_EQ_INT(amuse_vocab_size(v), 4);
    ASSERT_STR_EQ(amuse_vocab_word(v, 0), "b"); /* 2, ties by bytes: b < c < zeta */
    ASSERT_STR_EQ(amuse_vocab_word(v, 1), "c");
    ASSERT_STR_EQ(amuse_vocab_word(v, 2), "zeta");
    ASSERT_STR_EQ(amuse_vocab_word(v, 3), "a");
    amuse_vocab_free(v);
    o.min_count = 2;
    o.max_vocab = 2;
    ASSERT_OK(amuse_glove_vocab_count(path_in("v.txt"), &o, &v, NULL));
    ASSERT_EQ_INT(amuse_vocab_size(v), 2);
    amuse_vocab_free(v);
}

TEST(counts_symmetric_weighted)
{
    /* By hand, window 2, pairs within a line at distance d weigh 1/d:
     * line 1 (a b c a): {a,b} 1 + 1/2, {b,c} 1, {a,c} 1/2 + 1; line 2: {b,c} 1;
     * line 3 (d a b): {d,a} 1, {a,b} 1, {d,b} 1/2. Each is counted in both orders. */
    struct amuse_vocab *v;
    struct collected c;
    count_text(tiny, 2, 1, 1, &v, &c);
    const struct expected e[] = {{1, 2, 2.5}, {1, 3, 1.5}, {1, 4, 1.0}, {2, 1, 2.5}, {2, 3, 2.0},
                                 {2, 4, 0.5}, {3, 1, 1.5}, {3, 2, 2.0}, {4, 1, 1.0}, {4, 2, 0.5}};
    assert_records(&c, e, 10);
    free(c.r);
    amuse_vocab_free(v);
}

TEST(counts_left_only_unweighted)
{
    /* (context on the left, word): line 1: (a,b) (b,c) (a,c) (c,a) (b,a); line 2: (b,c);
     * line 3: (d,a) (a,b) (d,b); each counts 1. */
    struct amuse_vocab *v;
    struct collected c;
    count_text(tiny, 2, 0, 0, &v, &c);
    const struct expected e[] = {{1, 2, 2}, {1, 3, 1}, {2, 1, 1}, {2, 3, 2},
                                 {3, 1, 1}, {4, 1, 1}, {4, 2, 1}};
    assert_records(&c, e, 7);
    free(c.r);
    amuse_vocab_free(v);
}

TEST(counts_window_one_and_repeats)
{
    /* "a a b a": window 1 sees only neighbours. (a,a) at distance 1 counts twice (once in each
     * order, as the reference adds both orders into one cell); {a,b} twice. */
    struct amuse_vocab *v;
    struct collected c;
    count_text("a a b a\n", 1, 1, 1, &v, &c);
    const struct expected e[] = {{1, 1, 2.0}, {1, 2, 2.0}, {2, 1, 2.0}};
    assert_records(&c, e, 3);
    free(c.r);
    amuse_vocab_free(v);
    /* Words outside the vocabulary are skipped and do not count for distances. */
    struct amuse_glove_options o;
    amuse_glove_options_default(&o);
    o.window_size = 1;
    o.memory = 0.05;
    write_file(path_in("oov.txt"), "a x b\n", 6);
    struct amuse_vocab *ab;
    ASSERT_OK(amuse_vocab_new(&ab));
    ASSERT_OK(amuse_vocab_add(ab, "a", 1, NULL));
    ASSERT_OK(amuse_vocab_add(ab, "b", 1, NULL));
    memset(&c, 0, sizeof c);
    ASSERT_OK(amuse_glove_cooccur(path_in("oov.txt"), ab, &o, collect, &c, NULL));
    sort_records(&c);
    const struct expected e2[] = {{1, 2, 1.0}, {2, 1, 1.0}};
    assert_records(&c, e2, 2);
    free(c.r);
    amuse_vocab_free(ab);
}

/* A random corpus: 600k tokens from 3000 words with a Zipf-like law, lines of 1..40 words. */
static void make_random_corpus(const char *path)
{
    struct amuse_rng r;
    amuse_rng_seed(&r, 7);
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    int in_line = 0, line_len = 1 + (int)amuse_rng_below(&r, 40);
    for (int i = 0; i < 600000; i++) {
        double u = amuse_rng_uniform(&r);
        int w = (int)(3000 * u * u * u); /* dense head, long tail */
        fprintf(f, "w%d", w);
        if (++in_line == line_len) {
            fputc('\n', f);
            in_line = 0;
            line_len = 1 + (int)amuse_rng_below(&r, 40);
        } else {
            fputc(' ', f);
        }
    }
    fclose(f);
}

TEST(external_merge_equals_in_memory)
{
    const char *corpus = path_in("random.txt");
    make_random_corpus(corpus);
    for (int symmetric = 0; symmetric <= 1; symmetric++) {
        struct amuse_glove_options o;
        struct amuse_vocab *v;
        struct amuse_glove_stats s1, s2;
        struct collected mem = {0}, ext = {0};
        amuse_glove_options_default(&o);
        o.window_size = 15;
        o.symmetric = symmetric;
        o.threads = 2;
        o.temp_prefix = path_in("run");
        ASSERT_OK(amuse_glove_vocab_count(corpus, &o, &v, NULL));
        o.memory = 1.0; /* everything in memory: no run is spilled */
        ASSERT_OK(amuse_glove_cooccur(corpus, v, &o, collect, &mem, &s1));
        ASSERT_EQ_INT(s1.runs, 0);
        /* A tiny table and the smallest runs: more than 64 runs, so runs are merged twice. */
        o.memory = 0.05;
        o.max_product = 50;
        o.overflow_length = 65536;
        ASSERT_OK(amuse_glove_cooccur(corpus, v, &o, collect, &ext, &s2));
        if (s2.runs <= 64)
            TEST_FAIL("only %lld runs", (long long)s2.runs);
        ASSERT_EQ_INT(files_in_dir(dir, "run_"), 0);
        ASSERT_EQ_INT(s1.records, s2.records);
        ASSERT_EQ_INT(mem.n, ext.n);
        ASSERT_TRUE(mem.n > 100000);
        sort_records(&mem);
        sort_records(&ext);
        for (int64_t i = 0; i < mem.n; i++) {
            ASSERT_EQ_INT(mem.r[i].word1, ext.r[i].word1);
            ASSERT_EQ_INT(mem.r[i].word2, ext.r[i].word2);
            ASSERT_NEAR(mem.r[i].value, ext.r[i].value, 1e-9 * mem.r[i].value);
        }
        free(mem.r);
        free(ext.r);
        amuse_vocab_free(v);
    }
}

TEST(temporary_files_removed_on_error)
{
    const char *corpus = path_in("random.txt");
    make_random_corpus(corpus);
    struct amuse_glove_options o;
    struct amuse_vocab *v;
    struct collected c = {0};
    amuse_glove_options_default(&o);
    o.window_size = 10;
    o.threads = 2;
    o.memory = 0.05;
    o.max_product = 50;
    o.overflow_length = 65536;
    o.temp_prefix = path_in("err");
    ASSERT_OK(amuse_glove_vocab_count(corpus, &o, &v, NULL));
    c.fail_after = 1000; /* the sink fails during the final merge, with runs open */
    ASSERT_EQ_INT(amuse_glove_cooccur(corpus, v, &o, collect, &c, NULL), AMUSE_EIO);
    ASSERT_EQ_INT(files_in_dir(dir, "err_"), 0);
    free(c.r);
    /* A directory that does not exist: a clear error, nothing left. */
    o.temp_prefix = "/nonexistent-amuse-dir/run";
    memset(&c, 0, sizeof c);
    ASSERT_FAILS(amuse_glove_cooccur(corpus, v, &o, collect, &c, NULL), AMUSE_EIO,
                 "cannot create a temporary file /nonexistent-amuse-dir/run_");
    free(c.r);
    amuse_vocab_free(v);
}

TEST(memory_too_small)
{
    struct amuse_glove_options o;
    struct amuse_vocab *v;
    struct collected c = {0};
    amuse_glove_options_default(&o);
    write_file(path_in("m.txt"), tiny, strlen(tiny));
    ASSERT_OK(amuse_glove_vocab_count(path_in("m.txt"), &o, &v, NULL));
    o.memory = 0.001;
    o.threads = 2;
    ASSERT_FAILS(amuse_glove_cooccur(path_in("m.txt"), v, &o, collect, &c, NULL), AMUSE_EINVAL,
                 "-memory 0.001 GB is too small to hold one run");
    ASSERT_CONTAINS(amuse_last_error(), "needs at least");
    o.memory = 1e-6;
    ASSERT_FAILS(amuse_glove_shuffle(stdin, "in", stdout, &o, 0), AMUSE_EINVAL,
                 "too small to shuffle");
    amuse_vocab_free(v);
    free(c.r);
}

TEST(bad_corpus_and_vocab)
{
    struct amuse_glove_options o;
    struct amuse_vocab *v = NULL;
    amuse_glove_options_default(&o);
    write_file(path_in("bad.txt"), "good words\nthen \xff here\n", 22);
    ASSERT_FAILS(amuse_glove_vocab_count(path_in("bad.txt"), &o, &v, NULL), AMUSE_EFORMAT,
                 "byte 16: invalid UTF-8");
    o.skip_invalid = 1;
    ASSERT_OK(amuse_glove_vocab_count(path_in("bad.txt"), &o, &v, NULL));
    ASSERT_EQ_INT(amuse_vocab_size(v), 4);
    amuse_vocab_free(v);
    write_file(path_in("dup.txt"), "the 10\nof 5\nthe 3\n", 18);
    ASSERT_FAILS(amuse_vocab_read(path_in("dup.txt"), &v), AMUSE_EFORMAT,
                 "line 3: word 'the' appears twice");
    write_file(path_in("utf.txt"), "the 10\no\xc3 5\n", 12);
    ASSERT_FAILS(amuse_vocab_read(path_in("utf.txt"), &v), AMUSE_EFORMAT,
                 "line 2: invalid UTF-8 at byte 1");
    write_file(path_in("empty.txt"), "  \n\n", 4);
    ASSERT_FAILS(amuse_glove_vocab_count(path_in("empty.txt"), &o, &v, NULL), AMUSE_EINVAL,
                 "empty corpus");
}

TEST(bad_cooccurrence_files)
{
    struct amuse_glove_record r[3] = {{1, 2, 1.5}, {2, 1, 1.5}, {3, 3, 2.0}}, *out = NULL;
    int64_t n = 0;
    write_file(path_in("c.bin"), r, sizeof r);
    ASSERT_OK(amuse_glove_records_read(path_in("c.bin"), 3, &out, &n));
    ASSERT_EQ_INT(n, 3);
    ASSERT_NEAR(out[2].value, 2.0, 0);
    free(out);
    write_file(path_in("t.bin"), r, sizeof r - 5);
    ASSERT_FAILS(amuse_glove_records_read(path_in("t.bin"), 3, &out, &n), AMUSE_EFORMAT,
                 "byte 32: truncated record");
    ASSERT_FAILS(amuse_glove_records_read(path_in("c.bin"), 2, &out, &n), AMUSE_EFORMAT,
                 "byte 32: record (3, 3) names a word outside the vocabulary of 2 words");
    r[1].value = -1;
    write_file(path_in("n.bin"), r, sizeof r);
    ASSERT_FAILS(amuse_glove_records_read(path_in("n.bin"), 3, &out, &n), AMUSE_EFORMAT,
                 "byte 16: record (2, 1) has the value -1");
    r[1].value = 1;
    r[0].word1 = 0;
    write_file(path_in("z.bin"), r, sizeof r);
    ASSERT_FAILS(amuse_glove_records_read(path_in("z.bin"), 0, &out, &n), AMUSE_EFORMAT,
                 "byte 0: record (0, 2)");
    /* The shuffle checks its input as it streams. */
    struct amuse_glove_options o;
    amuse_glove_options_default(&o);
    FILE *in = fopen(path_in("t.bin"), "rb"), *sink = fopen("/dev/null", "wb");
    ASSERT_FAILS(amuse_glove_shuffle(in, "t.bin", sink, &o, 3), AMUSE_EFORMAT,
                 "t.bin: byte 32: truncated record (11 of 16 bytes)");
    fclose(in);
    fclose(sink);
}

static void shuffle_roundtrip(double memory, int64_t n)
{
    struct amuse_glove_record *in = malloc((size_t)n * sizeof *in), *back;
    for (int64_t i = 0; i < n; i++)
        in[i] = (struct amuse_glove_record){(int32_t)(i / 1000 + 1), (int32_t)(i % 1000 + 1),
                                            (double)(i + 1)};
    write_file(path_in("s.bin"), in, (size_t)n * sizeof *in);
    struct amuse_glove_options o;
    amuse_glove_options_default(&o);
    o.memory = memory;
    o.temp_prefix = path_in("shuf");
    FILE *f = fopen(path_in("s.bin"), "rb"), *g = fopen(path_in("s2.bin"), "wb");
    ASSERT_OK(amuse_glove_shuffle(f, "s.bin", g, &o, 0));
    fclose(f);
    fclose(g);
    ASSERT_EQ_INT(files_in_dir(dir, "shuf_"), 0);
    int64_t m;
    ASSERT_OK(amuse_glove_records_read(path_in("s2.bin"), 0, &back, &m));
    ASSERT_EQ_INT(m, n);
    int64_t moved = 0;
    for (int64_t i = 0; i < n; i++)
        moved += back[i].value != in[i].value;
    ASSERT_TRUE(moved > n * 9 / 10); /* shuffled, not copied */
    qsort(back, (size_t)n, sizeof *back, by_words);
    for (int64_t i = 0; i < n; i++) {
        ASSERT_EQ_INT(back[i].word1, in[i].word1);
        ASSERT_EQ_INT(back[i].word2, in[i].word2);
        ASSERT_NEAR(back[i].value, in[i].value, 0);
    }
    free(in);
    free(back);
}

TEST(shuffle_is_a_permutation)
{
    shuffle_roundtrip(0.5, 50000);                        /* in memory */
    shuffle_roundtrip(8192.0 * 16 / 1073741824.0, 50000); /* 7 chunks on disk */
}

/* Two topics: lines mostly of words t0..t9 or mostly of u0..u9; after training, words of a topic
 * are closer to each other than to the other topic's. */
TEST(training_learns_topics_and_models_agree)
{
    struct amuse_rng r;
    amuse_rng_seed(&r, 3);
    FILE *f = fopen(path_in("topics.txt"), "wb");
    for (int line = 0; line < 3000; line++) {
        int t = (int)amuse_rng_below(&r, 2);
        for (int i = 0; i < 8; i++) /* mostly the line's topic, sometimes the other */
            fprintf(f, "%c%d ", (t ^ (amuse_rng_uniform(&r) < 0.15f)) ? 't' : 'u',
                    (int)amuse_rng_below(&r, 10));
        fputc('\n', f);
    }
    fclose(f);
    struct amuse_glove_options o;
    struct amuse_vocab *v = NULL;
    struct amuse_word_vectors *w2 = NULL, *w2b = NULL, *w1 = NULL, *w0 = NULL;
    struct amuse_glove_stats s;
    amuse_glove_options_default(&o);
    o.vector_size = 10;
    o.iter = 30;
    o.threads = 1;
    o.window_size = 4;
    o.x_max = 10;
    o.memory = 0.05;
    ASSERT_OK(amuse_glove_pipeline(path_in("topics.txt"), &o, &v, &w2, &s));
    ASSERT_EQ_INT(s.vocab_size, 20);
    ASSERT_TRUE(s.records > 0 && s.final_cost < 0.05);
    float same, other;
    ASSERT_OK(amuse_w2v_similarity(w2, "t1", "t2", &same));
    ASSERT_OK(amuse_w2v_similarity(w2, "t1", "u2", &other));
    if (!(same > other + 0.3f))
        TEST_FAIL("same %f other %f", same, other);
    ASSERT_OK(amuse_w2v_similarity(w2, "u3", "u7", &same));
    ASSERT_OK(amuse_w2v_similarity(w2, "u3", "t7", &other));
    if (!(same > other + 0.3f))
        TEST_FAIL("same %f other %f", same, other);
    /* One thread and one seed: the same bits again; -model 1 and 0 are parts of -model 2. */
    ASSERT_OK(amuse_glove_pipeline(path_in("topics.txt"), &o, NULL, &w2b, NULL));
    ASSERT_TRUE(memcmp(w2->vectors, w2b->vectors, 20 * 10 * sizeof(float)) == 0);
    o.model = 1;
    ASSERT_OK(amuse_glove_pipeline(path_in("topics.txt"), &o, NULL, &w1, NULL));
    o.model = 0;
    ASSERT_OK(amuse_glove_pipeline(path_in("topics.txt"), &o, NULL, &w0, NULL));
    ASSERT_EQ_INT(w1->dim, 10);
    ASSERT_EQ_INT(w0->dim, 22);
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 10; k++) {
            ASSERT_NEAR(w1->vectors[i * 10 + k], w0->vectors[i * 22 + k], 0);
            ASSERT_NEAR(w2->vectors[i * 10 + k],
                        w0->vectors[i * 22 + k] + w0->vectors[i * 22 + 11 + k], 1e-6);
        }
    amuse_word_vectors_free(w0);
    amuse_word_vectors_free(w1);
    amuse_word_vectors_free(w2);
    amuse_word_vectors_free(w2b);
    amuse_vocab_free(v);
}

TEST(training_from_records_and_bad_options)
{
    struct amuse_vocab *v;
    struct amuse_word_vectors *wv = NULL;
    struct amuse_glove_options o;
    ASSERT_OK(amuse_vocab_new(&v));
    ASSERT_OK(amuse_vocab_add(v, "x", 2, NULL));
    ASSERT_OK(amuse_vocab_add(v, "y", 2, NULL));
    struct amuse_glove_record r[2] = {{1, 2, 3.0}, {2, 1, 3.0}};
    amuse_glove_options_default(&o);
    o.threads = 1;
    o.iter = 50;
    o.vector_size = 4;
    ASSERT_OK(amuse_glove_train(v, r, 2, &o, &wv, NULL));
    ASSERT_EQ_INT(wv->rows, 2);
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, 1), "y");
    amuse_word_vectors_free(wv);
    r[1].word2 = 3;
    ASSERT_FAILS(amuse_glove_train(v, r, 2, &o, &wv, NULL), AMUSE_EFORMAT,
                 "outside the vocabulary of 2 words");
    r[1].word2 = 1;
    o.model = 3;
    ASSERT_FAILS(amuse_glove_train(v, r, 2, &o, &wv, NULL), AMUSE_EINVAL, "-model");
    o.model = 2;
    o.vector_size = 0;
    ASSERT_FAILS(amuse_glove_train(v, r, 2, &o, &wv, NULL), AMUSE_EINVAL, "-vector-size");
    o.vector_size = 4;
    ASSERT_FAILS(amuse_glove_train(v, r, 0, &o, &wv, NULL), AMUSE_EINVAL, "no co-occurrence");
    ASSERT_TRUE(wv == NULL);
    amuse_vocab_free(v);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/amuse-test-glove-%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0)
        return 1;
    RUN(vocab_order);
    RUN(counts_symmetric_weighted);
    RUN(counts_left_only_unweighted);
    RUN(counts_window_one_and_repeats);
    RUN(external_merge_equals_in_memory);
    RUN(temporary_files_removed_on_error);
    RUN(memory_too_small);
    RUN(bad_corpus_and_vocab);
    RUN(bad_cooccurrence_files);
    RUN(shuffle_is_a_permutation);
    RUN(training_learns_topics_and_models_agree);
    RUN(training_from_records_and_bad_options);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return test_summary();
}
