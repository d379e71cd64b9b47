/* test_sampling.c - the next-token sampler and stop strings (amuse/sampling.h), on crafted
 * distributions whose answers are known: filters never let an excluded token through, draws follow
 * the distribution, and a seed gives the same tokens every time. */
#include "amuse/sampling.h"

#include "test.h"

#include <math.h>

#define N_DRAWS 20000

static struct amuse_sampling defaults(void)
{
    struct amuse_sampling s;
    amuse_sampling_defaults(&s);
    return s;
}

/* Log-probabilities of a distribution (the sampler's scores). */
static void logs_of(const double *p, float *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = p[i] > 0 ? (float)log(p[i]) : -INFINITY;
}

/* Draw N_DRAWS tokens and count them. */
static void count_draws(const struct amuse_sampling *s, const float *scores, int n,
                        const uint8_t *allowed, int64_t *counts)
{
    struct amuse_sampler *sm;
    if (amuse_sampler_new(&sm, s, n) != 0)
        TEST_FAIL("amuse_sampler_new: %s", amuse_last_error());
    memset(counts, 0, (size_t)n * sizeof *counts);
    for (int i = 0; i < N_DRAWS; i++) {
        int32_t t = -1;
        int rc = amuse_sampler_next(sm, scores, NULL, 0, allowed, &t);
        if (rc || t < 0 || t >= n) {
            amuse_sampler_free(sm);
            TEST_FAIL("amuse_sampler_next: status %d, token %d of %d: %s", rc, t, n,
                      amuse_last_error());
        }
        counts[t]++;
    }
    amuse_sampler_free(sm);
}

TEST(check_names_the_field)
{
    struct amuse_sampling s = defaults();
    ASSERT_OK(amuse_sampling_check(&s));
    s.temperature = -0.5f;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "temperature: -0.5 is outside");
    s = defaults();
    s.temperature = NAN;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "temperature");
    s = defaults();
    s.top_p = 0.0f;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "top_p: 0 is outside (0, 1]");
    s.top_p = 1.5f;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "top_p: 1.5");
    s = defaults();
    s.min_p = 1.0f;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "min_p");
    s = defaults();
    s.top_k = -1;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "top_k");
    s = defaults();
    s.repetition_penalty = 0.5f;
    ASSERT_FAILS(amuse_sampling_check(&s), AMUSE_EINVAL, "repetition_penalty");
    struct amuse_sampler *sm = (struct amuse_sampler *)&s;
    ASSERT_FAILS(amuse_sampler_new(&sm, &s, 10), AMUSE_EINVAL, "repetition_penalty");
    ASSERT_TRUE(sm == NULL);
    s = defaults();
    ASSERT_FAILS(amuse_sampler_new(&sm, &s, 0), AMUSE_EINVAL, "vocabulary size 0");
}

TEST(greedy_takes_the_best_and_the_lowest_id_on_ties)
{
    struct amuse_sampling s = defaults();
    s.temperature = 0.0f;
    struct amuse_sampler *sm;
    ASSERT_OK(amuse_sampler_new(&sm, &s, 5));
    const float a[5] = {0.1f, 3.0f, -2.0f, 3.0f, 2.9f};
    int32_t t = -1;
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(amuse_sampler_next(sm, a, NULL, 0, NULL, &t));
        ASSERT_EQ_INT(t, 1);
    }
    const uint8_t allow[5] = {1, 0, 1, 1, 1};
    ASSERT_OK(amuse_sampler_next(sm, a, NULL, 0, allow, &t));
    ASSERT_EQ_INT(t, 3);
    amuse_sampler_free(sm);
}

