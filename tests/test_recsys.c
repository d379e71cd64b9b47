/* test_recsys.c - the recommender: each algorithm on two disjoint taste groups, ALS's CG against
 * the direct dense solve, fold-in against a full re-solve, metrics against hand-computed values,
 * splits, model files, filters and explanations, and bad input (file:line errors, k out of range,
 * unknown users and items). Runs on one thread so results are the same every run. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include "amuse/recsys.h"
#include "amuse/runtime.h"
#include "amuse/word2vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        TEST_FAIL("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Two taste groups: users a0..a5 each like all of items A0..A5 but A<i>; users b0..b5 likewise
 * with B0..B5. Nobody crosses over. The right next item for a<i> is A<i>. */
static struct amuse_rec_data *two_groups(void)
{
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(amuse_rec_data_new(&d));
    char user[16], item[16];
    for (int g = 0; g < 2; g++)
        for (int u = 0; u < 6; u++)
            for (int i = 0; i < 6; i++) {
                if (i == u)
                    continue;
                snprintf(user, sizeof user, "%c%d", g ? 'b' : 'a', u);
                snprintf(item, sizeof item, "%c%d", g ? 'B' : 'A', i);
                ASSERT_OK(amuse_rec_data_add(d, user, item, 1.0f + (float)((u + i) % 3), 100 * i + u));
            }
    return d;
}

static int64_t find(const struct amuse_vocab *v, const char *id)
{
    int64_t i = amuse_vocab_find(v, id);
    if (i < 0)
        TEST_FAIL("id '%s' not found", id);
    return i;
}

static void check_groups(int algo)
{
    struct amuse_rec_data *d = two_groups();
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, algo);
    o.factors = 4;
    o.alpha = 2;
    o.iters = algo == AMUSE_REC_BPR ? 400 : 10;
    o.shrink = 0;
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    ASSERT_EQ_INT(m->n_users, 12);
    ASSERT_EQ_INT(m->n_items, 12);
    for (int g = 0; g < 2; g++)
        for (int u = 0; u < 6; u++) {
            char user[16], want[16];
            snprintf(user, sizeof user, "%c%d", g ? 'b' : 'a', u);
            snprintf(want, sizeof want, "%c%d", g ? 'B' : 'A', u);
            struct amuse_rec_query q = {.user = find(m->users, user), .k = 3, .filter_seen = 1,
                                        .explain = 1};
            struct amuse_rec_hit hits[3];
            int n = 0, cold = 1;
            ASSERT_OK(amuse_rec_recommend(m, &q, hits, &n, &cold));
            ASSERT_EQ_INT(cold, 0);
            ASSERT_TRUE(n >= 1);
            ASSERT_STR_EQ(amuse_vocab_word(m->items, hits[0].item), want);
            /* the explanation is one of the user's own items, of the same group */
            ASSERT_TRUE(hits[0].because >= 0);
            const char *because = amuse_vocab_word(m->items, hits[0].because);
            ASSERT_TRUE(because[0] == want[0] && strcmp(because, want) != 0);
            for (int c = 1; c < n; c++) /* anything after it is from the other group */
                ASSERT_TRUE(amuse_vocab_word(m->items, hits[c].item)[0] != want[0]);
        }
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
}

TEST(itemknn_two_groups) { check_groups(AMUSE_REC_ITEMKNN); }
TEST(als_two_groups) { check_groups(AMUSE_REC_ALS); }
TEST(bpr_two_groups) { check_groups(AMUSE_REC_BPR); }

