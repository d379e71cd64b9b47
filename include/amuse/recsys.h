/* amuse/recsys.h - recommendations from user-item interactions: data and splits, the popularity
 * baseline, item-kNN, implicit ALS, BPR, fold-in of new users, content vectors for cold-start
 * items, top-k with filters and explanations, model files, and accuracy and bias metrics.
 *
 * Input data are (user, item, value, time) events. User and item ids are strings (1..1024 bytes of
 * UTF-8, no white space) mapped to dense indices 0..n-1 in first-seen order; the maps are saved with
 * a model. Repeated (user, item) pairs are summed (plays add up), keeping the latest time.
 *
 * Algorithms:
 *  - popularity: items by number of users who interacted with them;
 *  - item-kNN: cosine between item columns of the binary user x item matrix, shrunk
 *    (sim = dot / (|a| |b| + shrink)), keeping the top `neighbours` per item; a user's score for
 *    an item is the sum of its similarities to the items the user has;
 *  - implicit ALS (Hu, Koren and Volinsky 2008): preference 1 for every observed pair with
 *    confidence 1 + alpha * value, squared loss plus reg * |x|^2, alternating exact-in-the-limit
 *    per-row solves by conjugate gradient warm-started from the previous factors, with Y^T Y
 *    computed once per half-iteration (as the `implicit` library does); a direct dense (Cholesky)
 *    solve is kept as the reference;
 *  - BPR (Rendle et al. 2009): pairwise log-sigmoid loss, Hogwild SGD over sampled
 *    (user, positive, negative) triples, with an item bias; seeded per thread.
 *
 * Not here: storage of events (the server's job), sequence-aware models, GPU training.
 * Every function returns AMUSE_OK or a negative status and sets amuse_last_error(); nothing prints.
 * On failure every *out is NULL.
 */
#ifndef AMUSE_RECSYS_H
#define AMUSE_RECSYS_H

#include "amuse/error.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amuse_vocab;
struct amuse_word_vectors;

/* Hard caps on what input can grow. Item indices are stored exactly in F32 tensors, hence 2^24. */
#define AMUSE_REC_MAX_USERS 100000000LL
#define AMUSE_REC_MAX_ITEMS 16777216LL
#define AMUSE_REC_MAX_EVENTS 2000000000LL
#define AMUSE_REC_MAX_LINE 65536      /* bytes in one line of an events or items file */
#define AMUSE_REC_MAX_FACTORS 1024
#define AMUSE_REC_MAX_K 10000         /* recommendations per request */

/* ------------------------------------------------------------------------------------ data */

/* Events with their id maps. users/items are owned; indices in user[]/item[] point into them. */
struct amuse_rec_data {
    struct amuse_vocab *users, *items;
    int64_t n;        /* events */
    int64_t capacity;
    int32_t *user, *item;
    float *value;
    int64_t *time;
};

/* How a file of events is read. */
struct amuse_rec_read_options {
    double min_value, max_value; /* values outside [min, max] are an error naming file:line */
    int value_missing_ok;        /* 1: a line "user item" gets value 1 and time 0 */
};
AMUSE_API void amuse_rec_read_options_default(struct amuse_rec_read_options *o); /* [-1e9, 1e9] */

/* Empty data (no events, empty id maps). Free with amuse_rec_data_free (NULL is fine). */
AMUSE_API int amuse_rec_data_new(struct amuse_rec_data **out);
AMUSE_API void amuse_rec_data_free(struct amuse_rec_data *d);

/* Add one event; new ids are added to the maps. AMUSE_EINVAL for a bad id or a non-finite
 * value; AMUSE_ETOOBIG past the caps. */
AMUSE_API int amuse_rec_data_add(struct amuse_rec_data *d, const char *user, const char *item,
                                 float value, int64_t time);

/* Read events: one per line, "user SEP item SEP value SEP timestamp", SEP a tab or a comma (the
 * first data line decides; a tab if it has one). Blank lines and lines starting with '#' are
 * skipped, and so is a first line whose value field is not a number (a CSV header). The timestamp
 * is an integer (seconds; 0 if the field is absent). Errors name path:line: a missing field, a
 * value that is not a number or is outside the options' range, a bad timestamp, a bad id, an
 * over-long line. */