TEST(same_seed_same_tokens)
{
    float scores[64];
    for (int i = 0; i < 64; i++)
        scores[i] = (float)((i * 37) % 17) * 0.25f;
    struct amuse_sampling s = defaults();
    s.seed = 42;
    s.top_k = 20;
    s.top_p = 0.9f;
    int32_t a[500], b[500], c[500];
    struct amuse_sampler *sm;
    for (int run = 0; run < 3; run++) {
        s.seed = run == 2 ? 43 : 42;
        ASSERT_OK(amuse_sampler_new(&sm, &s, 64));
        int32_t *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 500; i++)
            ASSERT_OK(amuse_sampler_next(sm, scores, out, i, NULL, &out[i]));
        amuse_sampler_free(sm);
    }
    ASSERT_TRUE(memcmp(a, b, sizeof a) == 0);
    ASSERT_TRUE(memcmp(a, c, sizeof a) != 0);
    /* Reseeding a used sampler restarts the stream. */
    s.seed = 42;
    ASSERT_OK(amuse_sampler_new(&sm, &s, 64));
    int32_t t;
    for (int i = 0; i < 17; i++)
        ASSERT_OK(amuse_sampler_next(sm, scores, NULL, 0, NULL, &t));
    amuse_sampler_reseed(sm, 42);
    for (int i = 0; i < 500; i++) {
        ASSERT_OK(amuse_sampler_next(sm, scores, a, i, NULL, &t));
        ASSERT_EQ_INT(t, a[i]);
    }
    amuse_sampler_free(sm);
}

TEST(draws_follow_the_distribution_and_temperature)
{
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    float scores[4];
    logs_of(p, scores, 4);
    int64_t counts[4];
    struct amuse_sampling s = defaults();
    s.seed = 7;
    count_draws(&s, scores, 4, NULL, counts);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR((double)counts[i] / N_DRAWS, p[i], 0.015);
    /* Temperature 0.5 squares the probabilities before renormalising. */
    s.temperature = 0.5f;
    count_draws(&s, scores, 4, NULL, counts);
    double z = 0;
    for (int i = 0; i < 4; i++)
        z += p[i] * p[i];
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR((double)counts[i] / N_DRAWS, p[i] * p[i] / z, 0.015);
}

TEST(top_k_never_emits_an_excluded_token)
{
    enum { V = 50 };
    float scores[V];
    for (int i = 0; i < V; i++)
        scores[i] = (float)((i * 7919) % 101) / 10.0f; /* a scrambled order */
    /* The five best ids by score. */
    int best[5], nb = 0;
    for (int k = 0; k < 5; k++) {
        int arg = -1;
        for (int i = 0; i < V; i++) {
            int taken = 0;
            for (int j = 0; j < nb; j++)
                taken |= best[j] == i;
            if (!taken && (arg < 0 || scores[i] > scores[arg]))
                arg = i;
        }
        best[nb++] = arg;
    }
    struct amuse_sampling s = defaults();
    s.top_k = 5;
    s.temperature = 3.0f; /* flat, so excluded tokens would show up if they could */
    int64_t counts[V];
    count_draws(&s, scores, V, NULL, counts);
    for (int i = 0; i < V; i++) {
        int kept = 0;
        for (int j = 0; j < 5; j++)
            kept |= best[j] == i;
        if (kept)
            ASSERT_TRUE(counts[i] > 0);
        else
            ASSERT_EQ_INT(counts[i], 0);
    }
}

TEST(top_p_keeps_the_smallest_nucleus)
{
    const double p[5] = {0.05, 0.5, 0.15, 0.3, 0.0};
    float scores[5];
    logs_of(p, scores, 5);
    int64_t counts[5];
    struct amuse_sampling s = defaults();
    s.top_p = 0.75f; /* 0.5 + 0.3 reaches it: ids 1 and 3 */
    count_draws(&s, scores, 5, NULL, counts);
    ASSERT_EQ_INT(counts[0] + counts[2] + counts[4], 0);
    ASSERT_NEAR((double)counts[1] / N_DRAWS, 0.5 / 0.8, 0.015);
    s.top_p = 0.85f; /* needs 0.15 too */
    count_draws(&s, scores, 5, NULL, counts);
    ASSERT_EQ_INT(counts[0] + counts[4], 0);
    ASSERT_TRUE(counts[2] > 0);
    s.top_p = 0.3f; /* the best token alone */
    count_draws(&s, scores, 5, NULL, counts);
    ASSERT_EQ_INT(counts[1], N_DRAWS);
}

