/* test_fasttext.c - fastText models: the n-gram hash and n-grams against gensim's, gensim's .bin
 * read with the vectors gensim gives (in and out of the vocabulary), an amuse-written .bin that
 * gensim was checked to read (tests/fixtures/fasttext/make_fixtures.py) written again byte for
 * byte, subword training, queries with unseen words, and malformed files: truncation at every
 * header byte, wrong magic and version, quantised models, invalid UTF-8, absurd counts. */
#include "amuse/word2vec.h"
#include "core/internal.h"
#include "test.h"
#include "text/word2vec_internal.h"

#include <math.h>
#include <stdint.h>
#include <unistd.h>

#define FIX AMUSE_FIXTURES "/fasttext/"
#define DIM 8

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    char *data;
    if (am__read_file(path, 1 << 24, &data, len) != AMUSE_OK)
        TEST_FAIL("cannot read %s: %s", path, amuse_last_error());
    return (unsigned char *)data;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        TEST_FAIL("cannot write %s", path);
    fclose(f);
}

/* Split line at tabs into at most n fields (in place); returns how many. */
static int split_tabs(char *line, char **fields, int n)
{
    int k = 0;
    line[strcspn(line, "\n")] = '\0';
    fields[k++] = line;
    for (char *p = line; *p && k < n; p++)
        if (*p == '\t') {
            *p = '\0';
            fields[k++] = p + 1;
        }
    return k;
}

/* Every "word<TAB>in|oov<TAB>values" line of a fixture against amuse's lookup. Returns the lines. */
static int check_vectors(struct amuse_word_vectors *wv, const char *fixture)
{
    FILE *f = fopen(fixture, "r");
    if (!f)
        TEST_FAIL("cannot open %s", fixture);
    char line[4096], *fields[3];
    int lines = 0, oov = 0;
    float v[DIM];
    while (fgets(line, sizeof line, f)) {
        ASSERT_EQ_INT(split_tabs(line, fields, 3), 3);
        int composed = -1;
        ASSERT_OK(amuse_word_vectors_lookup(wv, fields[0], v, &composed));
        ASSERT_EQ_INT(composed, strcmp(fields[1], "oov") == 0);
        oov += composed;
        char *p = fields[2];
        for (int k = 0; k < DIM; k++) {
            double want = strtod(p, &p);
            if (fabs(v[k] - want) > 1e-6 + 1e-5 * fabs(want))
                TEST_FAIL("%s: '%s' value %d: amuse %.9g, gensim %.9g", fixture, fields[0], k,
                          (double)v[k], want);
        }
        lines++;
    }
    fclose(f);
    ASSERT_TRUE(oov >= 10);
    ASSERT_TRUE(lines - oov >= 50);
    return lines;
}

TEST(hash_and_ngrams_match_gensim)
{
    FILE *f = fopen(FIX "hashes.txt", "r");
    ASSERT_TRUE(f != NULL);
    char line[4096], *fields[4];
    int hashes = 0, ngrams = 0;
    while (fgets(line, sizeof line, f)) {
        int n = split_tabs(line, fields, 4);
        if (strcmp(fields[0], "hash") == 0) {
            ASSERT_EQ_INT(n, 3);
            ASSERT_EQ_INT(amuse_fasttext_hash(fields[1], strlen(fields[1])),
                          strtoull(fields[2], NULL, 10));
            hashes++;
            continue;
        }
        ASSERT_EQ_INT(n, 4);
        int minn, maxn;
        long long bucket;
        ASSERT_EQ_INT(sscanf(fields[2], "%d %d %lld", &minn, &maxn, &bucket), 3);
        int64_t got[256];
        int64_t count = amuse_fasttext_ngrams(fields[1], minn, maxn, bucket, got, 256);
        char *p = fields[3];
        int64_t want = 0;
        while (*p) {
            long long h = strtoll(p, &p, 10);
            ASSERT_TRUE(want < count);
            ASSERT_EQ_INT(got[want], h);
            want++;
        }
        ASSERT_EQ_INT(count, want);
        ngrams++;
    }
    fclose(f);
    ASSERT_TRUE(hashes >= 6 && ngrams >= 5);
    /* The signed-char quirk: a byte >= 0x80 is sign-extended before the xor. */
    ASSERT_EQ_INT(amuse_fasttext_hash("\xc3", 1), (2166136261u ^ 0xffffffc3u) * 16777619u);
    /* Asking for fewer than there are still counts them all. */
    ASSERT_EQ_INT(amuse_fasttext_ngrams("where", 3, 6, 100, NULL, 0), 14);
}