AMUSE_API int amuse_rec_data_read(const char *path, const struct amuse_rec_read_options *o,
                                  struct amuse_rec_data **out);

/* Write "user\titem\tvalue\ttime" lines atomically (the format read above). */
AMUSE_API int amuse_rec_data_write(const struct amuse_rec_data *d, const char *path);

enum amuse_rec_split_kind {
    AMUSE_REC_SPLIT_RANDOM = 0, /* per user: a seeded shuffle, the first fraction to train */
    AMUSE_REC_SPLIT_TIME = 1    /* per user: the earliest fraction (by time, then file order) */
};

/* Split every user's events: round(fraction * n_u) of them into *train, the rest into *test (a
 * user with one event keeps it in train). Both copies keep d's id maps (same indices).
 * fraction must be in (0, 1). It splits events, not pairs: a (user, item) pair repeated in d can
 * fall on both sides (MovieLens has no repeats; merge them first where it matters). */
AMUSE_API int amuse_rec_split(const struct amuse_rec_data *d, int kind, double fraction,
                              uint64_t seed, struct amuse_rec_data **train,
                              struct amuse_rec_data **test);

/* A copy of d's events under other id maps. ref == NULL: fresh maps holding only the ids that
 * occur in d's events (in first-seen order), so ids without events drop out. ref given: ref's maps
 * (copied), and events whose user or item ref does not know are dropped and counted in *dropped
 * (may be NULL). Used to index a test split by its training split's maps. */
AMUSE_API int amuse_rec_data_reindex(const struct amuse_rec_data *d,
                                     const struct amuse_rec_data *ref,
                                     struct amuse_rec_data **out, int64_t *dropped);

/* Compressed sparse rows: row r holds indices[indptr[r]..indptr[r+1]) (sorted, unique) with
 * values and times. */
struct amuse_rec_csr {
    int64_t rows, cols, nnz;
    int64_t *indptr;
    int32_t *indices;
    float *values;
    int64_t *times;
};

/* The users x items matrix of d (transpose = 1: items x users). Free with amuse_rec_csr_free. */
AMUSE_API int amuse_rec_csr_build(const struct amuse_rec_data *d, int transpose,
                                  struct amuse_rec_csr **out);
AMUSE_API void amuse_rec_csr_free(struct amuse_rec_csr *m);

/* ------------------------------------------------------------------------------ item data */

/* Titles and tags of items, for content vectors, tag filters and display. Read from
 * "id SEP title SEP tags" lines (tags separated by '|'), SEP a tab. Items not in the model's map
 * are skipped and counted in *unknown (may be NULL). */
struct amuse_rec_items {
    int64_t n;      /* rows = the model's item count */
    char **title;   /* NULL when unknown */
    char **tags;    /* "a|b|c" or NULL */
};

/* ------------------------------------------------------------------------------- training */

enum amuse_rec_algo {
    AMUSE_REC_POP = 0,
    AMUSE_REC_ITEMKNN = 1,
    AMUSE_REC_ALS = 2,
    AMUSE_REC_BPR = 3
};

/* "pop", "itemknn", "als", "bpr"; NULL for an unknown value. And back (-1 if unknown). */
AMUSE_API const char *amuse_rec_algo_name(int algo);
AMUSE_API int amuse_rec_algo_parse(const char *name);

enum amuse_rec_solver { AMUSE_REC_SOLVER_CG = 0, AMUSE_REC_SOLVER_DIRECT = 1 };

struct amuse_rec_options {
    int algo;
    int factors;        /* ALS, BPR (64) */
    int iters;          /* ALS iterations, BPR epochs (15; BPR 100) */
    double reg;         /* ALS L2 (0.1); BPR L2 (0.01) */
    double alpha;       /* ALS confidence 1 + alpha * value (10) */
    int solver;         /* ALS: CG (default) or the direct dense solve */
    int cg_steps;       /* ALS CG steps per row and half-iteration (3) */
    double learning_rate; /* BPR (0.05) */
    int neighbours;     /* item-kNN neighbours kept per item (100; also used for explanations) */
    double shrink;      /* item-kNN shrinkage (10) */
    int binary;         /* 1: every value becomes 1 before training (0) */
    double ipw;         /* ALS: inverse-propensity weighting, each value times
                           (mean popularity / item popularity)^ipw, in training and fold-in (0) */
    uint64_t seed;      /* initial factors, BPR sampling (1) */
};
AMUSE_API void amuse_rec_options_default(struct amuse_rec_options *o, int algo);