TEST(min_p_drops_tokens_below_a_share_of_the_best)
{
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    float scores[4];
    logs_of(p, scores, 4);
    int64_t counts[4];
    struct amuse_sampling s = defaults();
    s.min_p = 0.2f; /* threshold 0.1: id 3 goes */
    count_draws(&s, scores, 4, NULL, counts);
    ASSERT_EQ_INT(counts[3], 0);
    ASSERT_TRUE(counts[2] > 0);
    s.min_p = 0.5f; /* threshold 0.25: ids 2 and 3 go */
    count_draws(&s, scores, 4, NULL, counts);
    ASSERT_EQ_INT(counts[2] + counts[3], 0);
    ASSERT_NEAR((double)counts[0] / N_DRAWS, 0.5 / 0.8, 0.015);
}

TEST(allowed_mask_nan_and_minus_infinity)
{
    const float scores[4] = {NAN, 1.0f, -INFINITY, 0.5f};
    const uint8_t allowed[4] = {1, 0, 1, 1};
    int64_t counts[4];
    struct amuse_sampling s = defaults();
    count_draws(&s, scores, 4, allowed, counts);
    ASSERT_EQ_INT(counts[3], N_DRAWS);
    const uint8_t none[4] = {0, 0, 0, 0};
    struct amuse_sampler *sm;
    ASSERT_OK(amuse_sampler_new(&sm, &s, 4));
    int32_t t;
    ASSERT_FAILS(amuse_sampler_next(sm, scores, NULL, 0, none, &t), AMUSE_EINVAL, "no token");
    const float nans[4] = {NAN, NAN, NAN, NAN};
    ASSERT_FAILS(amuse_sampler_next(sm, nans, NULL, 0, NULL, &t), AMUSE_EINVAL, "NaN");
    amuse_sampler_free(sm);
}

TEST(repetition_penalty_divides_positive_and_multiplies_negative_scores)
{
    struct amuse_sampling s = defaults();
    s.temperature = 0.0f;
    s.repetition_penalty = 2.0f;
    s.repetition_window = 2;
    struct amuse_sampler *sm;
    ASSERT_OK(amuse_sampler_new(&sm, &s, 3));
    int32_t t;
    const float pos[3] = {2.0f, 1.9f, 0.0f};
    const int32_t hist[3] = {0, 0, 0};
    ASSERT_OK(amuse_sampler_next(sm, pos, hist, 3, NULL, &t));
    ASSERT_EQ_INT(t, 1); /* 2.0 / 2 = 1.0 < 1.9, once even though 0 repeats */
    const float neg[3] = {-1.0f, -1.5f, -9.0f};
    ASSERT_OK(amuse_sampler_next(sm, neg, hist, 3, NULL, &t));
    ASSERT_EQ_INT(t, 1); /* -1 * 2 = -2 < -1.5 */
    /* Outside the window of the last 2 tokens, no penalty. */
    const int32_t old[3] = {0, 2, 2};
    ASSERT_OK(amuse_sampler_next(sm, pos, old, 3, NULL, &t));
    ASSERT_EQ_INT(t, 0);
    /* The caller's scores are untouched. */
    ASSERT_NEAR(pos[0], 2.0, 0);
    amuse_sampler_free(sm);
}

/* From probabilities: with neutral settings the draw reads them directly and picks what the log
 * path picks for the same seed (the same random number; a rounding difference could only move a
 * draw that falls within 1e-6 of a boundary, which these seeds do not); disallowed and zero-mass
 * ids never come out; other settings go through the log path and agree exactly. */