TEST(reads_gensim_models_with_the_vectors_gensim_gives)
{
    struct amuse_word_vectors *wv;
    ASSERT_OK(amuse_word_vectors_load(FIX "gensim.bin", AMUSE_W2V_AUTO, &wv));
    ASSERT_TRUE(amuse_word_vectors_has_subwords(wv));
    ASSERT_EQ_INT(wv->dim, DIM);
    ASSERT_EQ_INT(wv->subwords->args.minn, 3);
    ASSERT_EQ_INT(wv->subwords->args.maxn, 5);
    ASSERT_EQ_INT(wv->subwords->args.bucket, 1000);
    ASSERT_TRUE(amuse_vocab_count(wv->vocab, 0) > amuse_vocab_count(wv->vocab, wv->rows - 1));
    ASSERT_EQ_INT(check_vectors(wv, FIX "gensim_vectors.txt"), wv->rows + 12);
    /* An unseen word answers queries, composed from its n-grams. */
    float s, a[DIM], b[DIM];
    ASSERT_OK(amuse_w2v_similarity(wv, "playings", "playing", &s));
    ASSERT_OK(amuse_word_vectors_lookup(wv, "playings", a, NULL));
    ASSERT_OK(amuse_word_vectors_lookup(wv, "playing", b, NULL));
    double dot = 0, na = 0, nb = 0;
    for (int k = 0; k < DIM; k++) {
        dot += (double)a[k] * b[k];
        na += (double)a[k] * a[k];
        nb += (double)b[k] * b[k];
    }
    ASSERT_NEAR(s, dot / sqrt(na * nb), 1e-5);
    const char *pos[] = {"unwalked"};
    struct amuse_w2v_hit hits[3];
    int n;
    ASSERT_OK(amuse_w2v_similar(wv, pos, 1, NULL, 0, 3, 0, hits, &n));
    ASSERT_EQ_INT(n, 3);
    ASSERT_OK(amuse_w2v_analogy(wv, "play", "playings", "walk", 3, hits, &n));
    amuse_word_vectors_free(wv);
}

TEST(gensim_reads_ours_and_we_write_it_again_byte_for_byte)
{
    struct amuse_word_vectors *wv;
    ASSERT_OK(amuse_fasttext_load(FIX "amuse.bin", AMUSE_FASTTEXT_KEEP_OUTPUT, &wv));
    check_vectors(wv, FIX "amuse_seen_by_gensim.txt");
    ASSERT_OK(amuse_fasttext_save(wv, tmp_path("again.bin")));
    amuse_word_vectors_free(wv);
    size_t la, lb;
    unsigned char *a = slurp(FIX "amuse.bin", &la), *b = slurp(tmp_path("again.bin"), &lb);
    ASSERT_EQ_INT(la, lb);
    ASSERT_TRUE(memcmp(a, b, la) == 0);
    free(a);
    free(b);
    /* gensim's file too: what we read is all there is. */
    ASSERT_OK(amuse_fasttext_load(FIX "gensim.bin", AMUSE_FASTTEXT_KEEP_OUTPUT, &wv));
    ASSERT_OK(amuse_fasttext_save(wv, tmp_path("gensim_again.bin")));
    amuse_word_vectors_free(wv);
    a = slurp(FIX "gensim.bin", &la);
    b = slurp(tmp_path("gensim_again.bin"), &lb);
    ASSERT_EQ_INT(la, lb);
    ASSERT_TRUE(memcmp(a, b, la) == 0);
    free(a);
    free(b);
    /* Without the output matrix there is no model to write. */
    ASSERT_OK(amuse_fasttext_load(FIX "amuse.bin", 0, &wv));
    ASSERT_FAILS(amuse_fasttext_save(wv, tmp_path("x.bin")), AMUSE_EINVAL, "no fastText model");
    amuse_word_vectors_free(wv);
    ASSERT_TRUE(access(tmp_path("x.bin"), F_OK) != 0);
}