TEST(popularity_known_order)
{
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(amuse_rec_data_new(&d));
    /* x: 3 users, y: 2, z: 1; u1 has x, so its best unseen item is y, then z */
    const char *ev[][2] = {{"u1", "x"}, {"u2", "x"}, {"u3", "x"}, {"u2", "y"}, {"u3", "y"},
                           {"u3", "z"}, {"u3", "x"}};
    for (int e = 0; e < 7; e++)
        ASSERT_OK(amuse_rec_data_add(d, ev[e][0], ev[e][1], 1, e));
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_POP);
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    ASSERT_NEAR(m->popularity[find(m->items, "x")], 3, 0); /* u3's repeat counts once */
    struct amuse_rec_query q = {.user = find(m->users, "u1"), .k = 5, .filter_seen = 1};
    struct amuse_rec_hit hits[5];
    int n = 0;
    ASSERT_OK(amuse_rec_recommend(m, &q, hits, &n, NULL));
    ASSERT_EQ_INT(n, 2);
    ASSERT_STR_EQ(amuse_vocab_word(m->items, hits[0].item), "y");
    ASSERT_STR_EQ(amuse_vocab_word(m->items, hits[1].item), "z");
    q.filter_seen = 0;
    ASSERT_OK(amuse_rec_recommend(m, &q, hits, &n, NULL));
    ASSERT_EQ_INT(n, 3);
    ASSERT_STR_EQ(amuse_vocab_word(m->items, hits[0].item), "x");
    /* a user with no items is cold and gets the popular items */
    int cold = 0;
    struct amuse_rec_query empty = {.user = -1, .k = 2};
    ASSERT_OK(amuse_rec_recommend(m, &empty, hits, &n, &cold));
    ASSERT_EQ_INT(cold, 1);
    ASSERT_EQ_INT(n, 2);
    ASSERT_STR_EQ(amuse_vocab_word(m->items, hits[0].item), "x");
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
}

/* A random small problem: 30 users x 20 items, about a third observed. */
static struct amuse_rec_csr *random_matrix(int rows, int cols, uint64_t seed)
{
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(amuse_rec_data_new(&d));
    srand((unsigned)seed);
    char u[16], i[16];
    for (int c = 0; c < cols; c++) { /* declare every column in order */
        snprintf(u, sizeof u, "u%d", c % rows);
        snprintf(i, sizeof i, "i%d", c);
        ASSERT_OK(amuse_rec_data_add(d, u, i, 1 + (float)(rand() % 5), 0));
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (rand() % 3 == 0) {
                snprintf(u, sizeof u, "u%d", r);
                snprintf(i, sizeof i, "i%d", c);
                ASSERT_OK(amuse_rec_data_add(d, u, i, 1 + (float)(rand() % 5), 0));
            }
    struct amuse_rec_csr *m = NULL;
    ASSERT_OK(amuse_rec_csr_build(d, 0, &m));
    amuse_rec_data_free(d);
    return m;
}

TEST(als_cg_matches_direct_solve)
{
    enum { rows = 30, cols = 20, f = 6 };
    struct amuse_rec_csr *M = random_matrix(rows, cols, 7);
    float B[cols * f], cg[rows * f], direct[rows * f];
    for (int a = 0; a < cols * f; a++)
        B[a] = (float)((a * 37 % 17) - 8) / 20.0f;
    memset(cg, 0, sizeof cg);
    ASSERT_OK(amuse_rec_als_half(direct, B, cols, f, M, 3.0, 0.5, AMUSE_REC_SOLVER_DIRECT, 0));
    /* CG converges in f steps in exact arithmetic; a few more absorb rounding */
    ASSERT_OK(amuse_rec_als_half(cg, B, cols, f, M, 3.0, 0.5, AMUSE_REC_SOLVER_CG, 3 * f));
    for (int a = 0; a < rows * f; a++)
        ASSERT_NEAR(cg[a], direct[a], 1e-4 * (1 + fabs(direct[a])));
    /* implicit's 3 warm-started steps per half-iteration approach it over repeated calls */
    float warm[rows * f];
    memset(warm, 0, sizeof warm);
    for (int it = 0; it < 12; it++)
        ASSERT_OK(amuse_rec_als_half(warm, B, cols, f, M, 3.0, 0.5, AMUSE_REC_SOLVER_CG, 3));
    for (int a = 0; a < rows * f; a++)
        ASSERT_NEAR(warm[a], direct[a], 1e-3 * (1 + fabs(direct[a])));
    /* and the direct solve satisfies its normal equations: check one row by hand */
    double A[f * f] = {0}, rhs[f] = {0};
    for (int c = 0; c < f; c++)
        A[c * f + c] = 0.5;
    for (int k = 0; k < cols; k++)
        for (int a = 0; a < f; a++)
            for (int c = 0; c < f; c++)
                A[a * f + c] += (double)B[k * f + a] * B[k * f + c];
    for (int64_t e = M->indptr[0]; e < M->indptr[1]; e++) {
        const float *b = B + (size_t)M->indices[e] * f;
        double conf = 1 + 3.0 * M->values[e];
        for (int a = 0; a < f; a++) {
            rhs[a] += conf * b[a];
            for (int c = 0; c < f; c++)
                A[a * f + c] += (conf - 1) * b[a] * b[c];
        }
    }
    for (int a = 0; a < f; a++) {
        double s = 0;
        for (int c = 0; c < f; c++)
            s += A[a * f + c] * direct[c];
        ASSERT_NEAR(s, rhs[a], 1e-3 * (1 + fabs(rhs[a])));
    }
    amuse_rec_csr_free(M);
}

TEST(fold_in_equals_full_resolve)
{
    struct amuse_rec_data *d = two_groups();
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_ALS);
    o.factors = 5;
    o.iters = 5;
    o.solver = AMUSE_REC_SOLVER_DIRECT;
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    /* One more user half-step, solved directly, is what every user's factors should be. */
    float *X = malloc((size_t)m->n_users * 5 * sizeof *X);
    ASSERT_TRUE(X != NULL);
    ASSERT_OK(amuse_rec_als_half(X, m->item_factors, m->n_items, 5, m->seen, o.alpha, o.reg,
                             AMUSE_REC_SOLVER_DIRECT, 0));
    for (int64_t u = 0; u < m->n_users; u++) {
        float x[5];
        int64_t lo = m->seen->indptr[u];
        ASSERT_OK(amuse_rec_fold_in(m, m->seen->indices + lo, m->seen->values + lo,
                                (int)(m->seen->indptr[u + 1] - lo), x));
        for (int k = 0; k < 5; k++)
            ASSERT_NEAR(x[k], X[u * 5 + k], 1e-4);
    }
    /* a new user's fold-in gives the same top item as a trained one with the same items */
    int64_t a1 = find(m->users, "a1");
    int64_t lo = m->seen->indptr[a1];
    struct amuse_rec_query q = {.user = -1, .items = m->seen->indices + lo,
                                .values = m->seen->values + lo,
                                .n_items = (int)(m->seen->indptr[a1 + 1] - lo), .k = 1,
                                .filter_seen = 1};
    struct amuse_rec_hit hit;
    int n;
    ASSERT_OK(amuse_rec_recommend(m, &q, &hit, &n, NULL));
    ASSERT_EQ_INT(n, 1);
    ASSERT_STR_EQ(amuse_vocab_word(m->items, hit.item), "A1");
    free(X);
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
}