TEST(draws_from_probabilities_match_the_log_path)
{
    const double p[6] = {0.4, 0.25, 0.15, 0.1, 0.1, 0.0};
    float scores[6], probs[6];
    logs_of(p, scores, 6);
    uint8_t allowed[6] = {1, 1, 1, 0, 1, 1};
    for (int variant = 0; variant < 2; variant++) {
        struct amuse_sampling s = defaults();
        s.seed = 11;
        if (variant == 1)
            s.temperature = 0.7f;
        struct amuse_sampler *a, *b;
        ASSERT_OK(amuse_sampler_new(&a, &s, 6));
        ASSERT_OK(amuse_sampler_new(&b, &s, 6));
        int64_t counts[6] = {0};
        int same = 0;
        for (int i = 0; i < N_DRAWS; i++) {
            int32_t ta = -1, tb = -2;
            ASSERT_OK(amuse_sampler_next(a, scores, NULL, 0, allowed, &ta));
            for (int k = 0; k < 6; k++)
                probs[k] = (float)p[k];
            ASSERT_OK(amuse_sampler_next_probs(b, probs, NULL, 0, allowed, &tb));
            ASSERT_TRUE(tb >= 0 && tb < 6 && allowed[tb] && p[tb] > 0);
            same += ta == tb;
            counts[tb]++;
        }
        ASSERT_EQ_INT(same, N_DRAWS);
        if (variant == 0) /* renormalised over the allowed mass, 0.9 */
            for (int k = 0; k < 6; k++)
                ASSERT_NEAR((double)counts[k] / N_DRAWS, allowed[k] ? p[k] / 0.9 : 0.0, 0.015);
        amuse_sampler_free(a);
        amuse_sampler_free(b);
    }
}

TEST(log_probs)
{
    float p[3] = {1.0f, 0.25f, 0.0f};
    amuse_sampler_log_probs(p, 3);
    ASSERT_NEAR(p[0], 0.0, 1e-7);
    ASSERT_NEAR(p[1], log(0.25), 1e-6);
    ASSERT_TRUE(isfinite(p[2]) && p[2] < -60.0f);
}

TEST(stop_strings_and_what_to_hold_back)
{
    const char *stops[3] = {"world", "", "lo w"};
    size_t hold = 99;
    ASSERT_EQ_INT(amuse_stop_find("hello world", 11, stops, 3, &hold), 3);
    ASSERT_EQ_INT(hold, 0);
    ASSERT_EQ_INT(amuse_stop_find("hello wor", 9, stops + 0, 1, &hold), -1);
    ASSERT_EQ_INT(hold, 3); /* "wor" may become "world" */
    ASSERT_EQ_INT(amuse_stop_find("hello wor", 9, stops, 3, &hold), 3);
    ASSERT_EQ_INT(amuse_stop_find("hel", 3, stops, 3, &hold), -1);
    ASSERT_EQ_INT(hold, 1); /* "l" may become "lo w" */
    ASSERT_EQ_INT(amuse_stop_find("he", 2, stops, 3, &hold), -1);
    ASSERT_EQ_INT(hold, 0);
    ASSERT_EQ_INT(amuse_stop_find("hello", 5, stops, 3, &hold), -1);
    ASSERT_EQ_INT(hold, 2); /* "lo" may become "lo w" */
    ASSERT_EQ_INT(amuse_stop_find("", 0, stops, 3, &hold), -1);
    ASSERT_EQ_INT(hold, 0);
    const char *cn[1] = {"\xe3\x80\x82"}; /* U+3002, the full stop */
    ASSERT_EQ_INT(amuse_stop_find("\xe6\x98\xa5\xe3\x80", 5, cn, 1, &hold), -1);
    ASSERT_EQ_INT(hold, 2);
    ASSERT_EQ_INT(amuse_stop_find("\xe6\x98\xa5\xe3\x80\x82", 6, cn, 1, NULL), 3);
}

int main(void)
{
    RUN(check_names_the_field);
    RUN(greedy_takes_the_best_and_the_lowest_id_on_ties);
    RUN(same_seed_same_tokens);
    RUN(draws_follow_the_distribution_and_temperature);
    RUN(top_k_never_emits_an_excluded_token);
    RUN(top_p_keeps_the_smallest_nucleus);
    RUN(min_p_drops_tokens_below_a_share_of_the_best);
    RUN(allowed_mask_nan_and_minus_infinity);
    RUN(repetition_penalty_divides_positive_and_multiplies_negative_scores);
    RUN(draws_from_probabilities_match_the_log_path);
    RUN(log_probs);
    RUN(stop_strings_and_what_to_hold_back);
    return test_summary();
}
