/* test_word2vec.c - word2vec: UTF-8 tokenizer, vocabulary files, the text and binary vector
 * formats against gensim-written fixtures (and byte-exact amuse output that gensim was checked to
 * read), malformed inputs, training determinism and modes, queries and the evaluators on a tiny
 * hand-computed example. Quality on a real corpus is test_word2vec_sanity.c's job. */
#include "amuse/word2vec.h"
#include "core/internal.h"
#include "test.h"
#include "text/utf8.h"

#include <stdint.h>
#include <unistd.h>

#define FIX AMUSE_FIXTURES "/word2vec/"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[16][512];
    static int next;
    char *b = buf[next++ % 16];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        TEST_FAIL("cannot write %s", path);
    fclose(f);
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

/* The fixture vectors of make_fixtures.py. */
static const char *const fixture_words[] = {"the", "king", "queen", "man", "woman",
                                            "caf\xc3\xa9", "\xe6\x9d\xb1\xe4\xba\xac", "x"};
static float fixture_value(int i, int j)
{
    return (float)((i * 7 + j * 3) % 11 - 5) / 4.0f;
}

static void check_fixture_vectors(const struct amuse_word_vectors *wv)
{
    ASSERT_EQ_INT(wv->rows, 8);
    ASSERT_EQ_INT(wv->dim, 4);
    for (int i = 0; i < 8; i++) {
        ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, i), fixture_words[i]);
        for (int j = 0; j < 4; j++)
            ASSERT_NEAR(wv->vectors[i * 4 + j], fixture_value(i, j), 0);
    }
}

static struct amuse_word_vectors *make_vectors(int rows, int dim, const char *const *words)
{
    struct amuse_word_vectors *wv = calloc(1, sizeof *wv);
    ASSERT_TRUE(wv);
    ASSERT_OK(amuse_vocab_new(&wv->vocab));
    for (int i = 0; i < rows; i++)
        ASSERT_OK(amuse_vocab_add(wv->vocab, words[i], 0, NULL));
    wv->rows = rows;
    wv->dim = dim;
    wv->vectors = am__calloc_aligned((size_t)rows * dim, sizeof(float));
    ASSERT_TRUE(wv->vectors);
    return wv;
}

static char *slurp(const char *path, size_t *len)
{
    char *data;
    if (am__read_file(path, 1 << 26, &data, len) != AMUSE_OK)
        TEST_FAIL("cannot read %s: %s", path, amuse_last_error());
    return data;
}

/* --------------------------------------------------------------------------------- UTF-8 */

TEST(utf8_decode_and_validate)
{
    uint32_t cp;
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
    ASSERT_EQ_INT(cp, 0xE9);
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    ASSERT_EQ_INT(cp, 0x1F600);
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xe6\x9d", 2, &cp), 0);  /* incomplete */
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xc0\xaf", 2, &cp), -1); /* overlong */
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xe0\x80\xaf", 3, &cp), -1);
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp), -1); /* D800 */
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), -1);
    ASSERT_EQ_INT(am__utf8_decode((const unsigned char *)"\x80", 1, &cp), -1);
    size_t bad = 0;
    ASSERT_TRUE(am__utf8_valid("caf\xc3\xa9 \xe6\x9d\xb1", 9, &bad));
    ASSERT_TRUE(!am__utf8_valid("abc\xff", 4, &bad));
    ASSERT_EQ_INT(bad, 3);
    /* A prefix never ends inside a code point. */
    ASSERT_EQ_INT(am__utf8_prefix("ab\xe6\x9d\xb1", 5, 4), 2);
    ASSERT_EQ_INT(am__utf8_prefix("ab\xe6\x9d\xb1", 5, 5), 5);
}

static int collect(const char *path, int chars, int skip, char out[][64], int max, int *eols)
{
    struct am__token_reader r;
    int n = 0, t;
    *eols = 0;
    int rc = am__token_reader_open(&r, path, chars, skip);
    if (rc != AMUSE_OK)
        return rc;
    while ((t = am__token_next(&r)) > 0) {
        if (t == AM__TOKEN_EOL)
            (*eols)++;
        else if (n < max)
        {
            size_t len = r.word_len < 63 ? r.word_len : 63;
            memcpy(out[n], r.word, len);
            out[n++][len] = '\0';
        }
    }
    am__token_reader_close(&r);
    return t < 0 ? t : n;
}