TEST(ipw_weights_values_by_inverse_popularity)
{
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(amuse_rec_data_new(&d));
    /* hit: 4 users; a, b: 2 each; rare: 1. Mean popularity (4 + 2 + 2 + 1) / 4 = 2.25. */
    const char *ev[][2] = {{"u1", "hit"}, {"u2", "hit"}, {"u3", "hit"}, {"u4", "hit"},
                           {"u1", "a"},   {"u2", "a"},   {"u3", "b"},   {"u4", "b"},
                           {"u1", "rare"}};
    for (int e = 0; e < 9; e++)
        ASSERT_OK(amuse_rec_data_add(d, ev[e][0], ev[e][1], 2, e));
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_ALS);
    o.factors = 3;
    o.ipw = 1;
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    ASSERT_NEAR(m->mean_popularity, 2.25, 1e-12);
    int32_t items[] = {(int32_t)find(m->items, "hit"), (int32_t)find(m->items, "rare")};
    float values[] = {2, 2}, weighted[] = {2 * 2.25f / 4, 2 * 2.25f / 1}, x1[3], x2[3];
    ASSERT_OK(amuse_rec_fold_in(m, items, values, 2, x1));
    m->opt.ipw = 0; /* the same solve, with the weights applied by hand */
    ASSERT_OK(amuse_rec_fold_in(m, items, weighted, 2, x2));
    for (int k = 0; k < 3; k++)
        ASSERT_NEAR(x1[k], x2[k], 1e-5 * (1 + fabs(x2[k])));
    o.ipw = 3;
    struct amuse_rec_model *bad = (void *)1;
    ASSERT_EQ_INT(amuse_rec_train(d, &o, &bad), AMUSE_EINVAL);
    ASSERT_TRUE(bad == NULL);
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
}

