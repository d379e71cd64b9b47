/* cmd_sentiment.c - `amuse sentiment`: score review text with a sentiment model, train one from
 * human-rated TSV files (with the fixed train/validation/test split), write that split, and
 * evaluate a model (or a peer's scores) on a TSV file: confusion table, macro-F1, binary accuracy,
 * Pearson r. It does not serve (the server's route will load the same model directory). */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/sentiment.h"
#include "core/internal.h" /* am__now: the one monotonic clock */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_FILES      64
#define STDIN_LINE_MAX (AMUSE_SENTIMENT_MAX_TEXT_BYTES + 2)

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: amuse sentiment MODEL [TEXT...] [--json]   score texts (one per line on stdin\n"
        "                                                 when none are given)\n"
        "       amuse sentiment train --data DIR|FILE... --output DIR [options]\n"
        "       amuse sentiment split --data DIR|FILE... --output DIR [--seed N]\n"
        "       amuse sentiment eval MODEL FILE.tsv [--scores FILE] [--neutral T] [--json]\n\n"
        "Data files are 'id<TAB>rating<TAB>text' lines, ratings in [-4, 4] (--scale changes it).\n"
        "Each snippet falls in the train (70%%), validation (10%%) or test (20%%) part by a hash "
        "of\n"
        "its file name, id and the seed; train fits on the train parts of all files, chooses the\n"
        "neutral band on the validation parts and never reads the test parts.\n\n"
        "train options:\n"
        "  --vectors FILE     word2vec vectors (text or binary) for the averaged-vector features\n"
        "  --lexicon FILE     'word<TAB>valence' lines (valence in [-4, 4]) for lexicon features\n"
        "  --epochs N (12)  --learning-rate X (0.1)  --ngram-learning-rate X (0.03)\n"
        "  --l2 X (1e-6)  --hash-bits N (20)\n"
        "  --seed N (1)       split and shuffle seed\n"
        "  --neutral T        fix the neutral band |score| <= T instead of choosing it\n"
        "  --description S    stored in config.json\n"
        "eval options:\n"
        "  --scores FILE      evaluate these scores (one number in [-1, 1] per line, in the\n"
        "                     order of FILE.tsv; e.g. a peer's) instead of MODEL ('-' for MODEL)\n"
        "  --neutral T        band for --scores (0.05)\n"
        "  --json             one JSON object\n");
}

/* ------------------------------------------------------------------------------- data files */