TEST(tokenizer_words_chars_long_and_invalid)
{
    char tok[16][64];
    int eols;
    const char *p = tmp_path("tok.txt");
    write_text(p, "  the caf\xc3\xa9\tking\r\nqueen\n\n");
    ASSERT_EQ_INT(collect(p, 0, 0, tok, 16, &eols), 4);
    ASSERT_STR_EQ(tok[1], "caf\xc3\xa9");
    ASSERT_STR_EQ(tok[3], "queen");
    ASSERT_EQ_INT(eols, 3);
    /* Character mode: each code point, the ideographic space separates. */
    write_text(p, "\xe6\x9d\xb1\xe4\xba\xac\xe3\x80\x80\xe5\xa4\xa7\n");
    ASSERT_EQ_INT(collect(p, 1, 0, tok, 16, &eols), 3);
    ASSERT_STR_EQ(tok[0], "\xe6\x9d\xb1");
    ASSERT_STR_EQ(tok[2], "\xe5\xa4\xa7");
    /* A token over the cap is dropped whole and counted, its neighbours survive. */
    size_t big = AMUSE_W2V_MAX_WORD_BYTES * 3;
    char *text = malloc(big + 32);
    strcpy(text, "a ");
    for (size_t i = 0; i < big / 3; i++)
        memcpy(text + 2 + 3 * i, "\xe6\x9d\xb1", 3);
    strcpy(text + 2 + big, "\xe6\x9d\xb1 b\n");
    write_text(p, text);
    free(text);
    struct am__token_reader r;
    ASSERT_OK(am__token_reader_open(&r, p, 0, 0));
    ASSERT_EQ_INT(am__token_next(&r), AM__TOKEN_WORD);
    ASSERT_STR_EQ(r.word, "a");
    ASSERT_EQ_INT(am__token_next(&r), AM__TOKEN_WORD);
    ASSERT_STR_EQ(r.word, "b");
    ASSERT_EQ_INT(r.dropped_long, 1);
    am__token_reader_close(&r);
    /* Invalid UTF-8: an error with the byte offset, or skipped and counted. */
    write_text(p, "good w\xffrd fine\n");
    ASSERT_FAILS(collect(p, 0, 0, tok, 16, &eols), AMUSE_EFORMAT, "byte 6: invalid UTF-8");
    ASSERT_EQ_INT(collect(p, 0, 1, tok, 16, &eols), 2);
    ASSERT_STR_EQ(tok[1], "fine");
    /* A code point cut by the end of the file is invalid too. */
    write_text(p, "ok \xe6\x9d");
    ASSERT_FAILS(collect(p, 0, 0, tok, 16, &eols), AMUSE_EFORMAT, "byte 3: invalid UTF-8");
    write_bytes(p, "ab\0cd", 5);
    ASSERT_FAILS(collect(p, 0, 0, tok, 16, &eols), AMUSE_EFORMAT, "byte 2: NUL byte");
}

/* ---------------------------------------------------------------------------- vocabulary */