TEST(metrics_hand_computed)
{
    /* 5 items with training popularity 10, 5, 3, 1, 1 (total 20; the head is item 0 alone,
     * which holds 50% >= 20%). Test: user 0 likes {1, 3}, user 1 likes {0}, user 2 has none. */
    struct amuse_rec_csr t = {0};
    int64_t indptr[] = {0, 2, 3, 3};
    int32_t indices[] = {1, 3, 0};
    t.rows = 3;
    t.cols = 5;
    t.nnz = 3;
    t.indptr = indptr;
    t.indices = indices;
    float pop[] = {10, 5, 3, 1, 1};
    /* k = 3. user 0: [1, 2, 3] -> hits at ranks 1 and 3; user 1: [2, 0, -1] -> hit at rank 2 */
    int32_t recs[] = {1, 2, 3, 2, 0, -1, 4, 4, 4};
    struct amuse_rec_metrics x;
    ASSERT_OK(amuse_rec_evaluate(recs, 3, &t, pop, 5, 8, &x));
    ASSERT_EQ_INT(x.users, 2);
    ASSERT_NEAR(x.precision, (2.0 / 3 + 1.0 / 3) / 2, 1e-9);
    ASSERT_NEAR(x.recall, (2.0 / 2 + 1.0 / 1) / 2, 1e-9);
    double dcg0 = 1 + 1 / log2(4.0), idcg0 = 1 + 1 / log2(3.0);
    double dcg1 = 1 / log2(3.0), idcg1 = 1;
    ASSERT_NEAR(x.ndcg, (dcg0 / idcg0 + dcg1 / idcg1) / 2, 1e-9);
    double ap0 = (1.0 / 1 + 2.0 / 3) / 2, ap1 = (1.0 / 2) / 1;
    ASSERT_NEAR(x.map, (ap0 + ap1) / 2, 1e-9);
    /* exposure (user 2 is not evaluated): item0 1, item1 1, item2 2, item3 1, item4 0 */
    ASSERT_NEAR(x.coverage, 4.0 / 5, 1e-9);
    /* Gini of sorted exposure 0,1,1,1,2: sum (2i - n - 1) x_i / (n sum x), i = 1..5 */
    double g = ((2 - 6) * 0 + (4 - 6) * 1 + (6 - 6) * 1 + (8 - 6) * 1 + (10 - 6) * 2.0) / (5 * 5.0);
    ASSERT_NEAR(x.gini, g, 1e-9);
    ASSERT_NEAR(x.arp, ((5 + 3 + 1) / 3.0 + (3 + 10) / 2.0) / 2, 1e-9);
    ASSERT_NEAR(x.aplt, (3.0 / 3 + 1.0 / 2) / 2, 1e-9);
    double nov = (-log2(5 / 8.0) - log2(3 / 8.0) - log2(1 / 8.0) - log2(3 / 8.0) - log2(10 / 8.0)) / 5;
    ASSERT_NEAR(x.novelty, nov, 1e-9);
    ASSERT_EQ_INT(amuse_rec_evaluate(recs, 0, &t, pop, 5, 8, &x), AMUSE_EINVAL);
}

TEST(splits_per_user)
{
    struct amuse_rec_data *d = NULL, *tr = NULL, *te = NULL;
    ASSERT_OK(amuse_rec_data_new(&d));
    char item[16];
    for (int i = 0; i < 8; i++) { /* u: 8 events, newest first in the file; v: one event */
        snprintf(item, sizeof item, "i%d", i);
        ASSERT_OK(amuse_rec_data_add(d, "u", item, 1, 1000 - i));
    }
    ASSERT_OK(amuse_rec_data_add(d, "v", "i0", 1, 5));
    ASSERT_OK(amuse_rec_split(d, AMUSE_REC_SPLIT_TIME, 0.75, 1, &tr, &te));
    ASSERT_EQ_INT(tr->n, 7); /* 6 of u's + v's only event */
    ASSERT_EQ_INT(te->n, 2);
    for (int64_t e = 0; e < te->n; e++) /* the test part is u's two newest */
        ASSERT_TRUE(te->time[e] >= 999);
    amuse_rec_data_free(tr);
    amuse_rec_data_free(te);
    ASSERT_OK(amuse_rec_split(d, AMUSE_REC_SPLIT_RANDOM, 0.75, 42, &tr, &te));
    ASSERT_EQ_INT(tr->n, 7);
    ASSERT_EQ_INT(te->n, 2);
    struct amuse_rec_data *tr2 = NULL, *te2 = NULL;
    ASSERT_OK(amuse_rec_split(d, AMUSE_REC_SPLIT_RANDOM, 0.75, 42, &tr2, &te2));
    for (int64_t e = 0; e < te->n; e++) /* same seed, same split */
        ASSERT_EQ_INT(te->item[e], te2->item[e]);
    amuse_rec_data_free(tr);
    amuse_rec_data_free(te);
    ASSERT_EQ_INT(amuse_rec_split(d, AMUSE_REC_SPLIT_RANDOM, 1.0, 1, &tr, &te), AMUSE_EINVAL);
    ASSERT_TRUE(tr == NULL && te == NULL);
    /* a test part indexed by the training part's maps drops what training never saw */
    struct amuse_rec_data *x = NULL;
    int64_t dropped = -1;
    ASSERT_OK(amuse_rec_data_reindex(te2, tr2, &x, &dropped));
    ASSERT_EQ_INT(x->n + dropped, te2->n);
    amuse_rec_data_free(x);
    amuse_rec_data_free(tr2);
    amuse_rec_data_free(te2);
    amuse_rec_data_free(d);
}

