/* cmd_recommend.c - `amuse recommend`: train a recommender into a model directory, evaluate every
 * algorithm side by side on a per-user random or time split (accuracy and popularity-bias
 * figures, a debias trade-off table), and list recommendations for one user with explanations.
 * It does not store events or serve requests (the server does); train --tenant reads a tenant's
 * events from the server's database (recsys/events_store.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/recsys.h"
#include "amuse/runtime.h"
#include "amuse/word2vec.h"
#include "core/internal.h"
#include "recsys/events_store.h"
#include "core/mpi.h" /* ALS across the ranks of an mpirun job */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void help(FILE *out)
{
    fprintf(out,
            "usage: amuse recommend <train|eval|for|similar> [options]\n\n"
            "  train --data EVENTS --algo als|bpr|itemknn|pop --output DIR\n"
            "        [--items ITEMS] [--vectors WORDS]   train and write a model directory;\n"
            "        [--no-eval]  it first trains the same way on a per-user split (--split,\n"
            "        --fraction, --seed, -k) and writes the held-out figures to DIR/eval.json\n"
            "        (or --tenant T [--db PATH] for a tenant's events and items in the server's\n"
            "        database, loaded by POST /v1/events or amuse events import)\n"
            "  eval  --data EVENTS [--split random|time] [--algos LIST] [--json FILE]\n"
            "        every algorithm on a per-user 75/25 split: accuracy and bias side by side\n"
            "  for   DIR --user ID [-k 10]              a user's top-k with explanations\n"
            "        (or --liked ID,ID,... for a user the model has not seen: fold-in)\n"
            "  similar DIR --item ID [-k 10]            items most like one item\n\n"
            "EVENTS: one event per line, user<TAB>item<TAB>value<TAB>unix time (or commas); '#'\n"
            "lines, blank lines and a CSV header are skipped; repeated pairs add up.\n"
            "ITEMS: item<TAB>title<TAB>tags (tags separated by '|'), for titles, --tag filters and\n"
            "content vectors (with --vectors, a word2vec file) for items with few events.\n\n"
            "training options:\n"
            "  --factors N (64)  --iters N (ALS 15, BPR 100)  --reg X (ALS 0.1, BPR 0.01)\n"
            "  --alpha X (10)    ALS confidence 1 + alpha * value\n"
            "  --cg-steps N (3)  --solver cg|direct (cg)\n"
            "  --lr X (0.05)     BPR learning rate\n"
            "  --neighbours N (100) --shrink X (10)  item-kNN\n"
            "  --binary          treat every event as value 1\n"
            "  --ipw X (0)       ALS: weight each event by (mean pop / item pop)^X, X in [0, 2]\n"
            "  --min-value X --max-value X  reject values outside the range (file:line)\n"
            "  --seed N (1)  --threads N (all cores)\n"
            "Under 'mpirun -np N' (a build with MPI), 'train --algo als' splits users and items\n"
            "across the ranks and gathers the factors after each half-iteration; rank 0 writes.\n\n"
            "eval options:\n"
            "  --split random|time (random)  --seed N (1)  --fraction X (0.75)\n"
            "  --algos pop,itemknn,als,bpr (all)   -k N (10)\n"
            "  --tune            pick each algorithm's settings on a validation split of the\n"
            "                    training part (never the test part)\n"
            "  --debias LIST     popularity penalties for the trade-off table\n"
            "                    (0,0.5,1,1.5,2,2.5,3,5)\n"
            "  --ipw LIST        also retrain ALS with these inverse-propensity weights (table)\n"
            "  --write-split DIR write DIR/train.tsv and DIR/test.tsv\n"
            "  --json FILE       all figures as JSON\n\n"
            "for options:\n"
            "  -k N (10)  --tag TAG  --keep-seen  --debias X (0)  --content-weight X (0)\n");
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Per-algorithm settings: the defaults, then flags (which apply where they mean something). */
struct flags {
    const char *data, *output, *items, *vectors, *split, *algos, *json, *write_split, *debias_list;
    const char *ipw_list;
    const char *user, *liked, *tag, *item;
    const char *db, *tenant; /* train --db/--tenant: events from the server's database */
    int algo, k, tune, keep_seen, no_eval;
    long long factors, iters, cg_steps, neighbours, seed, threads;
    double reg, alpha, lr, shrink, fraction, debias, content_weight, ipw;
    int binary, solver;
    struct amuse_rec_read_options read;
};

static void apply(const struct flags *f, struct amuse_rec_options *o)
{
    if (f->factors)
        o->factors = (int)f->factors;
    if (f->iters >= 0)
        o->iters = (int)f->iters;
    if (f->reg >= 0)
        o->reg = f->reg;
    if (f->alpha >= 0)
        o->alpha = f->alpha;
    if (f->lr > 0)
        o->learning_rate = f->lr;
    if (f->cg_steps)
        o->cg_steps = (int)f->cg_steps;
    if (f->neighbours)
        o->neighbours = (int)f->neighbours;
    if (f->shrink >= 0)
        o->shrink = f->shrink;
    o->binary = f->binary;
    o->solver = f->solver;
    if (o->algo == AMUSE_REC_ALS)
        o->ipw = f->ipw;
    o->seed = (uint64_t)f->seed;
}

static int parse_flags(int argc, char **argv, int first, struct flags *f)
{
    memset(f, 0, sizeof *f);
    f->algo = -1;
    f->k = 10;
    f->iters = -1;
    f->reg = f->alpha = f->shrink = -1;
    f->seed = 1;
    f->fraction = 0.75;
    f->split = "random";
    amuse_rec_read_options_default(&f->read);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--binary") == 0) {
            f->binary = 1;
            continue;
        }
        if (strcmp(a, "--tune") == 0) {
            f->tune = 1;
            continue;
        }
        if (strcmp(a, "--keep-seen") == 0) {
            f->keep_seen = 1;
            continue;
        }
        if (strcmp(a, "--no-eval") == 0) {
            f->no_eval = 1;
            continue;
        }
        if (i + 1 >= argc)
            return cli_error("%s: missing value (see 'amuse recommend --help')", a);
        const char *v = argv[++i];
        long long n;
        if (strcmp(a, "--data") == 0)
            f->data = v;
        else if (strcmp(a, "--db") == 0)
            f->db = v;
        else if (strcmp(a, "--tenant") == 0)
            f->tenant = v;
        else if (strcmp(a, "--output") == 0)
            f->output = v;
        else if (strcmp(a, "--items") == 0)
            f->items = v;
        else if (strcmp(a, "--vectors") == 0)
            f->vectors = v;
        else if (strcmp(a, "--split") == 0)
            f->split = v;
        else if (strcmp(a, "--algos") == 0)
            f->algos = v;
        else if (strcmp(a, "--json") == 0)
            f->json = v;
        else if (strcmp(a, "--write-split") == 0)
            f->write_split = v;
        else if (strcmp(a, "--user") == 0)
            f->user = v;
        else if (strcmp(a, "--liked") == 0)
            f->liked = v;
        else if (strcmp(a, "--item") == 0)
            f->item = v;
        else if (strcmp(a, "--tag") == 0)
            f->tag = v;
        else if (strcmp(a, "--algo") == 0) {
            if ((f->algo = amuse_rec_algo_parse(v)) < 0)
                return cli_error("--algo: '%s': expected als, bpr, itemknn or pop", v);
        } else if (strcmp(a, "--solver") == 0) {
            if (strcmp(v, "cg") != 0 && strcmp(v, "direct") != 0)
                return cli_error("--solver: '%s': expected cg or direct", v);
            f->solver = strcmp(v, "direct") == 0 ? AMUSE_REC_SOLVER_DIRECT : AMUSE_REC_SOLVER_CG;
        } else if (strcmp(a, "-k") == 0) {
            if (cli_parse_int("-k", v, 1, AMUSE_REC_MAX_K, &n))
                return 1;
            f->k = (int)n;
        } else if (strcmp(a, "--factors") == 0) {
            if (cli_parse_int(a, v, 1, AMUSE_REC_MAX_FACTORS, &f->factors))
                return 1;
        } else if (strcmp(a, "--iters") == 0) {
            if (cli_parse_int(a, v, 0, 100000, &f->iters))
                return 1;
        } else if (strcmp(a, "--cg-steps") == 0) {
            if (cli_parse_int(a, v, 1, 1000, &f->cg_steps))
                return 1;
        } else if (strcmp(a, "--neighbours") == 0) {
            if (cli_parse_int(a, v, 1, 10000, &f->neighbours))
                return 1;
        } else if (strcmp(a, "--seed") == 0) {
            if (cli_parse_int(a, v, 0, (1LL << 62), &f->seed))
                return 1;
        } else if (strcmp(a, "--threads") == 0) {
            if (cli_parse_int(a, v, 1, 512, &f->threads))
                return 1;
        } else if (strcmp(a, "--reg") == 0) {
            if (cli_parse_double(a, v, 0, 1e6, &f->reg))
                return 1;
        } else if (strcmp(a, "--alpha") == 0) {
            if (cli_parse_double(a, v, 0, 1e6, &f->alpha))
                return 1;
        } else if (strcmp(a, "--lr") == 0) {
            if (cli_parse_double(a, v, 1e-9, 10, &f->lr))
                return 1;
        } else if (strcmp(a, "--shrink") == 0) {
            if (cli_parse_double(a, v, 0, 1e9, &f->shrink))
                return 1;
        } else if (strcmp(a, "--fraction") == 0) {
            if (cli_parse_double(a, v, 0.01, 0.99, &f->fraction))
                return 1;
        } else if (strcmp(a, "--debias") == 0) {
            f->debias_list = v;
            if (!strchr(v, ',') && cli_parse_double(a, v, 0, 10, &f->debias))
                return 1;
        } else if (strcmp(a, "--ipw") == 0) {
            f->ipw_list = v;
            if (!strchr(v, ',') && cli_parse_double(a, v, 0, 2, &f->ipw))
                return 1;
        } else if (strcmp(a, "--content-weight") == 0) {
            if (cli_parse_double(a, v, 0, 1, &f->content_weight))
                return 1;
        } else if (strcmp(a, "--min-value") == 0) {
            if (cli_parse_double(a, v, -1e9, 1e9, &f->read.min_value))
                return 1;
        } else if (strcmp(a, "--max-value") == 0) {
            if (cli_parse_double(a, v, -1e9, 1e9, &f->read.max_value))
                return 1;
        } else {
            return cli_error("unknown option '%s' (see 'amuse recommend --help')", a);
        }
    }
    if (f->threads) {
        amuse_set_threads((int)f->threads);
    } else if (am__mpi_local_size() > 1) { /* ranks on one machine share its cores */
        amuse_set_threads(0);
        int share = amuse_get_threads() / am__mpi_local_size();
        amuse_set_threads(share > 0 ? share : 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ train */

struct result;
static int make_split(const struct amuse_rec_data *d, int kind, double fraction, uint64_t seed,
                      struct amuse_rec_data **train, struct amuse_rec_data **test,
                      struct amuse_rec_csr **truth);
static int evaluate(const struct amuse_rec_data *train, const struct amuse_rec_csr *truth,
                    const struct amuse_rec_options *o, int k, double debias, struct result *r,
                    struct amuse_rec_model **keep);

/* The training-time evaluation (eval.json): the same options on a per-user split of d. */
static int train_eval(const struct amuse_rec_data *d, const struct amuse_rec_options *o,
                      const struct flags *f, struct amuse_rec_eval *e);

static int run_train(struct flags *f)
{
    if ((!f->data == !f->tenant) || !f->output || f->algo < 0)
        return cli_error("recommend train needs --data FILE (or --tenant T [--db PATH]), --algo "
                         "and --output");
    if (strcmp(f->split, "random") != 0 && strcmp(f->split, "time") != 0)
        return cli_error("--split: '%s': expected random or time", f->split);
    struct amuse_rec_data *d = NULL;
    struct amuse_rec_model *m = NULL;
    struct amuse_word_vectors *wv = NULL;
    char items_tmp[64] = "";
    int rc = 1, st;
    if (f->tenant) {
        /* The tenant's events in the server's database; its items with metadata go through a
         * temporary items file unless --items names one. */
        char db[4096];
        struct am__events_store *es = NULL;
        if (f->db)
            snprintf(db, sizeof db, "%s", f->db);
        else
            cli_default_database(db, sizeof db);
        if ((st = am__events_open(&es, db))) {
            cli_fail(st, "opening the database");
            goto out;
        }
        st = am__events_read_tenant(es, f->tenant, &d);
        struct am__buf items = {0};
        int64_t n_items = 0;
        if (!st && !f->items && (st = am__events_items_tsv(es, f->tenant, &items, &n_items)) == 0 &&
            n_items > 0) {
            snprintf(items_tmp, sizeof items_tmp, "/tmp/amuse-items-XXXXXX");
            int fd = mkstemp(items_tmp);
            if (fd < 0 || write(fd, items.data, items.len) != (ssize_t)items.len) {
                st = am__fail(AMUSE_EIO, "cannot write a temporary items file");
                if (fd < 0)
                    items_tmp[0] = '\0';
            }
            if (fd >= 0)
                close(fd);
            if (!st)
                f->items = items_tmp;
        }
        am__buf_release(&items);
        am__events_close(es);
        if (st) {
            cli_fail(st, "reading the tenant's events");
            goto out;
        }
        for (int64_t i = 0; i < d->n; i++) /* the options' range applies here too */
            if (d->value[i] < f->read.min_value || d->value[i] > f->read.max_value) {
                cli_error("tenant %s: event %lld: value %g is outside [%g, %g]", f->tenant,
                          (long long)i, (double)d->value[i], f->read.min_value, f->read.max_value);
                goto out;
            }
    } else if ((st = amuse_rec_data_read(f->data, &f->read, &d))) {
        cli_fail(st, "reading events");
        goto out;
    }
    struct amuse_rec_options o;
    amuse_rec_options_default(&o, f->algo);
    apply(f, &o);
    if ((st = amuse_rec_train(d, &o, &m))) {
        cli_fail(st, "training");
        goto out;
    }
    /* The held-out evaluation trains again: under MPI every rank takes part in that too. */
    struct amuse_rec_eval ev;
    if (!f->no_eval && (st = train_eval(d, &o, f, &ev))) {
        cli_fail(st, "evaluating on a held-out split (--no-eval skips it)");
        goto out;
    }
    if (am__mpi_rank() != 0) { /* every rank holds the same factors: rank 0 writes them */
        rc = 0;
        goto out;
    }
    if (f->vectors && (st = amuse_word_vectors_load(f->vectors, AMUSE_W2V_AUTO, &wv))) {
        cli_fail(st, f->vectors);
        goto out;
    }
    if (f->vectors && !f->items) {
        cli_error("--vectors needs --items (the words come from titles and tags)");
        goto out;
    }
    int64_t unknown = 0;
    if (f->items && (st = amuse_rec_attach_items(m, f->items, wv, &unknown))) {
        cli_fail(st, "reading items");
        goto out;
    }
    if ((st = amuse_rec_model_save(m, f->output)) ||
        (!f->no_eval && (st = amuse_rec_eval_save(&ev, f->output)))) {
        cli_fail(st, f->output);
        goto out;
    }
    printf("trained %s on %lld events: %lld users, %lld items, %.2f s", amuse_rec_algo_name(o.algo),
           (long long)m->seen->nnz, (long long)m->n_users, (long long)m->n_items, m->train_seconds);
    if (m->seconds_per_iter > 0)
        printf(" (%.4f s per iteration)", m->seconds_per_iter);
    printf("\n");
    if (f->items)
        printf("item data: %s (%lld lines for items without events skipped)%s\n",
               items_tmp[0] ? "the tenant's items" : f->items, (long long)unknown,
               wv ? ", content vectors from word vectors" : "");
    if (!f->no_eval)
        printf("held out (%s split, %.0f%% to train): P@%d %.4f nDCG@%d %.4f coverage@%d %.4f "
               "Gini %.4f ARP %.1f APLT %.4f novelty %.2f (eval.json)\n",
               ev.split, 100 * ev.fraction, ev.k, ev.metrics.precision, ev.k, ev.metrics.ndcg,
               ev.k, ev.metrics.coverage, ev.metrics.gini, ev.metrics.arp, ev.metrics.aplt,
               ev.metrics.novelty);
    printf("wrote %s\n", f->output);
    rc = 0;
out:
    if (items_tmp[0])
        unlink(items_tmp);
    amuse_rec_data_free(d);
    amuse_rec_model_free(m);
    amuse_word_vectors_free(wv);
    return rc;
}

/* ------------------------------------------------------------------------------------- eval */

struct result {
    int algo;
    struct amuse_rec_options opt;
    struct amuse_rec_metrics met;
    double train_seconds, seconds_per_iter;
};

/* Top-k lists for every user of train (n_users x k, -1 padded), users in parallel. */
static int recommend_all(const struct amuse_rec_model *m, const struct amuse_rec_csr *truth,
                         int k, double debias, int32_t *recs)
{
    int rc = AMUSE_OK;
#pragma omp parallel
    {
        struct amuse_rec_hit *hits = malloc((size_t)k * sizeof *hits);
        int mine = hits ? AMUSE_OK : AMUSE_ENOMEM;
#pragma omp for schedule(dynamic, 8)
        for (int64_t u = 0; u < m->n_users; u++) {
            for (int q = 0; q < k; q++)
                recs[(size_t)u * k + q] = -1;
            if (mine || truth->indptr[u + 1] == truth->indptr[u])
                continue;
            struct amuse_rec_query q = {.user = u, .k = k, .filter_seen = 1, .debias = debias};
            int n = 0;
            mine = amuse_rec_recommend(m, &q, hits, &n, NULL);
            for (int c = 0; c < n; c++)
                recs[(size_t)u * k + c] = (int32_t)hits[c].item;
        }
        free(hits);
#pragma omp critical
        if (mine && !rc)
            rc = mine;
    }
    return rc;
}

static int evaluate(const struct amuse_rec_data *train, const struct amuse_rec_csr *truth,
                    const struct amuse_rec_options *o, int k, double debias, struct result *r,
                    struct amuse_rec_model **keep)
{
    struct amuse_rec_model *m = NULL;
    int st = amuse_rec_train(train, o, &m);
    if (st)
        return st;
    int32_t *recs = malloc((size_t)m->n_users * k * sizeof *recs);
    if (!recs) {
        amuse_rec_model_free(m);
        return AMUSE_ENOMEM;
    }
    st = recommend_all(m, truth, k, debias, recs);
    if (!st)
        st = amuse_rec_evaluate(recs, k, truth, m->popularity, m->n_items, m->n_users, &r->met);
    r->algo = o->algo;
    r->opt = *o;
    r->train_seconds = m->train_seconds;
    r->seconds_per_iter = m->seconds_per_iter;
    free(recs);
    if (keep && !st)
        *keep = m;
    else
        amuse_rec_model_free(m);
    return st;
}

/* The split, and train/test indexed by the training part's own id maps. */
static int make_split(const struct amuse_rec_data *d, int kind, double fraction, uint64_t seed,
                      struct amuse_rec_data **train, struct amuse_rec_data **test,
                      struct amuse_rec_csr **truth)
{
    struct amuse_rec_data *tr = NULL, *te = NULL;
    *train = *test = NULL;
    *truth = NULL;
    int st = amuse_rec_split(d, kind, fraction, seed, &tr, &te);
    if (!st)
        st = amuse_rec_data_reindex(tr, NULL, train, NULL);
    if (!st)
        st = amuse_rec_data_reindex(te, *train, test, NULL);
    if (!st)
        st = amuse_rec_csr_build(*test, 0, truth);
    amuse_rec_data_free(tr);
    amuse_rec_data_free(te);
    return st;
}

/* Small grids, scored by nDCG@k on a validation split of the training part. */
static int tune(const struct amuse_rec_data *train, int kind, double fraction, uint64_t seed,
                int k, struct amuse_rec_options *o)
{
    struct amuse_rec_data *sub = NULL, *val = NULL;
    struct amuse_rec_csr *truth = NULL;
    int st = make_split(train, kind, fraction, seed + 1, &sub, &val, &truth);
    struct amuse_rec_options best = *o, c = *o;
    double best_ndcg = -1;
    static const double alphas[] = {1, 5, 10, 20, 40}, regs[] = {0.1, 1, 10, 50};
    static const int nbrs[] = {20, 50, 100, 200, 400};
    static const double shrinks[] = {0, 10, 50};
    static const double lrs[] = {0.01, 0.05, 0.1};
    static const int epochs[] = {50, 100, 200};
    int n1 = 1, n2 = 1;
    if (o->algo == AMUSE_REC_ALS)
        n1 = 5, n2 = 4;
    else if (o->algo == AMUSE_REC_ITEMKNN)
        n1 = 5, n2 = 3;
    else if (o->algo == AMUSE_REC_BPR)
        n1 = 3, n2 = 3;
    for (int a = 0; a < n1 && !st; a++) {
        for (int b = 0; b < n2 && !st; b++) {
            c = *o;
            if (o->algo == AMUSE_REC_ALS)
                c.alpha = alphas[a], c.reg = regs[b];
            else if (o->algo == AMUSE_REC_ITEMKNN)
                c.neighbours = nbrs[a], c.shrink = shrinks[b];
            else if (o->algo == AMUSE_REC_BPR)
                c.learning_rate = lrs[a], c.iters = epochs[b];
            struct result r;
            st = evaluate(sub, truth, &c, k, 0, &r, NULL);
            if (!st && r.met.ndcg > best_ndcg) {
                best_ndcg = r.met.ndcg;
                best = c;
            }
        }
    }
    amuse_rec_data_free(sub);
    amuse_rec_data_free(val);
    amuse_rec_csr_free(truth);
    *o = best;
    return st;
}

static int train_eval(const struct amuse_rec_data *d, const struct amuse_rec_options *o,
                      const struct flags *f, struct amuse_rec_eval *e)
{
    int kind = strcmp(f->split, "time") == 0 ? AMUSE_REC_SPLIT_TIME : AMUSE_REC_SPLIT_RANDOM;
    struct amuse_rec_data *train = NULL, *test = NULL;
    struct amuse_rec_csr *truth = NULL;
    struct result r;
    memset(e, 0, sizeof *e);
    int st = make_split(d, kind, f->fraction, (uint64_t)f->seed, &train, &test, &truth);
    if (!st)
        st = evaluate(train, truth, o, f->k, 0, &r, NULL);
    if (!st) {
        snprintf(e->split, sizeof e->split, "%s", kind == AMUSE_REC_SPLIT_TIME ? "time" : "random");
        e->fraction = f->fraction;
        e->seed = (uint64_t)f->seed;
        e->k = f->k;
        e->metrics = r.met;
    }
    amuse_rec_data_free(train);
    amuse_rec_data_free(test);
    amuse_rec_csr_free(truth);
    return st;
}

static void print_row(const char *name, const struct result *r)
{
    const struct amuse_rec_metrics *x = &r->met;
    printf("%-9s %7.4f %7.4f %8.4f %7.4f %9.4f %8.4f %8.1f %7.4f %8.2f %8.2f\n", name,
           x->precision, x->recall, x->ndcg, x->map, x->coverage, x->gini, x->arp, x->aplt,
           x->novelty, r->train_seconds);
}

static void json_metrics(FILE *o, const struct result *r)
{
    const struct amuse_rec_metrics *x = &r->met;
    fprintf(o, "{\"precision\": %.6f, \"recall\": %.6f, \"ndcg\": %.6f, \"map\": %.6f, "
               "\"coverage\": %.6f, \"gini\": %.6f, \"arp\": %.4f, \"aplt\": %.6f, "
               "\"novelty\": %.4f, \"users\": %lld, \"train_seconds\": %.4f, "
               "\"seconds_per_iter\": %.6f, \"factors\": %d, \"iters\": %d, \"reg\": %g, "
               "\"alpha\": %g, \"learning_rate\": %g, \"neighbours\": %d, \"shrink\": %g, "
               "\"ipw\": %g}",
            x->precision, x->recall, x->ndcg, x->map, x->coverage, x->gini, x->arp, x->aplt,
            x->novelty, (long long)x->users, r->train_seconds, r->seconds_per_iter,
            r->opt.factors, r->opt.iters, r->opt.reg, r->opt.alpha, r->opt.learning_rate,
            r->opt.neighbours, r->opt.shrink, r->opt.ipw);
}

/* Mean fold-in time per user (ms) over the users with test events, from their training items. */
static double foldin_ms(const struct amuse_rec_model *m, const struct amuse_rec_csr *truth)
{
    float *x = malloc((size_t)m->factors * sizeof *x);
    if (!x)
        return -1;
    int64_t users = 0;
    double t0 = now_seconds();
    for (int64_t u = 0; u < m->n_users; u++) {
        if (truth->indptr[u + 1] == truth->indptr[u])
            continue;
        int64_t lo = m->seen->indptr[u];
        amuse_rec_fold_in(m, m->seen->indices + lo, m->seen->values + lo,
                          (int)(m->seen->indptr[u + 1] - lo), x);
        users++;
    }
    double ms = users ? 1000 * (now_seconds() - t0) / (double)users : 0;
    free(x);
    return ms;
}

static int run_eval(struct flags *f)
{
    if (!f->data)
        return cli_error("recommend eval needs --data");
    int kind = strcmp(f->split, "time") == 0 ? AMUSE_REC_SPLIT_TIME
               : strcmp(f->split, "random") == 0 ? AMUSE_REC_SPLIT_RANDOM : -1;
    if (kind < 0)
        return cli_error("--split: '%s': expected random or time", f->split);
    int algos[4], n_algos = 0;
    const char *list = f->algos ? f->algos : "pop,itemknn,als,bpr";
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int a = amuse_rec_algo_parse(t);
        if (a < 0 || n_algos == 4)
            return cli_error("--algos: '%s': expected a list of pop, itemknn, als, bpr", t);
        algos[n_algos++] = a;
    }
    double penalties[16] = {0, 0.5, 1, 1.5, 2, 2.5, 3, 5};
    int n_pen = 8;
    if (f->debias_list) {
        snprintf(buf, sizeof buf, "%s", f->debias_list);
        n_pen = 0;
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n_pen == 16 || cli_parse_double("--debias", t, 0, 10, &penalties[n_pen]))
                return 1;
            n_pen++;
        }
    }
    struct amuse_rec_data *d = NULL, *train = NULL, *test = NULL;
    struct amuse_rec_csr *truth = NULL;
    struct amuse_rec_model *best_model = NULL;
    struct result res[4], pen[16];
    FILE *js = NULL;
    int rc = 1, st;
    if ((st = amuse_rec_data_read(f->data, &f->read, &d))) {
        cli_fail(st, "reading events");
        goto out;
    }
    if ((st = make_split(d, kind, f->fraction, (uint64_t)f->seed, &train, &test, &truth))) {
        cli_fail(st, "splitting");
        goto out;
    }
    if (f->write_split) {
        char p[4096];
        mkdir(f->write_split, 0755); /* an existing directory is fine; failures show below */
        snprintf(p, sizeof p, "%s/train.tsv", f->write_split);
        if ((st = amuse_rec_data_write(train, p))) {
            cli_fail(st, p);
            goto out;
        }
        snprintf(p, sizeof p, "%s/test.tsv", f->write_split);
        if ((st = amuse_rec_data_write(test, p))) {
            cli_fail(st, p);
            goto out;
        }
    }
    int64_t test_users = 0;
    for (int64_t u = 0; u < truth->rows; u++)
        test_users += truth->indptr[u + 1] > truth->indptr[u];
    printf("split %s (seed %lld, %.0f/%.0f per user): %lld train events, %lld test events of "
           "%lld users; %lld users x %lld items in training\n", f->split, f->seed,
           100 * f->fraction, 100 * (1 - f->fraction), (long long)train->n, (long long)test->n,
           (long long)test_users, (long long)truth->rows, (long long)truth->cols);
    printf("%-9s %7s %7s %8s %7s %9s %8s %8s %7s %8s %8s\n", "algo", "P@k", "R@k", "nDCG@k",
           "MAP@k", "cover@k", "Gini@k", "ARP", "APLT", "novelty", "train_s");
    int best = -1;
    for (int a = 0; a < n_algos; a++) {
        struct amuse_rec_options o;
        amuse_rec_options_default(&o, algos[a]);
        apply(f, &o);
        if (f->tune && (st = tune(train, kind, f->fraction, (uint64_t)f->seed, f->k, &o))) {
            cli_fail(st, "tuning");
            goto out;
        }
        struct amuse_rec_model *m = NULL;
        if ((st = evaluate(train, truth, &o, f->k, 0, &res[a], &m))) {
            cli_fail(st, amuse_rec_algo_name(algos[a]));
            goto out;
        }
        print_row(amuse_rec_algo_name(algos[a]), &res[a]);
        if (algos[a] != AMUSE_REC_POP && (best < 0 || res[a].met.ndcg > res[best].met.ndcg)) {
            best = a;
            amuse_rec_model_free(best_model);
            best_model = m;
        } else {
            amuse_rec_model_free(m);
        }
    }
    double fold_ms = -1;
    int als = -1;
    for (int a = 0; a < n_algos; a++)
        if (algos[a] == AMUSE_REC_ALS)
            als = a;
    if (als >= 0) {
        struct amuse_rec_model *m = NULL;
        if ((st = amuse_rec_train(train, &res[als].opt, &m))) {
            cli_fail(st, "als");
            goto out;
        }
        fold_ms = foldin_ms(m, truth);
        printf("als: %.4f s per iteration; fold-in %.4f ms per user\n", m->seconds_per_iter,
               fold_ms);
        amuse_rec_model_free(m);
    }
    if (best >= 0 && n_pen > 0) {
        printf("\ndebias: %s re-ranked by norm(score) - penalty * log popularity\n",
               amuse_rec_algo_name(algos[best]));
        printf("%-8s %7s %8s %9s %7s %8s %10s %9s\n", "penalty", "P@k", "nDCG@k", "cover@k",
               "APLT", "Gini@k", "nDCG loss", "coverage");
        for (int p = 0; p < n_pen; p++) {
            int32_t *recs = malloc((size_t)best_model->n_users * f->k * sizeof *recs);
            if (!recs) {
                cli_error("out of memory");
                goto out;
            }
            st = recommend_all(best_model, truth, f->k, penalties[p], recs);
            if (!st)
                st = amuse_rec_evaluate(recs, f->k, truth, best_model->popularity,
                                        best_model->n_items, best_model->n_users, &pen[p].met);
            free(recs);
            if (st) {
                cli_fail(st, "debias");
                goto out;
            }
            const struct amuse_rec_metrics *x = &pen[p].met, *b0 = &res[best].met;
            printf("%-8.2f %7.4f %8.4f %9.4f %7.4f %8.4f %9.1f%% %8.2fx\n", penalties[p],
                   x->precision, x->ndcg, x->coverage, x->aplt, x->gini,
                   100 * (b0->ndcg - x->ndcg) / b0->ndcg, x->coverage / b0->coverage);
        }
    }
    double ipws[16];
    int n_ipw = 0;
    struct result ipw_res[16];
    if (f->ipw_list && strchr(f->ipw_list, ',') && als >= 0) {
        snprintf(buf, sizeof buf, "%s", f->ipw_list);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n_ipw < 16;
             t = strtok_r(NULL, ",", &save)) {
            if (cli_parse_double("--ipw", t, 0, 2, &ipws[n_ipw]))
                goto out;
            n_ipw++;
        }
        printf("\ninverse-propensity weighting: als retrained with values x (mean pop / pop)^ipw\n");
        printf("%-8s %7s %8s %9s %7s %8s %10s %9s\n", "ipw", "P@k", "nDCG@k", "cover@k", "APLT",
               "Gini@k", "nDCG loss", "coverage");
        for (int p = 0; p < n_ipw; p++) {
            struct amuse_rec_options o = res[als].opt;
            o.ipw = ipws[p];
            if ((st = evaluate(train, truth, &o, f->k, 0, &ipw_res[p], NULL))) {
                cli_fail(st, "ipw");
                goto out;
            }
            const struct amuse_rec_metrics *x = &ipw_res[p].met, *b0 = &res[als].met;
            printf("%-8.2f %7.4f %8.4f %9.4f %7.4f %8.4f %9.1f%% %8.2fx\n", ipws[p], x->precision,
                   x->ndcg, x->coverage, x->aplt, x->gini, 100 * (b0->ndcg - x->ndcg) / b0->ndcg,
                   x->coverage / b0->coverage);
        }
    }
    if (f->json) {
        if (!(js = fopen(f->json, "w"))) {
            cli_error("%s: cannot write", f->json);
            goto out;
        }
        fprintf(js, "{\"split\": \"%s\", \"seed\": %lld, \"k\": %d, \"train_events\": %lld, "
                    "\"test_events\": %lld, \"users\": %lld, \"items\": %lld, \"threads\": %d, "
                    "\"foldin_ms\": %.6f, \"best\": \"%s\",\n \"algorithms\": {", f->split,
                f->seed, f->k, (long long)train->n, (long long)test->n, (long long)truth->rows,
                (long long)truth->cols, amuse_get_threads(), fold_ms,
                best >= 0 ? amuse_rec_algo_name(algos[best]) : "");
        for (int a = 0; a < n_algos; a++) {
            fprintf(js, "%s\n  \"%s\": ", a ? "," : "", amuse_rec_algo_name(algos[a]));
            json_metrics(js, &res[a]);
        }
        fprintf(js, "},\n \"debias\": [");
        for (int p = 0; best >= 0 && p < n_pen; p++) {
            fprintf(js, "%s\n  {\"penalty\": %g, \"metrics\": ", p ? "," : "", penalties[p]);
            pen[p].opt = res[best].opt;
            pen[p].train_seconds = res[best].train_seconds;
            pen[p].seconds_per_iter = res[best].seconds_per_iter;
            json_metrics(js, &pen[p]);
            fprintf(js, "}");
        }
        fprintf(js, "],\n \"ipw\": [");
        for (int p = 0; p < n_ipw; p++) {
            fprintf(js, "%s\n  {\"ipw\": %g, \"metrics\": ", p ? "," : "", ipws[p]);
            json_metrics(js, &ipw_res[p]);
            fprintf(js, "}");
        }
        fprintf(js, "]}\n");
        if (fclose(js)) {
            js = NULL;
            cli_error("%s: write failed", f->json);
            goto out;
        }
        js = NULL;
    }
    rc = 0;