TEST(vocab_save_and_read)
{
    struct amuse_vocab *v, *back;
    ASSERT_OK(amuse_vocab_new(&v));
    ASSERT_OK(amuse_vocab_add(v, "the", 10, NULL));
    ASSERT_OK(amuse_vocab_add(v, "caf\xc3\xa9", 3, NULL));
    ASSERT_OK(amuse_vocab_add(v, "the", 2, NULL));
    ASSERT_FAILS(amuse_vocab_add(v, "a b", 1, NULL), AMUSE_EINVAL, "white space");
    ASSERT_FAILS(amuse_vocab_add(v, "\xff", 1, NULL), AMUSE_EINVAL, "invalid UTF-8");
    ASSERT_EQ_INT(amuse_vocab_count(v, amuse_vocab_find(v, "the")), 12);
    const char *p = tmp_path("vocab.txt");
    ASSERT_OK(amuse_vocab_save(v, p));
    size_t len;
    char *text = slurp(p, &len);
    ASSERT_STR_EQ(text, "the 12\ncaf\xc3\xa9 3\n");
    free(text);
    ASSERT_OK(amuse_vocab_read(p, &back));
    ASSERT_EQ_INT(amuse_vocab_size(back), 2);
    ASSERT_EQ_INT(amuse_vocab_count(back, 1), 3);
    amuse_vocab_free(back);
    amuse_vocab_free(v);
    write_text(p, "the 12\nbad\n");
    ASSERT_FAILS(amuse_vocab_read(p, &back), AMUSE_EFORMAT, "line 2: expected 'word count'");
    write_text(p, "the 12\nthe 3\n");
    ASSERT_FAILS(amuse_vocab_read(p, &back), AMUSE_EFORMAT, "line 2: word 'the' appears twice");
    write_text(p, "the -1\n");
    ASSERT_FAILS(amuse_vocab_read(p, &back), AMUSE_EFORMAT, "line 1");
    ASSERT_FAILS(amuse_vocab_read(tmp_path("missing"), &back), AMUSE_ENOTFOUND, "cannot open");
}

/* ------------------------------------------------------------------------------- formats */

TEST(reads_gensim_and_word2vec_c_files)
{
    const char *files[] = {FIX "gensim_written.txt", FIX "gensim_written.bin", FIX "word2vec_c.txt"};
    for (int f = 0; f < 3; f++) {
        struct amuse_word_vectors *wv;
        ASSERT_OK(amuse_word_vectors_load(files[f], AMUSE_W2V_AUTO, &wv));
        check_fixture_vectors(wv);
        amuse_word_vectors_free(wv);
        ASSERT_OK(amuse_word_vectors_load(files[f], f == 1 ? AMUSE_W2V_BINARY : AMUSE_W2V_TEXT, &wv));
        check_fixture_vectors(wv);
        amuse_word_vectors_free(wv);
    }
}

TEST(writes_what_gensim_reads)
{
    /* make_fixtures.py checked that gensim loads amuse_written.{txt,bin} with these values; amuse
     * must keep writing exactly those bytes. AMUSE_WRITE_FIXTURES=1 regenerates them. */
    struct amuse_word_vectors *wv = make_vectors(8, 4, fixture_words);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            wv->vectors[i * 4 + j] = fixture_value(i, j);
    const char *names[] = {"amuse_written.txt", "amuse_written.bin"};
    for (int f = 0; f < 2; f++) {
        char committed[512];
        snprintf(committed, sizeof committed, FIX "%s", names[f]);
        if (getenv("AMUSE_WRITE_FIXTURES"))
            ASSERT_OK(amuse_word_vectors_save(wv, committed, f));
        const char *p = tmp_path(names[f]);
        ASSERT_OK(amuse_word_vectors_save(wv, p, f));
        size_t la, lb;
        char *a = slurp(p, &la), *b = slurp(committed, &lb);
        ASSERT_EQ_INT(la, lb);
        ASSERT_TRUE(memcmp(a, b, la) == 0);
        free(a);
        free(b);
    }
    amuse_word_vectors_free(wv);
}