TEST(subword_training_writes_a_consistent_model)
{
    struct amuse_w2v_options o;
    amuse_w2v_options_default(&o);
    o.size = DIM;
    o.window = 3;
    o.min_count = 3;
    o.negative = 3;
    o.iter = 2;
    o.threads = 1;
    o.cbow = 0;
    o.subwords = 1;
    o.minn = 3;
    o.maxn = 5;
    o.bucket = 1000;
    struct amuse_w2v_corpus *c;
    struct amuse_word_vectors *wv, *back;
    ASSERT_OK(amuse_w2v_corpus_read(FIX "corpus.txt", &o, NULL, &c));
    o.cbow = 1;
    ASSERT_FAILS(amuse_w2v_train(c, &o, &wv), AMUSE_EINVAL, "skip-gram");
    o.cbow = 0;
    o.maxn = 2;
    ASSERT_FAILS(amuse_w2v_train(c, &o, &wv), AMUSE_EINVAL, "minn");
    o.maxn = 5;
    ASSERT_OK(amuse_w2v_train(c, &o, &wv));
    ASSERT_TRUE(amuse_word_vectors_has_subwords(wv));
    /* A word's vector is the mean of its own input row and its n-gram rows (naive reference). */
    const struct amuse_subwords *s = wv->subwords;
    int64_t w = amuse_vocab_find(wv->vocab, "playing");
    ASSERT_TRUE(w >= 0);
    int64_t g[64];
    int64_t ng = amuse_fasttext_ngrams("playing", 3, 5, 1000, g, 64);
    ASSERT_EQ_INT(ng, 18); /* "<playing>" is 9 characters: 7 3-grams, 6 4-grams, 5 5-grams */
    for (int k = 0; k < DIM; k++) {
        double sum = s->input[w * DIM + k];
        for (int64_t i = 0; i < ng; i++)
            sum += s->input[(wv->rows + g[i]) * DIM + k];
        ASSERT_NEAR(wv->vectors[w * DIM + k], sum / (double)(ng + 1), 1e-6);
    }
    /* Training moved the n-gram rows (their gradient is not lost) and the output rows. */
    double moved = 0;
    for (int k = 0; k < DIM; k++)
        moved += fabs(s->output[w * DIM + k]);
    ASSERT_TRUE(moved > 0);
    ASSERT_OK(amuse_fasttext_save(wv, tmp_path("trained.bin")));
    ASSERT_OK(amuse_word_vectors_load(tmp_path("trained.bin"), AMUSE_W2V_AUTO, &back));
    ASSERT_EQ_INT(back->rows, wv->rows);
    float x[DIM], y[DIM];
    const char *words[] = {"playing", "cat", "unplayable", "日本語"};
    for (int i = 0; i < 4; i++) {
        int cx, cy;
        ASSERT_OK(amuse_word_vectors_lookup(wv, words[i], x, &cx));
        ASSERT_OK(amuse_word_vectors_lookup(back, words[i], y, &cy));
        ASSERT_EQ_INT(cx, cy);
        ASSERT_EQ_INT(cx, i >= 2);
        ASSERT_TRUE(memcmp(x, y, sizeof x) == 0);
    }
    amuse_word_vectors_free(back);
    amuse_word_vectors_free(wv);
    amuse_w2v_corpus_free(c);
}