out:
    if (js)
        fclose(js);
    amuse_rec_model_free(best_model);
    amuse_rec_data_free(d);
    amuse_rec_data_free(train);
    amuse_rec_data_free(test);
    amuse_rec_csr_free(truth);
    return rc;
}

/* -------------------------------------------------------------------------------------- for */

static const char *title_of(const struct amuse_rec_model *m, int64_t i)
{
    if (m->meta && m->meta->title[i])
        return m->meta->title[i];
    return amuse_vocab_word(m->items, i);
}

static int run_for(const char *dir, struct flags *f)
{
    if (!f->user && !f->liked)
        return cli_error("recommend for needs --user ID or --liked ID,ID,...");
    struct amuse_rec_model *m = NULL;
    int32_t *liked = NULL;
    struct amuse_rec_hit *hits = NULL;
    int rc = 1, st, n_liked = 0;
    if ((st = amuse_rec_model_load(dir, &m)))
        return cli_fail(st, dir);
    struct amuse_rec_query q = {.user = -1, .k = f->k, .filter_seen = !f->keep_seen, .explain = 1,
                                .tag = f->tag, .debias = f->debias,
                                .content_weight = f->content_weight};
    if (f->user) {
        q.user = amuse_vocab_find(m->users, f->user);
        if (q.user < 0) {
            cli_error("user '%s' is not in the model (%lld users); --liked lists items for a "
                      "new user", f->user, (long long)m->n_users);
            goto out;
        }
    } else {
        size_t len = strlen(f->liked);
        liked = malloc((len / 2 + 2) * sizeof *liked);
        char *copy = strdup(f->liked);
        if (!liked || !copy) {
            free(copy);
            cli_error("out of memory");
            goto out;
        }
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int64_t i = amuse_vocab_find(m->items, t);
            if (i < 0) {
                cli_error("--liked: item '%s' is not in the model", t);
                free(copy);
                goto out;
            }
            liked[n_liked++] = (int32_t)i;
        }
        free(copy);
        q.items = liked;
        q.n_items = n_liked;
    }
    hits = malloc((size_t)q.k * sizeof *hits);
    int n = 0, cold = 0;
    double t0 = now_seconds();
    if (!hits || (st = amuse_rec_recommend(m, &q, hits, &n, &cold))) {
        cli_fail(hits ? st : AMUSE_ENOMEM, "recommend");
        goto out;
    }
    double ms = 1000 * (now_seconds() - t0);
    printf("# %s model, %s%s: %d recommendations in %.2f ms%s\n", amuse_rec_algo_name(m->opt.algo),
           f->user ? "user " : "new user from liked items", f->user ? f->user : "", n, ms,
           cold ? " (cold start: no events, most popular items)" : "");
    for (int c = 0; c < n; c++) {
        printf("%2d\t%s\t%.4f\t%s", c + 1, amuse_vocab_word(m->items, hits[c].item),
               (double)hits[c].score, title_of(m, hits[c].item));
        if (hits[c].because >= 0)
            printf("\tbecause you liked %s", title_of(m, hits[c].because));
        printf("\n");
    }
    rc = 0;