TEST(round_trips_are_bit_exact)
{
    const char *words[] = {"alpha", "beta", "\xe6\x9d\xb1", "delta", "e"};
    struct amuse_word_vectors *wv = make_vectors(5, 7, words), *back;
    uint32_t x = 12345;
    for (int i = 0; i < 35; i++) {
        x = x * 1103515245u + 12345u;
        wv->vectors[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * (i % 3 ? 1e-3f : 7.0f);
    }
    for (int f = 0; f < 2; f++) {
        const char *p = tmp_path(f ? "rt.bin" : "rt.txt");
        ASSERT_OK(amuse_word_vectors_save(wv, p, f));
        ASSERT_OK(amuse_word_vectors_load(p, AMUSE_W2V_AUTO, &back));
        ASSERT_EQ_INT(back->rows, 5);
        ASSERT_TRUE(memcmp(back->vectors, wv->vectors, 35 * sizeof(float)) == 0);
        ASSERT_STR_EQ(amuse_vocab_word(back->vocab, 2), "\xe6\x9d\xb1");
        amuse_word_vectors_free(back);
    }
    amuse_word_vectors_free(wv);
}

TEST(malformed_vector_files)
{
    struct amuse_word_vectors *wv = NULL;
    const char *p = tmp_path("bad.txt");
    ASSERT_FAILS(amuse_word_vectors_load(tmp_path("nope.txt"), AMUSE_W2V_AUTO, &wv),
                 AMUSE_ENOTFOUND, "cannot open");
    write_text(p, "");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_AUTO, &wv), AMUSE_EFORMAT, "empty file");
    write_text(p, "two 3\na 1 2 3\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_AUTO, &wv), AMUSE_EFORMAT, "line 1: header");
    /* The header promises more rows than there are. */
    write_text(p, "3 2\na 1 2\nb 3 4\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "ends after 2 rows");
    /* ... more columns than there are. */
    write_text(p, "2 3\na 1 2\nb 3 4\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "line 2 ('a'): 2 values, the header promises 3");
    write_text(p, "2 2\na 1 2\nb 3 4 5\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "line 3 ('b'): more than the 2 values");
    write_text(p, "1 2\na 1 2\nb 3 4\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "data after the 1 rows");
    write_text(p, "2 2\na 1 2\nb nan 4\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "line 3 ('b'): value 1, 'nan', is not a finite number");
    write_text(p, "2 2\na 1 2\nb 1 inf\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT, "not a finite");
    write_text(p, "2 2\na 1 2\nb 1 x7\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "'x7', is not a number");
    write_text(p, "2 2\na 1 2\na 1 2\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT, "repeats row 1");
    write_text(p, "1 2\nw\xff 1 2\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT, "invalid UTF-8");
    /* A huge header is refused before any allocation. */
    write_text(p, "40000000 10000\na 1 2\n");
    ASSERT_FAILS(amuse_word_vectors_load(p, AMUSE_W2V_TEXT, &wv), AMUSE_EFORMAT,
                 "more than the file's");
    /* Binary: a truncated row, and NaN. */
    const char *b = tmp_path("bad.bin");
    char buf[64];
    float two[2] = {1.0f, 2.0f};
    memcpy(buf, "2 2\na ", 6);
    memcpy(buf + 6, two, 8);
    memcpy(buf + 14, "\nb ", 3);
    memcpy(buf + 17, two, 4);
    write_bytes(b, buf, 21);
    ASSERT_FAILS(amuse_word_vectors_load(b, AMUSE_W2V_BINARY, &wv), AMUSE_EFORMAT,
                 "byte 17: row 2 ('b') is truncated: 1 of 2 values");
    float nan2[2] = {NAN, 1.0f};
    memcpy(buf + 17, nan2, 8);
    memcpy(buf + 25, "\n", 1);
    write_bytes(b, buf, 26);
    ASSERT_FAILS(amuse_word_vectors_load(b, AMUSE_W2V_BINARY, &wv), AMUSE_EFORMAT,
                 "row 2 ('b'), value 1 is not a finite number");
    ASSERT_TRUE(wv == NULL);
    /* Saving into a missing directory fails and leaves nothing. */
    const char *words[] = {"a"};
    struct amuse_word_vectors *one = make_vectors(1, 2, words);
    ASSERT_FAILS(amuse_word_vectors_save(one, tmp_path("no/such/dir.txt"), 0), AMUSE_EIO,
                 "cannot create");
    amuse_word_vectors_free(one);
}

/* ------------------------------------------------------------------------------ training */

/* A synthetic corpus: 30 words with Zipf-like frequencies, 20000 tokens, lines of 12. */
static void write_corpus(const char *path)
{
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f);
    uint64_t x = 7;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(x >> 11) / 9007199254740992.0;
        int w = (int)(30 * u * u);
        fprintf(f, "w%02d%s", w, i % 12 == 11 ? "\n" : " ");
    }
    fclose(f);
}

static struct amuse_word_vectors *train(const char *corpus, int cbow, int hs, int negative,
                                        int threads, uint64_t seed, int kernel)
{
    struct amuse_w2v_options o;
    struct amuse_w2v_corpus *c;
    struct amuse_word_vectors *wv;
    amuse_w2v_options_default(&o);
    o.size = 16;
    o.iter = 2;
    o.cbow = cbow;
    o.hs = hs;
    o.negative = negative;
    o.threads = threads;
    o.seed = seed;
    o.kernel = kernel;
    ASSERT_OK(amuse_w2v_corpus_read(corpus, &o, NULL, &c));
    ASSERT_OK(amuse_w2v_train(c, &o, &wv));
    amuse_w2v_corpus_free(c);
    for (int64_t i = 0; i < wv->rows * wv->dim; i++)
        ASSERT_TRUE(isfinite(wv->vectors[i]));
    return wv;
}

TEST(corpus_is_read_once_into_ids)
{
    struct amuse_w2v_options o;
    struct amuse_w2v_corpus *c;
    amuse_w2v_options_default(&o);
    o.min_count = 2;
    const char *p = tmp_path("small.txt");
    write_text(p, "b a b\nc a b\n\nrare\n");
    ASSERT_OK(amuse_w2v_corpus_read(p, &o, NULL, &c));
    const struct amuse_vocab *v = amuse_w2v_corpus_vocab(c);
    ASSERT_EQ_INT(amuse_vocab_size(v), 2);
    ASSERT_STR_EQ(amuse_vocab_word(v, 0), "b");
    ASSERT_STR_EQ(amuse_vocab_word(v, 1), "a");
    const struct amuse_w2v_corpus_stats *s = amuse_w2v_corpus_stats(c);
    ASSERT_EQ_INT(s->tokens, 7);
    ASSERT_EQ_INT(s->train_words, 5);
    ASSERT_EQ_INT(s->sentences, 3);
    amuse_w2v_corpus_free(c);
}

TEST(bad_corpora)
{
    struct amuse_w2v_options o;
    struct amuse_w2v_corpus *c = NULL;
    amuse_w2v_options_default(&o);
    const char *p = tmp_path("corpus_bad.txt");
    write_text(p, " \n\n\t\n");
    ASSERT_FAILS(amuse_w2v_corpus_read(p, &o, NULL, &c), AMUSE_EINVAL, "empty corpus");
    write_text(p, "one two three two\n");
    ASSERT_FAILS(amuse_w2v_corpus_read(p, &o, NULL, &c), AMUSE_EINVAL,
                 "no word occurs at least min-count 5 times (the most frequent, 'two', occurs 2");
    write_bytes(p, "\x7f" "ELF\x02\x01\x01\0\0\0", 10);
    ASSERT_FAILS(amuse_w2v_corpus_read(p, &o, NULL, &c), AMUSE_EFORMAT, "binary file");
    write_text(p, "caf\xe9 au lait\n");
    ASSERT_FAILS(amuse_w2v_corpus_read(p, &o, NULL, &c), AMUSE_EFORMAT, "byte 3: invalid UTF-8");
    ASSERT_FAILS(amuse_w2v_corpus_read(tmp_path("none.txt"), &o, NULL, &c), AMUSE_ENOTFOUND,
                 "none.txt: cannot open");
    ASSERT_FAILS(amuse_w2v_corpus_read(tmpdir, &o, NULL, &c), AMUSE_EIO, "directory");
    ASSERT_TRUE(c == NULL);
}

TEST(one_thread_is_deterministic)
{
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("synthetic.txt"));
    write_corpus(p);
    for (int mode = 0; mode < 4; mode++) {
        int cbow = mode & 1, hs = mode >> 1;
        struct amuse_word_vectors *a = train(p, cbow, hs, hs ? 0 : 5, 1, 42, 0);
        struct amuse_word_vectors *b = train(p, cbow, hs, hs ? 0 : 5, 1, 42, 0);
        struct amuse_word_vectors *c = train(p, cbow, hs, hs ? 0 : 5, 1, 43, 0);
        size_t bytes = (size_t)a->rows * a->dim * sizeof(float);
        ASSERT_EQ_INT(a->rows, 30);
        ASSERT_TRUE(memcmp(a->vectors, b->vectors, bytes) == 0);
        ASSERT_TRUE(memcmp(a->vectors, c->vectors, bytes) != 0);
        /* And the saved files are byte-identical. */
        ASSERT_OK(amuse_word_vectors_save(a, tmp_path("det_a.bin"), 1));
        ASSERT_OK(amuse_word_vectors_save(b, tmp_path("det_b.bin"), 1));
        size_t la, lb;
        char *fa = slurp(tmp_path("det_a.bin"), &la), *fb = slurp(tmp_path("det_b.bin"), &lb);
        ASSERT_TRUE(la == lb && memcmp(fa, fb, la) == 0);
        free(fa);
        free(fb);
        amuse_word_vectors_free(a);
        amuse_word_vectors_free(b);
        amuse_word_vectors_free(c);
    }
    /* Several threads and both modes at once still train finite vectors. */
    amuse_word_vectors_free(train(p, 0, 1, 5, 3, 1, 0));
}

TEST(batched_kernels_agree)
{
    /* The sgemm kernel computes the same update as the loops; over a short training run the
     * float rounding differences stay small. */
    const char *p = tmp_path("synthetic.txt");
    write_corpus(p);
    struct amuse_word_vectors *a = train(p, 0, 0, 5, 1, 9, 0), *b = train(p, 0, 0, 5, 1, 9, 1);
    double worst = 0;
    for (int64_t i = 0; i < a->rows * a->dim; i++)
        worst = fmax(worst, fabs(a->vectors[i] - b->vectors[i]));
    ASSERT_NEAR(worst, 0, 1e-3);
    amuse_word_vectors_free(a);
    amuse_word_vectors_free(b);
}

TEST(synthetic_neighbours_are_learned)
{
    /* Two topics that never share a line: words of one topic must be each other's neighbours. */
    const char *p = tmp_path("topics.txt");
    FILE *f = fopen(p, "wb");
    ASSERT_TRUE(f);
    uint64_t x = 3;
    for (int line = 0; line < 3000; line++) {
        int topic = line % 2;
        for (int i = 0; i < 10; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            fprintf(f, "%c%d ", topic ? 'a' : 'b', (int)((x >> 33) % 8));
        }
        fputc('\n', f);
    }
    fclose(f);
    struct amuse_word_vectors *wv = train(p, 0, 0, 5, 1, 5, 0);
    const char *q[] = {"a3"};
    struct amuse_w2v_hit hits[5];
    int n;
    ASSERT_OK(amuse_w2v_similar(wv, q, 1, NULL, 0, 5, 0, hits, &n));
    ASSERT_EQ_INT(n, 5);
    for (int i = 0; i < n; i++)
        ASSERT_TRUE(amuse_vocab_word(wv->vocab, hits[i].index)[0] == 'a');
    amuse_word_vectors_free(wv);
}

/* ----------------------------------------------------------------- queries and evaluation */

static struct amuse_word_vectors *hand_vectors(void)
{
    static const char *const words[] = {"man", "woman", "king", "queen", "apple"};
    static const float v[5][3] = {{1, 0, 0}, {1, 1, 0}, {1, 0, 1}, {1, 1, 1}, {0, 0, -1}};
    struct amuse_word_vectors *wv = make_vectors(5, 3, words);
    memcpy(wv->vectors, v, sizeof v);
    return wv;
}

TEST(one_case_rule_for_lookups)
{
    /* as written if the vocabulary has that spelling, else ASCII-lower-cased; never upper-cased */
    struct amuse_vocab *v;
    ASSERT_OK(amuse_vocab_new(&v));
    int64_t king, queen_cap, paris;
    ASSERT_OK(amuse_vocab_add(v, "king", 1, &king));
    ASSERT_OK(amuse_vocab_add(v, "Queen", 1, &queen_cap));
    ASSERT_OK(amuse_vocab_add(v, "Paris", 1, &paris));
    ASSERT_OK(amuse_vocab_add(v, "paris", 1, NULL));
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "king"), king);
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "King"), king);
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "KING"), king);
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "Queen"), queen_cap);
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "queen"), -1);
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "QUEEN"), -1);
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "Paris"), paris); /* the exact spelling wins */
    ASSERT_EQ_INT(amuse_vocab_find(v, "King"), -1);       /* find stays exact */
    ASSERT_EQ_INT(amuse_vocab_lookup(v, "\xc3\x89t\xc3\xa9"), -1); /* non-ASCII: as is */
    amuse_vocab_free(v);
    /* the queries use it: King and MAN find king and man */
    struct amuse_word_vectors *wv = hand_vectors();
    struct amuse_w2v_hit hits[1];
    int n;
    ASSERT_OK(amuse_w2v_analogy(wv, "MAN", "Woman", "King", 1, hits, &n));
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, hits[0].index), "queen");
    float s;
    ASSERT_OK(amuse_w2v_similarity(wv, "Man", "QUEEN", &s));
    ASSERT_NEAR(s, 1 / sqrt(3.0), 1e-6);
    amuse_word_vectors_free(wv);
}