/* A trained recommender. Everything is owned by the model. */
struct amuse_rec_model {
    struct amuse_rec_options opt;
    struct amuse_vocab *users, *items; /* id maps (count = events in training) */
    int64_t n_users, n_items;
    int factors;                       /* 0 for pop and item-kNN */
    float *user_factors;               /* n_users x factors */
    float *item_factors;               /* n_items x factors */
    float *item_bias;                  /* BPR only, else NULL */
    float *item_gram;                  /* factors x factors: Y^T Y + reg I, for fold-in */
    float *popularity;                 /* n_items: users who interacted */
    double mean_popularity;            /* over all items */
    int neighbours;                    /* per item */
    int32_t *nbr_index;                /* n_items x neighbours, -1 padded, best first */
    float *nbr_sim;
    struct amuse_rec_csr *seen;        /* users x items training matrix */
    struct amuse_rec_items *meta;      /* NULL when no item file was given */
    int content_dim;                   /* 0 when no content vectors */
    float *content;                    /* n_items x content_dim, unit rows (zero if no words) */
    double train_seconds, seconds_per_iter;
};

/* Train on d (its id maps are copied). Errors: AMUSE_EINVAL for bad options or empty data. */
AMUSE_API int amuse_rec_train(const struct amuse_rec_data *d, const struct amuse_rec_options *o,
                              struct amuse_rec_model **out);
AMUSE_API void amuse_rec_model_free(struct amuse_rec_model *m);

/* One ALS half-iteration for rows [0, A_rows) of A against fixed B (exposed for tests):
 * A[r] = argmin sum_c conf (p - a.b_c)^2 + reg |a|^2 over the row's entries of M, with the given
 * solver. Rows without entries become zero. */
AMUSE_API int amuse_rec_als_half(float *A, const float *B, int64_t b_rows, int f,
                                 const struct amuse_rec_csr *M, double alpha, double reg,
                                 int solver, int cg_steps);

/* Attach item titles/tags from a file (see struct amuse_rec_items) and, when wv is not NULL,
 * build content vectors: the mean of the unit word vectors of the title's and tags' words
 * (ASCII-lower-cased, split at anything but letters and digits), normalised. */
AMUSE_API int amuse_rec_attach_items(struct amuse_rec_model *m, const char *path,
                                     struct amuse_word_vectors *wv, int64_t *unknown);

/* ------------------------------------------------------------------------- recommending */

struct amuse_rec_query {
    int64_t user;             /* a known user's index, or -1 to use items/values below */
    const int32_t *items;     /* fold-in: a user's item indices (when user < 0) */
    const float *values;      /* their values (NULL: 1 each) */
    int n_items;
    int k;                    /* 1..AMUSE_REC_MAX_K */
    int filter_seen;          /* drop the user's own items */
    int explain;              /* fill struct amuse_rec_hit.because: the user's item with the
                                 largest item-kNN similarity to the hit (either in the other's
                                 neighbour list); for a hit with no such link, the largest
                                 cosine of the factors; -1 when nothing is positive */
    const char *tag;          /* keep only items with one of these tags ("Comedy" or a
                                 comma-separated list "Comedy,Drama", ASCII case ignored;
                                 needs attached items), or NULL */
    double debias;            /* popularity penalty 0..10: re-rank the top candidates by
                                 norm(score) - debias * log(1+pop)/log(1+max pop) */
    double content_weight;    /* blend with content similarity: an item with n events gets
                                 weight content_weight / (1 + n) (needs content vectors) */
};

struct amuse_rec_hit {
    int64_t item;
    float score;
    int64_t because; /* the user's item most similar to this one (the explanation), or -1 */
};

/* Top-k for one user, best first, into hits (room for q->k); *n receives how many (fewer when
 * filters leave fewer). A user with no items gets the most popular items and *cold = 1 (cold may
 * be NULL). Errors: AMUSE_EINVAL for k out of range, an unknown user index or item index, a tag
 * filter without item data. Thread-safe for concurrent readers of one model. */