out:
    amuse_rec_model_free(m);
    free(liked);
    free(hits);
    return rc;
}

static int run_similar(const char *dir, struct flags *f)
{
    if (!f->item)
        return cli_error("recommend similar needs --item ID");
    struct amuse_rec_model *m = NULL;
    int st = amuse_rec_model_load(dir, &m);
    if (st)
        return cli_fail(st, dir);
    int rc = 1, n = 0;
    int64_t item = amuse_vocab_find(m->items, f->item);
    struct amuse_rec_hit *hits = malloc((size_t)f->k * sizeof *hits);
    if (item < 0) {
        cli_error("item '%s' is not in the model", f->item);
    } else if (!hits || (st = amuse_rec_similar_items(m, item, f->k, hits, &n))) {
        cli_fail(hits ? st : AMUSE_ENOMEM, "similar");
    } else {
        printf("# items like %s\n", title_of(m, item));
        for (int c = 0; c < n; c++)
            printf("%2d\t%s\t%.4f\t%s\n", c + 1, amuse_vocab_word(m->items, hits[c].item),
                   (double)hits[c].score, title_of(m, hits[c].item));
        rc = 0;
    }
    free(hits);
    amuse_rec_model_free(m);
    return rc;
}

int cmd_recommend(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct flags f;
    const char *sub = argv[1];
    if (strcmp(sub, "for") == 0 || strcmp(sub, "similar") == 0) {
        if (argc < 3 || argv[2][0] == '-')
            return cli_error("recommend %s: expected a model directory first", sub);
        if (parse_flags(argc, argv, 3, &f))
            return 2;
        return sub[0] == 'f' ? run_for(argv[2], &f) : run_similar(argv[2], &f);
    }
    if (parse_flags(argc, argv, 2, &f))
        return 2;
    if (am__mpi_size() > 1 && (strcmp(sub, "train") != 0 || f.algo != AMUSE_REC_ALS))
        return cli_error("recommend %s: only 'recommend train --algo als' runs across MPI ranks",
                         sub);
    if (strcmp(sub, "train") == 0)
        return run_train(&f);
    if (strcmp(sub, "eval") == 0)
        return run_eval(&f);
    return cli_error("recommend: unknown subcommand '%s' (train, eval, for or similar)", sub);
}