TEST(queries_on_hand_vectors)
{
    struct amuse_word_vectors *wv = hand_vectors();
    struct amuse_w2v_hit hits[4];
    int n;
    ASSERT_OK(amuse_w2v_analogy(wv, "man", "woman", "king", 1, hits, &n));
    ASSERT_EQ_INT(n, 1);
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, hits[0].index), "queen");
    /* unit(woman) - unit(man) + unit(king) = (sqrt2 - 1, 1/sqrt2, 1/sqrt2), against unit(queen) */
    double r2 = sqrt(2.0), qn = sqrt((r2 - 1) * (r2 - 1) + 1);
    ASSERT_NEAR(hits[0].score, (r2 - 1 + r2) / sqrt(3.0) / qn, 1e-6);
    const char *pos[] = {"king"};
    ASSERT_OK(amuse_w2v_similar(wv, pos, 1, NULL, 0, 4, 0, hits, &n));
    ASSERT_EQ_INT(n, 4);
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, hits[0].index), "queen"); /* 2/sqrt(6) */
    ASSERT_NEAR(hits[0].score, 2 / sqrt(6.0), 1e-6);
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, hits[1].index), "man");   /* tie with woman: lower row */
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, hits[3].index), "apple");
    ASSERT_NEAR(hits[3].score, -1 / sqrt(2.0), 1e-6);
    ASSERT_OK(amuse_w2v_similar(wv, pos, 1, NULL, 0, 4, 2, hits, &n)); /* restricted to 2 rows */
    ASSERT_EQ_INT(n, 2);
    float s;
    ASSERT_OK(amuse_w2v_similarity(wv, "man", "queen", &s));
    ASSERT_NEAR(s, 1 / sqrt(3.0), 1e-6);
    const char *odd[] = {"man", "woman", "king", "apple", "unknown"};
    int64_t at;
    ASSERT_OK(amuse_w2v_doesnt_match(wv, odd, 5, &at));
    ASSERT_STR_EQ(amuse_vocab_word(wv->vocab, at), "apple");
    const char *missing[] = {"pear"};
    ASSERT_FAILS(amuse_w2v_similar(wv, missing, 1, NULL, 0, 3, 0, hits, &n), AMUSE_ENOTFOUND,
                 "'pear' is not in the vocabulary");
    amuse_word_vectors_free(wv);
}

