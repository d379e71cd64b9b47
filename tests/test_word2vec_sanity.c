/* test_word2vec_sanity.c - quality on the real English corpus: with word2vec.c's default command
 * (CBOW, negative 5, window 5, size 100, sample 1e-3, the standard 5 epochs), `similar king` has
 * `queen` in its top 10 (it is 4th with seed 1, 3rd with seed 2). One thread and a fixed seed make
 * the result reproducible; with 2 Hogwild threads queen moves between 4th and 12th from run to
 * run, which would make a flaky test. (Skip-gram does not pass this on this Bible-heavy
 * corpus, in amuse or in gensim: its top 10 for king are biblical kings; the benchmark records
 * it.) Registered only in optimised builds without sanitizers (about 40 seconds; under ASan it
 * would take many minutes and prove nothing new). It builds the corpus with data/make_corpus.sh (Debian packages dict-gcide, bible-kjv-text, bible-kjv,
 * fortunes, fortunes-zh, r-cran-janeaustenr) when it is not there yet. */
#include "amuse/word2vec.h"
#include "test.h"

#include <unistd.h>

static char corpus[512];

TEST(king_is_near_queen)
{
    struct amuse_w2v_options o;
    struct amuse_w2v_corpus *c;
    struct amuse_word_vectors *wv;
    amuse_w2v_options_default(&o);
    o.threads = 1;
    o.seed = 1;
    ASSERT_OK(amuse_w2v_corpus_read(corpus, &o, NULL, &c));
    ASSERT_TRUE(amuse_vocab_size(amuse_w2v_corpus_vocab(c)) > 40000);
    ASSERT_OK(amuse_w2v_train(c, &o, &wv));
    amuse_w2v_corpus_free(c);
    const char *king[] = {"king"};
    struct amuse_w2v_hit hits[10];
    int n, found = 0;
    ASSERT_OK(amuse_w2v_similar(wv, king, 1, NULL, 0, 10, 0, hits, &n));
    for (int i = 0; i < n; i++) {
        printf("  %s %.3f\n", amuse_vocab_word(wv->vocab, hits[i].index), (double)hits[i].score);
        found |= strcmp(amuse_vocab_word(wv->vocab, hits[i].index), "queen") == 0;
    }
    ASSERT_TRUE(found);
    amuse_word_vectors_free(wv);
}

int main(void)
{
    snprintf(corpus, sizeof corpus, "%s/data/corpus/english.txt", AMUSE_SOURCE_DIR);
    if (access(corpus, R_OK) != 0) {
        snprintf(corpus, sizeof corpus, "%s/corpus/english.txt", AMUSE_BINARY_DIR);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bash '%s/data/make_corpus.sh' '%s/corpus'", AMUSE_SOURCE_DIR,
                 AMUSE_BINARY_DIR);
        if (access(corpus, R_OK) != 0 && system(cmd) != 0) {
            printf("FAIL: %s failed\n", cmd);
            return 1;
        }
    }
    RUN(king_is_near_queen);
    return test_summary();
}