struct files {
    char *path[MAX_FILES];
    char name[MAX_FILES][256]; /* base name without ".tsv" */
    int n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_file(struct files *fs, const char *path)
{
    if (fs->n == MAX_FILES)
        return cli_error("more than %d data files", MAX_FILES);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    if (bl > 4 && strcmp(base + bl - 4, ".tsv") == 0)
        bl -= 4;
    if (bl >= sizeof fs->name[0])
        return cli_error("%s: file name too long", path);
    memcpy(fs->name[fs->n], base, bl);
    fs->name[fs->n][bl] = '\0';
    fs->path[fs->n] = strdup(path);
    if (!fs->path[fs->n])
        return cli_error("out of memory");
    fs->n++;
    return 0;
}

/* A directory adds its *.tsv files in name order. */
static int add_data(struct files *fs, const char *arg)
{
    struct stat sb;
    if (stat(arg, &sb) != 0)
        return cli_error("%s: no such file or directory", arg);
    if (!S_ISDIR(sb.st_mode))
        return add_file(fs, arg);
    DIR *d = opendir(arg);
    if (!d)
        return cli_error("%s: cannot open directory", arg);
    char *names[MAX_FILES];
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tsv") == 0) {
            if (n == MAX_FILES) {
                rc = cli_error("%s: more than %d .tsv files", arg, MAX_FILES);
                break;
            }
            size_t pl = strlen(arg) + l + 2;
            if (!(names[n] = malloc(pl))) {
                rc = cli_error("out of memory");
                break;
            }
            snprintf(names[n++], pl, "%s/%s", arg, e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        if (!rc)
            rc = add_file(fs, names[i]);
        free(names[i]);
    }
    if (!rc && n == 0)
        rc = cli_error("%s: no .tsv files", arg);
    return rc;
}

static void files_release(struct files *fs)
{
    for (int i = 0; i < fs->n; i++)
        free(fs->path[i]);
}

/* Move snippet i of src into dst (dst's arrays have room). */
static void take(struct amuse_sentiment_set *dst, struct amuse_sentiment_set *src, int64_t i)
{
    dst->ids[dst->n] = src->ids[i];
    dst->texts[dst->n] = src->texts[i];
    dst->ratings[dst->n] = src->ratings[i];
    src->ids[i] = src->texts[i] = NULL;
    dst->n++;
}

static int grow(struct amuse_sentiment_set *s, int64_t extra)
{
    size_t n = (size_t)(s->n + extra);
    char **a = realloc(s->ids, n * sizeof *a);
    if (a)
        s->ids = a;
    char **b = realloc(s->texts, n * sizeof *b);
    if (b)
        s->texts = b;
    float *c = realloc(s->ratings, n * sizeof *c);
    if (c)
        s->ratings = c;
    return a && b && c ? 0 : cli_error("out of memory");
}

/* ------------------------------------------------------------------------------- scoring */

static int score_texts(const struct amuse_sentiment_model *m, const char *const *texts, int n,
                       int json, int index_base)
{
    struct amuse_sentiment_result *res = calloc((size_t)n, sizeof *res);
    if (!res)
        return cli_error("out of memory");
    int st = amuse_sentiment_score(m, texts, NULL, n, res);
    if (st != AMUSE_OK) {
        free(res);
        return cli_fail(st, "sentiment");
    }
    for (int i = 0; i < n; i++) {
        if (json) {
            printf("%s{\"index\": %d, \"label\": \"%s\", \"score\": %.4f}", i ? ", " : "",
                   index_base + i, amuse_sentiment_label_name(res[i].label), res[i].score);
        } else {
            printf("%s\t%+.4f\t%s\n", amuse_sentiment_label_name(res[i].label), res[i].score,
                   texts[i]);
        }
    }
    free(res);
    return 0;
}

static int run_score(const char *model, const char **texts, int n, int json)
{
    struct amuse_sentiment_model *m = NULL;
    int st = amuse_sentiment_load(model, &m), rc = 0;
    if (st != AMUSE_OK)
        return cli_fail(st, model);
    if (json)
        printf("{\"data\": [");
    if (n > 0) {
        rc = score_texts(m, texts, n, json, 0);
    } else {
        char *line = malloc(STDIN_LINE_MAX + 1);
        int index = 0;
        long long lineno = 0;
        if (!line)
            rc = cli_error("out of memory");
        while (!rc && fgets(line, STDIN_LINE_MAX + 1, stdin)) {
            lineno++;
            size_t l = strlen(line);
            if (l == STDIN_LINE_MAX && line[l - 1] != '\n') {
                rc = cli_error("stdin: line %lld: over %d bytes", lineno,
                               AMUSE_SENTIMENT_MAX_TEXT_BYTES);
                break;
            }
            while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
                line[--l] = '\0';
            if (l == 0)
                continue;
            if (json && index)
                printf(", ");
            const char *t = line;
            if ((rc = score_texts(m, &t, 1, json, index)) != 0)
                fprintf(stderr, "amuse: (stdin line %lld)\n", lineno);
            index++;
        }
        free(line);
    }
    if (json)
        printf("]}\n");
    amuse_sentiment_free(m);
    return rc;
}

/* ------------------------------------------------------------------------- evaluation */

static void print_eval(const char *what, const struct amuse_sentiment_eval *ev, double ms_per_1000,
                       double threshold, int json)
{
    static const char *names[3] = {"negative", "neutral", "positive"};
    if (json) {
        printf("{\"data\": ");
        cli_json_string(stdout, what);
        printf(", \"snippets\": %lld, \"macro_f1\": %.4f, \"binary_accuracy\": %.4f, "
               "\"binary_snippets\": %lld, \"pearson\": %.4f, \"neutral_threshold\": %.3f, "
               "\"ms_per_1000\": %.3f, \"confusion\": [",
               (long long)ev->n, ev->macro_f1, ev->binary_accuracy, (long long)ev->binary_n,
               ev->pearson, threshold, ms_per_1000);
        for (int g = 0; g < 3; g++)
            printf("%s[%lld, %lld, %lld]", g ? ", " : "", (long long)ev->confusion[g][0],
                   (long long)ev->confusion[g][1], (long long)ev->confusion[g][2]);
        printf("]}\n");
        return;
    }
    printf("%s: %lld snippets, neutral band |score| <= %.3f\n\n", what, (long long)ev->n,
           threshold);
    printf("gold \\ predicted   negative    neutral   positive\n");
    for (int g = 0; g < 3; g++)
        printf("%-16s %10lld %10lld %10lld\n", names[g], (long long)ev->confusion[g][0],
               (long long)ev->confusion[g][1], (long long)ev->confusion[g][2]);
    printf("\nmacro-F1 (3 classes)         %.4f\n", ev->macro_f1);
    printf("binary accuracy (%6lld)     %.4f\n", (long long)ev->binary_n, ev->binary_accuracy);
    printf("Pearson r with the ratings   %.4f\n", ev->pearson);
    if (ms_per_1000 >= 0)
        printf("time per 1,000 snippets      %.1f ms\n", ms_per_1000);
}

static int read_scores(const char *path, int64_t n, double threshold,
                       struct amuse_sentiment_result *res)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_error("%s: cannot open", path);
    char line[128];
    int64_t i = 0;
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        char *end;
        double v = strtod(line, &end);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        if (end == line || *end != '\0' || !(v >= -1 && v <= 1))
            rc = cli_error("%s: line %lld: not a score in [-1, 1]", path, (long long)(i + 1));
        else if (i == n)
            rc = cli_error("%s: more scores than the %lld snippets", path, (long long)n);
        else {
            res[i].score = (float)v;
            res[i].label = v > threshold ? 1 : v < -threshold ? -1 : 0;
            i++;
        }
    }
    fclose(f);
    if (!rc && i != n)
        rc = cli_error("%s: %lld scores for %lld snippets", path, (long long)i, (long long)n);
    return rc;
}