TEST(analogy_evaluation_by_hand)
{
    struct amuse_word_vectors *wv = hand_vectors();
    const char *p = tmp_path("questions.txt");
    write_text(p, ": capital-common-countries\n"
                  "man woman king queen\n"     /* right */
                  ": capital-world\n"
                  "man king woman apple\n"     /* wrong: the answer is queen */
                  ": currency\n: city-in-state\n: family\n"
                  ": gram1-adjective-to-adverb\n"
                  "MAN Woman KING Queen\n"     /* right, case-insensitively */
                  "man woman king pear\n");    /* skipped: pear is unknown */
    struct amuse_w2v_analogy_result r;
    ASSERT_OK(amuse_w2v_eval_analogies(wv, p, 0, &r));
    ASSERT_EQ_INT(r.semantic_correct, 1);
    ASSERT_EQ_INT(r.semantic_seen, 2);
    ASSERT_EQ_INT(r.syntactic_correct, 1);
    ASSERT_EQ_INT(r.syntactic_seen, 1);
    ASSERT_EQ_INT(r.correct, 2);
    ASSERT_EQ_INT(r.seen, 3);
    ASSERT_EQ_INT(r.questions, 4);
    ASSERT_EQ_INT(r.skipped, 1);
    ASSERT_NEAR(r.accuracy, 2.0 / 3.0, 1e-12);
    /* Restricted to the first 3 rows, every question has a word outside them. */
    ASSERT_OK(amuse_w2v_eval_analogies(wv, p, 3, &r));
    ASSERT_EQ_INT(r.seen, 0);
    ASSERT_EQ_INT(r.skipped, 4);
    write_text(p, ": s\nman woman king\n");
    ASSERT_FAILS(amuse_w2v_eval_analogies(wv, p, 0, &r), AMUSE_EFORMAT, "line 2: a question");
    amuse_word_vectors_free(wv);
}