TEST(word2vec_files_have_no_subwords)
{
    FILE *f = fopen(tmp_path("plain.txt"), "w");
    fputs("2 2\ncat 1 0\ndog 0 1\n", f);
    fclose(f);
    struct amuse_word_vectors *wv;
    float v[2];
    ASSERT_OK(amuse_word_vectors_load(tmp_path("plain.txt"), AMUSE_W2V_AUTO, &wv));
    ASSERT_TRUE(!amuse_word_vectors_has_subwords(wv));
    ASSERT_FAILS(amuse_word_vectors_lookup(wv, "cats", v, NULL), AMUSE_ENOTFOUND, "cats");
    ASSERT_FAILS(amuse_word_vectors_lookup(wv, "", v, NULL), AMUSE_EINVAL, "bytes");
    float s;
    ASSERT_FAILS(amuse_w2v_similarity(wv, "cat", "cats", &s), AMUSE_ENOTFOUND, "cats");
    ASSERT_FAILS(amuse_fasttext_save(wv, tmp_path("plain.bin")), AMUSE_EINVAL, "fastText");
    amuse_word_vectors_free(wv);
    ASSERT_FAILS(amuse_fasttext_load(tmp_path("plain.txt"), 0, &wv), AMUSE_EFORMAT, "magic");
    ASSERT_TRUE(wv == NULL);
}

/* ------------------------------------------------------------------------- bad input */