AMUSE_API int amuse_rec_recommend(const struct amuse_rec_model *m, const struct amuse_rec_query *q,
                                  struct amuse_rec_hit *hits, int *n, int *cold);

/* Fold-in: the factors (length m->factors) of a user with these items, against the fixed item
 * factors, by the closed-form ALS solve (for BPR models the same least-squares fit). AMUSE_EINVAL
 * for a model without factors or an unknown item index. */
AMUSE_API int amuse_rec_fold_in(const struct amuse_rec_model *m, const int32_t *items,
                                const float *values, int n, float *factors);

/* Similarity of two items: item-kNN neighbour similarity when j is among i's neighbours, else
 * the cosine of their factors (0 without factors). */
AMUSE_API float amuse_rec_item_similarity(const struct amuse_rec_model *m, int64_t i, int64_t j);

/* Items most similar to item (its item-kNN neighbours: cosine of the binary item columns, with
 * shrinkage), best first, up to k into hits (because = item); *n receives how many. AMUSE_EINVAL
 * for an unknown item index or k out of range. */
AMUSE_API int amuse_rec_similar_items(const struct amuse_rec_model *m, int64_t item, int k,
                                      struct amuse_rec_hit *hits, int *n);

/* ---------------------------------------------------------------------------- model files */

/* Write a model directory atomically file by file: config.json (algorithm, options, sizes),
 * model.safetensors (factors, bias, popularity, neighbours, seen items, content vectors),
 * users.txt and items.txt (id maps, "id count" lines in index order) and, with item data,
 * item_meta.tsv. The directory is created. */
AMUSE_API int amuse_rec_model_save(const struct amuse_rec_model *m, const char *dir);
/* Load what amuse_rec_model_save wrote; errors name the file and tensor at fault. */
AMUSE_API int amuse_rec_model_load(const char *dir, struct amuse_rec_model **out);

/* -------------------------------------------------------------------------------- metrics */

/* Accuracy and bias of top-k lists. recs: n_users x k item indices, -1 where a list is short;
 * truth: users x items test matrix (rows with no entries are skipped); popularity: n_items
 * training counts (users per item); n_train_users for novelty.
 *  precision = hits / k; recall = hits / |rel|; ndcg = DCG / ideal DCG over min(k, |rel|);
 *  map = sum of precision@r at hits / min(k, |rel|); all averaged over evaluated users.
 *  coverage = distinct recommended items / n_items; gini = Gini index of the exposure counts
 *  of all n_items items (0 equal, 1 one item); arp = mean popularity of recommended items per
 *  user, averaged; aplt = share of recommended items in the long tail (items outside the
 *  most popular ones that make up 20% of the training events), averaged over users;
 *  novelty = mean of -log2(max(pop, 1) / n_train_users) over recommended items. */
struct amuse_rec_metrics {
    double precision, recall, ndcg, map;
    double coverage, gini, arp, aplt, novelty;
    int64_t users; /* users evaluated */
};
AMUSE_API int amuse_rec_evaluate(const int32_t *recs, int k, const struct amuse_rec_csr *truth,
                                 const float *popularity, int64_t n_items, int64_t n_train_users,
                                 struct amuse_rec_metrics *out);

/* ------------------------------------------------------------------ training-time evaluation */

/* What a model directory says about its own accuracy and bias (eval.json, written by
 * `amuse recommend train`): the same options trained on a per-user split of the training data
 * and scored on the held-out rest, so a server can show the figures of the model it serves. */
struct amuse_rec_eval {
    char split[16];     /* "random" or "time" */
    double fraction;    /* of each user's events used to train */
    uint64_t seed;
    int k;
    struct amuse_rec_metrics metrics;
};

/* Write dir/eval.json atomically (dir must exist). AMUSE_EINVAL for a split name that does not
 * fit or k < 1. */
AMUSE_API int amuse_rec_eval_save(const struct amuse_rec_eval *e, const char *dir);
/* Read dir/eval.json: AMUSE_ENOTFOUND when the model has none, AMUSE_EFORMAT naming the file
 * and field for anything else that is wrong. On failure *out is zeroed. */
AMUSE_API int amuse_rec_eval_load(const char *dir, struct amuse_rec_eval *out);

#ifdef __cplusplus
}
#endif
#endif