static int run_eval(const char *model, const char *data, const char *scores, double scale,
                    double threshold, int json)
{
    struct amuse_sentiment_set set;
    struct amuse_sentiment_model *m = NULL;
    struct amuse_sentiment_result *res = NULL;
    int st = amuse_sentiment_set_read(data, scale, &set), rc = 0;
    if (st != AMUSE_OK)
        return cli_fail(st, data);
    if (set.n > AMUSE_SENTIMENT_MAX_BATCH) {
        amuse_sentiment_set_release(&set);
        return cli_error("%s: more than %d snippets", data, AMUSE_SENTIMENT_MAX_BATCH);
    }
    res = calloc((size_t)set.n, sizeof *res);
    double ms = -1;
    if (!res) {
        rc = cli_error("out of memory");
    } else if (scores) {
        rc = read_scores(scores, set.n, threshold, res);
    } else if ((st = amuse_sentiment_load(model, &m)) != AMUSE_OK) {
        rc = cli_fail(st, model);
    } else {
        double t0 = am__now();
        st = amuse_sentiment_score(m, (const char *const *)set.texts, NULL, (int)set.n, res);
        ms = (am__now() - t0) * 1000.0 * 1000.0 / (double)set.n;
        threshold = amuse_sentiment_neutral_threshold(m);
        if (st != AMUSE_OK)
            rc = cli_fail(st, data);
    }
    if (!rc) {
        struct amuse_sentiment_eval ev;
        amuse_sentiment_evaluate(set.ratings, res, set.n, &ev);
        print_eval(data, &ev, ms, threshold, json);
    }
    free(res);
    amuse_sentiment_free(m);
    amuse_sentiment_set_release(&set);
    return rc;
}

/* ----------------------------------------------------------------------- split and train */

static int write_part(const char *dir, const char *name, const char *part,
                      const struct amuse_sentiment_set *s, const int *parts, int want, double scale)
{
    size_t l = strlen(dir) + strlen(name) + strlen(part) + 8;
    char *path = malloc(l), *tmp = malloc(l + 8);
    if (!path || !tmp) {
        free(path);
        free(tmp);
        return cli_error("out of memory");
    }
    snprintf(path, l, "%s/%s.%s.tsv", dir, name, part);
    snprintf(tmp, l + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = cli_error("%s: cannot create", tmp);
    } else {
        for (int64_t i = 0; i < s->n; i++)
            if (parts[i] == want)
                fprintf(f, "%s\t%.9g\t%s\n", s->ids[i], s->ratings[i] * scale, s->texts[i]);
        if (fclose(f) != 0 || rename(tmp, path) != 0) {
            remove(tmp);
            rc = cli_error("%s: write failed", path);
        }
    }
    free(path);
    free(tmp);
    return rc;
}