TEST(read_file_and_bad_lines)
{
    struct amuse_rec_read_options o;
    amuse_rec_read_options_default(&o);
    o.min_value = 0.5;
    o.max_value = 5;
    struct amuse_rec_data *d = (void *)1;
    write_text("recsys_ok.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n"
                                "# a comment\n\n1,1029,3,1260759179\r\n2,31,4,12\n");
    ASSERT_OK(amuse_rec_data_read("recsys_ok.csv", &o, &d));
    ASSERT_EQ_INT(d->n, 3);
    ASSERT_EQ_INT(amuse_vocab_size(d->users), 2);
    ASSERT_EQ_INT(amuse_vocab_size(d->items), 2);
    ASSERT_NEAR(d->value[1], 3, 0);
    ASSERT_EQ_INT(d->time[1], 1260759179);
    amuse_rec_data_free(d);
    struct {
        const char *text, *message;
        int status;
    } bad[] = {
        {"u\ti\t4\t1\nu\ti2\t7\t2\n", "recsys_bad.tsv:2: value 7 is outside [0.5, 5]", AMUSE_EINVAL},
        {"u\ti\t4\t1\nu\n", "recsys_bad.tsv:2: expected user", AMUSE_EFORMAT},
        {"u\ti\t4\t1\nu\ti\tfour\t1\n", "recsys_bad.tsv:2: value 'four' is not a number", AMUSE_EFORMAT},
        {"u\ti\t4\t1\n\nu\ti\t4\tyesterday\n", "recsys_bad.tsv:3: timestamp 'yesterday'", AMUSE_EFORMAT},
        {"u\ti\t4\t1\tx\n", "recsys_bad.tsv:1: more than 4 fields", AMUSE_EFORMAT},
        {"u\ti j\t4\t1\n", "recsys_bad.tsv:1: item id", AMUSE_EINVAL},
        {"\t\t4\t1\n", "recsys_bad.tsv:1: user id", AMUSE_EINVAL},
        {"# only a comment\n", "recsys_bad.tsv: no events", AMUSE_EINVAL},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        write_text("recsys_bad.tsv", bad[c].text);
        d = (void *)1;
        int st = amuse_rec_data_read("recsys_bad.tsv", &o, &d);
        if (st != bad[c].status)
            TEST_FAIL("case %zu: status %d, expected %d", c, st, bad[c].status);
        ASSERT_TRUE(d == NULL);
        ASSERT_CONTAINS(amuse_last_error(), bad[c].message);
    }
    d = (void *)1;
    ASSERT_EQ_INT(amuse_rec_data_read("recsys_missing.tsv", &o, &d), AMUSE_ENOTFOUND);
    ASSERT_TRUE(d == NULL);
    unlink("recsys_ok.csv");
    unlink("recsys_bad.tsv");
}