static void put32(unsigned char *b, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[at + i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[at + i] = (unsigned char)(v >> (8 * i));
}

/* Load a modified copy of the fixture: it must fail with status and text. */
static void expect_bad(const unsigned char *data, size_t len, int status, const char *text)
{
    const char *p = tmp_path("bad.bin");
    write_bytes(p, data, len);
    struct amuse_word_vectors *wv = (void *)1;
    ASSERT_FAILS(amuse_fasttext_load(p, 0, &wv), status, text);
    ASSERT_TRUE(wv == NULL);
    ASSERT_CONTAINS(amuse_last_error(), "bad.bin");
}

TEST(truncated_files_fail_with_the_field_and_offset)
{
    size_t len;
    unsigned char *b = slurp(FIX "gensim.bin", &len);
    const char *p = tmp_path("cut.bin");
    /* Every length through the header and dictionary, then every 61st byte. */
    for (size_t cut = 0; cut < len; cut += cut < 2000 ? 1 : 61) {
        write_bytes(p, b, cut);
        struct amuse_word_vectors *wv = NULL;
        int rc = amuse_fasttext_load(p, 0, &wv);
        if (rc == AMUSE_OK || wv != NULL)
            TEST_FAIL("a file cut at byte %zu of %zu loaded", cut, len);
        if (cut >= 4 && !strstr(amuse_last_error(), "byte "))
            TEST_FAIL("cut at %zu: the message names no offset: %s", cut, amuse_last_error());
    }
    write_bytes(p, b, 42);
    struct amuse_word_vectors *wv;
    ASSERT_FAILS(amuse_fasttext_load(p, 0, &wv), AMUSE_EFORMAT, "byte 40: args.bucket");
    free(b);
}

TEST(corrupt_headers_fail_before_allocating)
{
    size_t len;
    unsigned char *orig = slurp(FIX "gensim.bin", &len);
    unsigned char *b = malloc(len + 1);
    struct amuse_word_vectors *wv;
    ASSERT_OK(amuse_fasttext_load(FIX "gensim.bin", 0, &wv));
    int64_t rows = wv->rows;
    amuse_word_vectors_free(wv);
    size_t out_bytes = 1 + 16 + (size_t)rows * DIM * 4;
    size_t in_quant = len - out_bytes - (1 + 16 + (size_t)(rows + 1000) * DIM * 4);
#define RESET() memcpy(b, orig, len)
    RESET();
    put32(b, 0, 793712315);
    expect_bad(b, len, AMUSE_EFORMAT, "byte 0: magic");
    RESET();
    put32(b, 4, 13);
    expect_bad(b, len, AMUSE_EUNSUPPORTED, "byte 4: version: 13");
    RESET();
    put32(b, 8, 0);
    expect_bad(b, len, AMUSE_EFORMAT, "args.dim");
    RESET();
    put32(b, 40, 2000000000);
    expect_bad(b, len, AMUSE_ETOOBIG, "args.bucket");
    RESET();
    put32(b, 44, 7); /* minn > maxn */
    expect_bad(b, len, AMUSE_EFORMAT, "args.minn/maxn");
    RESET();
    put32(b, 64, 1000000); /* more words than the file can hold */
    put32(b, 68, 1000000);
    expect_bad(b, len, AMUSE_EFORMAT, "byte 64: dictionary.size: 1000000 entries need at least");
    RESET();
    put32(b, 64, 0x7fffffff); /* absurd word count: size = nwords = 2^31 - 1 */
    put32(b, 68, 0x7fffffff);
    expect_bad(b, len, AMUSE_ETOOBIG, "byte 64: dictionary.size");
    RESET();
    put32(b, 72, 5); /* size != nwords + nlabels */
    expect_bad(b, len, AMUSE_EFORMAT, "size = nwords + nlabels");
    RESET();
    put64(b, 76, (uint64_t)-3);
    expect_bad(b, len, AMUSE_EFORMAT, "byte 76: dictionary.ntokens");
    RESET();
    put64(b, 84, 1000000000);
    expect_bad(b, len, AMUSE_EFORMAT, "byte 84: dictionary.pruneidx_size");
    RESET();
    put64(b, 84, 0x1000000000000001ULL); /* times 8 wraps around 64 bits (found by the fuzzer) */
    expect_bad(b, len, AMUSE_EFORMAT, "byte 84: dictionary.pruneidx_size");
    RESET();
    put64(b, 84, (len - 100) / 8); /* fits after the header, not after the words */
    expect_bad(b, len, AMUSE_EFORMAT, "more pairs than the rest of the file can hold");
    RESET();
    b[92] = 0xff; /* the first word */
    expect_bad(b, len, AMUSE_EFORMAT, "byte 92: dictionary entry 0: invalid UTF-8");
    RESET();
    size_t count_at = 92 + strlen((const char *)b + 92) + 1;
    put64(b, count_at, (uint64_t)-7);
    expect_bad(b, len, AMUSE_EFORMAT, "negative count -7");
    RESET();
    b[count_at + 8] = 1; /* a label among the words */
    expect_bad(b, len, AMUSE_EFORMAT, "type 1");
    RESET();
    b[in_quant] = 1;
    expect_bad(b, len, AMUSE_EUNSUPPORTED, "quantised model (.ftz) is not supported");
    RESET();
    b[in_quant] = 7;
    expect_bad(b, len, AMUSE_EFORMAT, "input quantisation flag");
    RESET();
    put64(b, in_quant + 1, (uint64_t)1 << 40); /* rows */
    expect_bad(b, len, AMUSE_EFORMAT, "input matrix shape");
    RESET();
    put64(b, in_quant + 1, (uint64_t)rows + 999); /* one n-gram row short of the bucket */
    expect_bad(b, len, AMUSE_EFORMAT, "input matrix shape");
    RESET();
    put32(b, in_quant + 17, 0x7fc00000); /* NaN */
    expect_bad(b, len, AMUSE_EFORMAT, "not a finite number");
    RESET();
    b[len - out_bytes] = 1;
    expect_bad(b, len, AMUSE_EUNSUPPORTED, "quantised");
    RESET();
    b[len] = 0;
    expect_bad(b, len + 1, AMUSE_EFORMAT, "output matrix shape");
    RESET();
    expect_bad(b, len - 4, AMUSE_EFORMAT, "output matrix shape");
#undef RESET
    free(b);
    free(orig);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/fasttext_test_XXXXXX", AMUSE_BINARY_DIR);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(hash_and_ngrams_match_gensim);
    RUN(reads_gensim_models_with_the_vectors_gensim_gives);
    RUN(gensim_reads_ours_and_we_write_it_again_byte_for_byte);
    RUN(subword_training_writes_a_consistent_model);
    RUN(word2vec_files_have_no_subwords);
    RUN(truncated_files_fail_with_the_field_and_offset);
    RUN(corrupt_headers_fail_before_allocating);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return test_summary();
}