static int run_split_or_train(int train, const struct files *fs, const char *output,
                              const struct amuse_sentiment_options *o, double scale)
{
    struct amuse_sentiment_set tr = {0}, va = {0};
    struct amuse_sentiment_set *per_valid = calloc((size_t)fs->n, sizeof *per_valid);
    struct amuse_sentiment_model *m = NULL;
    int rc = 0, st;
    if (!per_valid)
        return cli_error("out of memory");
    if (!train && mkdir(output, 0755) != 0) {
        struct stat sb;
        if (stat(output, &sb) != 0 || !S_ISDIR(sb.st_mode))
            rc = cli_error("%s: cannot create directory", output);
    }
    for (int k = 0; k < fs->n && !rc; k++) {
        struct amuse_sentiment_set s;
        if ((st = amuse_sentiment_set_read(fs->path[k], scale, &s)) != AMUSE_OK) {
            rc = cli_fail(st, fs->path[k]);
            break;
        }
        int *parts = malloc((size_t)s.n * sizeof *parts);
        int64_t counts[3] = {0};
        if (!parts) {
            amuse_sentiment_set_release(&s);
            rc = cli_error("out of memory");
            break;
        }
        for (int64_t i = 0; i < s.n; i++)
            counts[parts[i] = amuse_sentiment_split_part(fs->name[k], s.ids[i], o->seed)]++;
        if (!train) {
            static const char *pn[3] = {"train", "valid", "test"};
            for (int p = 0; p < 3 && !rc; p++)
                rc = write_part(output, fs->name[k], pn[p], &s, parts, p, scale);
            printf("%s: %lld train, %lld validation, %lld test\n", fs->name[k],
                   (long long)counts[0], (long long)counts[1], (long long)counts[2]);
        } else if (!(rc = grow(&tr, counts[0])) && !(rc = grow(&va, counts[1])) &&
                   !(rc = grow(&per_valid[k], counts[1]))) {
            for (int64_t i = 0; i < s.n; i++) {
                if (parts[i] == 1) {
                    per_valid[k].ids[per_valid[k].n] = NULL;
                    per_valid[k].texts[per_valid[k].n] = strdup(s.texts[i]);
                    per_valid[k].ratings[per_valid[k].n++] = s.ratings[i];
                    take(&va, &s, i);
                } else if (parts[i] == 0) {
                    take(&tr, &s, i);
                }
            }
        }
        free(parts);
        amuse_sentiment_set_release(&s);
    }
    if (rc || !train)
        goto out;
    fprintf(stderr, "training on %lld snippets (validation %lld) from %d files\n", (long long)tr.n,
            (long long)va.n, fs->n);
    if ((st = amuse_sentiment_train(&tr, &va, o, &m)) != AMUSE_OK) {
        rc = cli_fail(st, "sentiment train");
        goto out;
    }
    for (int k = 0; k < fs->n && per_valid[k].n > 0; k++) {
        struct amuse_sentiment_result *res = calloc((size_t)per_valid[k].n, sizeof *res);
        if (!res) {
            rc = cli_error("out of memory");
            goto out;
        }
        if ((st = amuse_sentiment_score(m, (const char *const *)per_valid[k].texts, NULL,
                                        (int)per_valid[k].n, res)) != AMUSE_OK) {
            free(res);
            rc = cli_fail(st, fs->path[k]);
            goto out;
        }
        struct amuse_sentiment_eval ev;
        amuse_sentiment_evaluate(per_valid[k].ratings, res, per_valid[k].n, &ev);
        free(res);
        char key[64];
        snprintf(key, sizeof key, "valid_binary_accuracy_%.40s", fs->name[k]);
        amuse_sentiment_set_metric(m, key, ev.binary_accuracy);
        snprintf(key, sizeof key, "valid_macro_f1_%.40s", fs->name[k]);
        amuse_sentiment_set_metric(m, key, ev.macro_f1);
        snprintf(key, sizeof key, "valid_pearson_%.40s", fs->name[k]);
        amuse_sentiment_set_metric(m, key, ev.pearson);
        printf("validation %-40s binary accuracy %.4f  macro-F1 %.4f  r %.4f\n", fs->name[k],
               ev.binary_accuracy, ev.macro_f1, ev.pearson);
    }
    printf("neutral band |score| <= %.2f\n", amuse_sentiment_neutral_threshold(m));
    if ((st = amuse_sentiment_save(m, output)) != AMUSE_OK) {
        rc = cli_fail(st, output);
        goto out;
    }
    printf("wrote %s\n", output);
out:
    for (int k = 0; k < fs->n; k++)
        amuse_sentiment_set_release(&per_valid[k]);
    free(per_valid);
    amuse_sentiment_set_release(&tr);
    amuse_sentiment_set_release(&va);
    amuse_sentiment_free(m);
    return rc;
}