TEST(bad_queries)
{
    struct amuse_rec_data *d = two_groups();
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_ITEMKNN);
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    struct amuse_rec_hit hits[4];
    int n = 7;
    struct amuse_rec_query q = {.user = 0, .k = 0};
    ASSERT_EQ_INT(amuse_rec_recommend(m, &q, hits, &n, NULL), AMUSE_EINVAL);
    ASSERT_CONTAINS(amuse_last_error(), "k = 0");
    ASSERT_EQ_INT(n, 0);
    q.k = AMUSE_REC_MAX_K + 1;
    ASSERT_EQ_INT(amuse_rec_recommend(m, &q, hits, &n, NULL), AMUSE_EINVAL);
    q.k = 4;
    q.user = m->n_users; /* unknown user */
    ASSERT_EQ_INT(amuse_rec_recommend(m, &q, hits, &n, NULL), AMUSE_EINVAL);
    ASSERT_CONTAINS(amuse_last_error(), "user index 12");
    int32_t items[] = {3, 99};
    struct amuse_rec_query fold = {.user = -1, .items = items, .n_items = 2, .k = 4};
    ASSERT_EQ_INT(amuse_rec_recommend(m, &fold, hits, &n, NULL), AMUSE_EINVAL);
    ASSERT_CONTAINS(amuse_last_error(), "item index 99");
    q.user = 0;
    q.tag = "Drama"; /* no item data attached */
    ASSERT_EQ_INT(amuse_rec_recommend(m, &q, hits, &n, NULL), AMUSE_EINVAL);
    float x[4];
    ASSERT_EQ_INT(amuse_rec_fold_in(m, items, NULL, 1, x), AMUSE_EINVAL); /* no factors */
    ASSERT_EQ_INT(amuse_rec_similar_items(m, 99, 4, hits, &n), AMUSE_EINVAL);
    ASSERT_EQ_INT(amuse_rec_similar_items(m, 0, 0, hits, &n), AMUSE_EINVAL);
    /* similar items of A0: the other five A items, never a B one */
    ASSERT_OK(amuse_rec_similar_items(m, find(m->items, "A0"), 4, hits, &n));
    ASSERT_EQ_INT(n, 4);
    for (int c = 0; c < n; c++) {
        ASSERT_TRUE(amuse_vocab_word(m->items, hits[c].item)[0] == 'A');
        ASSERT_TRUE(c == 0 || hits[c].score <= hits[c - 1].score);
    }
    o.factors = 0;
    struct amuse_rec_model *bad = (void *)1;
    ASSERT_EQ_INT(amuse_rec_train(d, &o, &bad), AMUSE_EINVAL);
    ASSERT_TRUE(bad == NULL);
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
}

TEST(model_files_round_trip_with_items)
{
    struct amuse_rec_data *d = two_groups();
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_BPR);
    o.factors = 4;
    o.iters = 50;
    struct amuse_rec_model *m = NULL, *back = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    write_text("recsys_items.tsv", "A0\tThe Red Star\tspace|drama\nA1\tRed Moon\tspace\n"
                                   "A2\tAlpha\tdrama\nB0\tBlue River\tnature\nZZ\tNot here\tx\n");
    int64_t unknown = 0;
    ASSERT_OK(amuse_rec_attach_items(m, "recsys_items.tsv", NULL, &unknown));
    ASSERT_EQ_INT(unknown, 1);
    ASSERT_OK(amuse_rec_model_save(m, "recsys_model"));
    ASSERT_OK(amuse_rec_model_load("recsys_model", &back));
    ASSERT_EQ_INT(back->n_users, m->n_users);
    ASSERT_EQ_INT(back->n_items, m->n_items);
    ASSERT_EQ_INT(back->seen->nnz, m->seen->nnz);
    ASSERT_STR_EQ(back->meta->title[find(back->items, "A1")], "Red Moon");
    for (int64_t u = 0; u < m->n_users; u++) {
        struct amuse_rec_query q = {.user = u, .k = 5, .filter_seen = 1, .explain = 1};
        struct amuse_rec_hit h1[5], h2[5];
        int n1, n2;
        ASSERT_OK(amuse_rec_recommend(m, &q, h1, &n1, NULL));
        ASSERT_OK(amuse_rec_recommend(back, &q, h2, &n2, NULL));
        ASSERT_EQ_INT(n1, n2);
        for (int c = 0; c < n1; c++) {
            ASSERT_EQ_INT(h1[c].item, h2[c].item);
            ASSERT_NEAR(h1[c].score, h2[c].score, 0);
            ASSERT_EQ_INT(h1[c].because, h2[c].because);
        }
    }
    /* tag filter: user a0 (lacks A0) with tag "space": only A0 and A1 carry it, a0 has A1 */
    struct amuse_rec_query q = {.user = find(back->users, "a0"), .k = 5, .filter_seen = 1,
                                .tag = "Space"};
    struct amuse_rec_hit h[5];
    int n;
    ASSERT_OK(amuse_rec_recommend(back, &q, h, &n, NULL));
    ASSERT_EQ_INT(n, 1);
    ASSERT_STR_EQ(amuse_vocab_word(back->items, h[0].item), "A0");
    /* a damaged file is an error naming the tensor, not a crash */
    struct amuse_rec_model *none = (void *)1;
    write_text("recsys_model/users.txt", "a0 5\n");
    ASSERT_TRUE(amuse_rec_model_load("recsys_model", &none) != AMUSE_OK);
    ASSERT_TRUE(none == NULL);
    ASSERT_CONTAINS(amuse_last_error(), "seen/counts");
    amuse_rec_model_free(m);
    amuse_rec_model_free(back);
    amuse_rec_data_free(d);
    unlink("recsys_items.tsv");
}