TEST(pair_evaluation_by_hand)
{
    struct amuse_word_vectors *wv = hand_vectors();
    const char *p = tmp_path("pairs.tsv");
    write_text(p, "# Word 1\tWord 2\tHuman (mean)\n"
                  "man\twoman\t5\nMan\tking\t5\nking\tqueen\t9\nman\tapple\t1\nman\tqueen\t3\n"
                  "man\tbanana\t2\nnot a pair\n");
    struct amuse_w2v_pairs_result r;
    ASSERT_OK(amuse_w2v_eval_pairs(wv, p, 0, &r));
    /* cosines 0.7071 0.7071 0.8165 0 0.5774 against 5 5 9 1 3: scipy gives these. */
    ASSERT_NEAR(r.spearman, 1.0, 1e-9);
    ASSERT_NEAR(r.pearson, 0.8382775740194892, 1e-6);
    ASSERT_EQ_INT(r.pairs, 5);
    ASSERT_EQ_INT(r.oov, 1);
    ASSERT_NEAR(r.oov_ratio, 100.0 / 6.0, 1e-9);
    ASSERT_EQ_INT(r.skipped_lines, 1);
    amuse_word_vectors_free(wv);
    /* Tie-averaged ranks, as scipy.stats.spearmanr. */
    double x[] = {1, 2, 2, 3}, y[] = {1, 3, 2, 4};
    ASSERT_NEAR(amuse_spearman(x, y, 4), 0.9486832980505139, 1e-12);
    ASSERT_NEAR(amuse_pearson(x, y, 4), 0.9486832980505138, 1e-12);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/w2v_test_XXXXXX", AMUSE_BINARY_DIR);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(utf8_decode_and_validate);
    RUN(tokenizer_words_chars_long_and_invalid);
    RUN(vocab_save_and_read);
    RUN(reads_gensim_and_word2vec_c_files);
    RUN(writes_what_gensim_reads);
    RUN(round_trips_are_bit_exact);
    RUN(malformed_vector_files);
    RUN(corpus_is_read_once_into_ids);
    RUN(bad_corpora);
    RUN(one_thread_is_deterministic);
    RUN(batched_kernels_agree);
    RUN(synthetic_neighbours_are_learned);
    RUN(one_case_rule_for_lookups);
    RUN(queries_on_hand_vectors);
    RUN(analogy_evaluation_by_hand);
    RUN(pair_evaluation_by_hand);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