/* ------------------------------------------------------------------------------ dispatch */

int cmd_sentiment(int argc, char **argv)
{
    const char *pos[1024], *output = NULL, *scores = NULL;
    int npos = 0, json = 0, rc = 0;
    double scale = 4, neutral = -1;
    struct amuse_sentiment_options o;
    struct files fs = {0};
    amuse_sentiment_options_default(&o);
    if (argc < 2 || cli_wants_help(argc, argv)) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            while (++i < argc && npos < 1024)
                pos[npos++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc)
                return cli_error("%s: missing value", a);
            const char *v = argv[++i];
            long long n;
            if (strcmp(a, "--data") == 0) {
                rc = add_data(&fs, v);
                /* --data takes several paths: the following non-option arguments too. */
                while (!rc && i + 1 < argc && argv[i + 1][0] != '-')
                    rc = add_data(&fs, argv[++i]);
            } else if (strcmp(a, "--output") == 0)
                output = v;
            else if (strcmp(a, "--vectors") == 0)
                o.vectors = v;
            else if (strcmp(a, "--lexicon") == 0)
                o.lexicon = v;
            else if (strcmp(a, "--description") == 0)
                o.description = v;
            else if (strcmp(a, "--scores") == 0)
                scores = v;
            else if (strcmp(a, "--epochs") == 0) {
                if (!(rc = cli_parse_int(a, v, 1, 1000, &n)))
                    o.epochs = (int)n;
            } else if (strcmp(a, "--hash-bits") == 0) {
                if (!(rc = cli_parse_int(a, v, 4, AMUSE_SENTIMENT_MAX_HASH_BITS, &n)))
                    o.hash_bits = (int)n;
            } else if (strcmp(a, "--seed") == 0) {
                if (!(rc = cli_parse_int(a, v, 0, (1LL << 62), &n)))
                    o.seed = (uint64_t)n;
            } else if (strcmp(a, "--learning-rate") == 0)
                rc = cli_parse_double(a, v, 1e-6, 100, &o.learning_rate);
            else if (strcmp(a, "--ngram-learning-rate") == 0)
                rc = cli_parse_double(a, v, 1e-6, 100, &o.ngram_learning_rate);
            else if (strcmp(a, "--l2") == 0)
                rc = cli_parse_double(a, v, 0, 10, &o.l2);
            else if (strcmp(a, "--neutral") == 0)
                rc = cli_parse_double(a, v, 0, 0.99, &neutral);
            else if (strcmp(a, "--scale") == 0)
                rc = cli_parse_double(a, v, 1e-6, 1e6, &scale);
            else
                rc = cli_error("unknown option '%s' (see 'amuse sentiment --help')", a);
            continue;
        }
        if (npos == 1024)
            return cli_error("too many arguments");
        pos[npos++] = a;
    }
    if (rc)
        goto out;
    const char *sub = npos ? pos[0] : "";
    if (strcmp(sub, "train") == 0 || strcmp(sub, "split") == 0) {
        if (fs.n == 0 || !output || npos != 1) {
            rc = cli_error("sentiment %s: give --data and --output (see 'amuse sentiment --help')",
                           sub);
            goto out;
        }
        o.neutral_threshold = neutral;
        rc = run_split_or_train(sub[0] == 't', &fs, output, &o, scale);
    } else if (strcmp(sub, "eval") == 0) {
        if (npos != 3) {
            rc = cli_error("sentiment eval: give MODEL and FILE.tsv ('-' as MODEL with --scores)");
            goto out;
        }
        rc = run_eval(pos[1], pos[2], scores, scale, neutral >= 0 ? neutral : 0.05, json);
    } else if (npos >= 1) {
        rc = run_score(pos[0], pos + 1, npos - 1, json);
    } else {
        rc = cli_error("sentiment: give a model directory (see 'amuse sentiment --help')");
    }
out:
    files_release(&fs);
    return rc;
}