TEST(content_vectors_rank_cold_items)
{
    /* Word vectors where "space" and "star" point the same way and "river" elsewhere. */
    write_text("recsys_words.txt", "4 3\nspace 1 0 0\nstar 0.9 0.1 0\nriver 0 0 1\nred 0 1 0\n");
    struct amuse_word_vectors *wv = NULL;
    ASSERT_OK(amuse_word_vectors_load("recsys_words.txt", AMUSE_W2V_TEXT, &wv));
    struct amuse_rec_data *d = NULL;
    ASSERT_OK(amuse_rec_data_new(&d));
    ASSERT_OK(amuse_rec_data_add(d, "u", "liked", 1, 0));
    ASSERT_OK(amuse_rec_data_add(d, "v", "liked", 1, 0));
    ASSERT_OK(amuse_rec_data_add(d, "v", "other", 1, 0));
    ASSERT_OK(amuse_rec_data_add(d, "w", "cold_star", 0, 0));   /* declared, but value 0 */
    ASSERT_OK(amuse_rec_data_add(d, "w", "cold_river", 0, 0));
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_ITEMKNN);
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    write_text("recsys_items.tsv", "liked\tSpace\tspace\nother\tRed\tred\n"
                                   "cold_star\tStar\tspace\ncold_river\tRiver\triver\n");
    ASSERT_OK(amuse_rec_attach_items(m, "recsys_items.tsv", wv, NULL));
    ASSERT_EQ_INT(m->content_dim, 3);
    int32_t liked = (int32_t)find(m->items, "liked");
    struct amuse_rec_query q = {.user = -1, .items = &liked, .n_items = 1, .k = 3,
                                .filter_seen = 1, .content_weight = 1};
    struct amuse_rec_hit h[3];
    int n;
    ASSERT_OK(amuse_rec_recommend(m, &q, h, &n, NULL));
    ASSERT_TRUE(n >= 2);
    /* the space-like item without collaborative signal beats the one about rivers */
    int star = -1, river = -1;
    for (int c = 0; c < n; c++) {
        if (h[c].item == find(m->items, "cold_star"))
            star = c;
        if (h[c].item == find(m->items, "cold_river"))
            river = c;
    }
    ASSERT_TRUE(star >= 0 && (river < 0 || star < river));
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
    amuse_word_vectors_free(wv);
    unlink("recsys_items.tsv");
    unlink("recsys_words.txt");
}

TEST(tag_list_keeps_items_with_any_tag)
{
    struct amuse_rec_data *d = two_groups();
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, AMUSE_REC_ITEMKNN);
    struct amuse_rec_model *m = NULL;
    ASSERT_OK(amuse_rec_train(d, &o, &m));
    write_text("recsys_tags.tsv", "A0\tThe Red Star\tspace|drama\nA1\tRed Moon\tspace\n"
                                  "A2\tAlpha\tcomedy\nB0\tBlue River\tnature\n"
                                  "B1\tBlue Sky\tspaceship\n");
    ASSERT_OK(amuse_rec_attach_items(m, "recsys_tags.tsv", NULL, NULL));
    /* a cold user (no items): popular items with any of the tags, case ignored, whole tags only
     * ("spaceship" is not "space") */
    struct amuse_rec_query q = {.user = -1, .k = 12, .tag = "Comedy,NATURE,space"};
    struct amuse_rec_hit h[12];
    int n = 0, cold = 0;
    ASSERT_OK(amuse_rec_recommend(m, &q, h, &n, &cold));
    ASSERT_EQ_INT(cold, 1);
    ASSERT_EQ_INT(n, 4);
    int seen[4] = {0};
    const char *want[4] = {"A0", "A1", "A2", "B0"};
    for (int c = 0; c < n; c++)
        for (int w = 0; w < 4; w++)
            if (strcmp(amuse_vocab_word(m->items, h[c].item), want[w]) == 0)
                seen[w]++;
    for (int w = 0; w < 4; w++)
        ASSERT_EQ_INT(seen[w], 1);
    q.tag = "drama";
    ASSERT_OK(amuse_rec_recommend(m, &q, h, &n, NULL));
    ASSERT_EQ_INT(n, 1);
    ASSERT_STR_EQ(amuse_vocab_word(m->items, h[0].item), "A0");
    q.tag = ",,spac,";
    ASSERT_OK(amuse_rec_recommend(m, &q, h, &n, NULL));
    ASSERT_EQ_INT(n, 0);
    amuse_rec_model_free(m);
    amuse_rec_data_free(d);
    unlink("recsys_tags.tsv");
}

TEST(eval_file_round_trip_and_bad_files)
{
    ASSERT_TRUE(mkdir("recsys_evaldir", 0755) == 0 || errno == EEXIST);
    unlink("recsys_evaldir/eval.json");
    struct amuse_rec_eval e = {.split = "time", .fraction = 0.75, .seed = 7, .k = 10}, back;
    e.metrics = (struct amuse_rec_metrics){.precision = 0.125, .recall = 0.5, .ndcg = 0.25,
                                           .map = 0.2, .coverage = 0.0425, .gini = 0.875,
                                           .arp = 101.5, .aplt = 0.0625, .novelty = 3.5,
                                           .users = 671};
    ASSERT_EQ_INT(amuse_rec_eval_load("recsys_evaldir", &back), AMUSE_ENOTFOUND);
    ASSERT_OK(amuse_rec_eval_save(&e, "recsys_evaldir"));
    ASSERT_OK(amuse_rec_eval_load("recsys_evaldir", &back));
    ASSERT_STR_EQ(back.split, "time");
    ASSERT_NEAR(back.fraction, 0.75, 0);
    ASSERT_EQ_INT(back.seed, 7);
    ASSERT_EQ_INT(back.k, 10);
    ASSERT_EQ_INT(back.metrics.users, 671);
    ASSERT_NEAR(back.metrics.precision, 0.125, 1e-9);
    ASSERT_NEAR(back.metrics.coverage, 0.0425, 1e-9);
    ASSERT_NEAR(back.metrics.gini, 0.875, 1e-9);
    ASSERT_NEAR(back.metrics.arp, 101.5, 1e-9);
    ASSERT_NEAR(back.metrics.aplt, 0.0625, 1e-9);
    ASSERT_NEAR(back.metrics.novelty, 3.5, 1e-9);
    struct amuse_rec_eval bad = e;
    bad.k = 0;
    ASSERT_EQ_INT(amuse_rec_eval_save(&bad, "recsys_evaldir"), AMUSE_EINVAL);
    write_text("recsys_evaldir/eval.json", "{\"split\": \"random\", \"fraction\": 0.75, "
                                           "\"seed\": 1, \"k\": 10, \"users\": 3, "
                                           "\"precision\": 0.1}");
    ASSERT_EQ_INT(amuse_rec_eval_load("recsys_evaldir", &back), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "\"recall\"");
    ASSERT_TRUE(back.k == 0 && back.split[0] == '\0');
    write_text("recsys_evaldir/eval.json", "[1, 2]");
    ASSERT_EQ_INT(amuse_rec_eval_load("recsys_evaldir", &back), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "eval.json");
    unlink("recsys_evaldir/eval.json");
    rmdir("recsys_evaldir");
}

int main(void)
{
    amuse_set_threads(1);
    RUN(itemknn_two_groups);
    RUN(als_two_groups);
    RUN(bpr_two_groups);
    RUN(popularity_known_order);
    RUN(als_cg_matches_direct_solve);
    RUN(fold_in_equals_full_resolve);
    RUN(ipw_weights_values_by_inverse_popularity);
    RUN(metrics_hand_computed);
    RUN(splits_per_user);
    RUN(read_file_and_bad_lines);
    RUN(bad_queries);
    RUN(model_files_round_trip_with_items);
    RUN(content_vectors_rank_cold_items);
    RUN(tag_list_keeps_items_with_any_tag);
    RUN(eval_file_round_trip_and_bad_files);
    return test_summary();
}
