/* cmd_glove.c - `amuse glove`: the GloVe reference tool's four programs as stages with their flags,
 * standard input and output (vocab = vocab_count, cooccur, shuffle, train = glove), and one
 * command that runs them all without intermediate files (`amuse glove -train corpus -output f`).
 * Vectors are written in the word2vec text or binary format. Not here: the reference's
 * checkpoints, initial-parameter files, gradsq files and its "<unk>" row. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/glove.h"
#include "amuse/word2vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { VOCAB = 1, COOCCUR = 2, SHUFFLE = 4, TRAIN = 8, PIPELINE = 16, ALL = 31 };

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: amuse glove -train <corpus> -output <vectors> [options]   the whole pipeline\n"
        "       amuse glove vocab [options] < corpus > vocab.txt\n"
        "       amuse glove cooccur -vocab-file vocab.txt [options] < corpus > cooccurrence.bin\n"
        "       amuse glove shuffle [options] < cooccurrence.bin > cooccurrence.shuf.bin\n"
        "       amuse glove train -input-file cooccurrence.shuf.bin -vocab-file vocab.txt\n"
        "                         -output vectors.txt [options]\n\n"
        "GloVe word vectors. The stages are the reference tool's vocab_count, cooccur,\n"
        "shuffle and glove with their flags and defaults, and read and write its files;\n"
        "vectors are written in the word2vec format every other amuse command reads.\n\n"
        "vocab:     -min-count <int> (1), -max-vocab <int> (0: no limit)\n"
        "cooccur:   -vocab-file <file>, -window-size <int> (15), -symmetric <0|1> (1),\n"
        "           -distance-weighting <0|1> (1), -memory <GB> (4.0), -max-product <int>,\n"
        "           -overflow-length <int>, -overflow-file <prefix> (temporary files; $TMPDIR)\n"
        "shuffle:   -memory <GB> (4.0), -seed <int>, -vocab-file <file> (to check word ids)\n"
        "train:     -input-file <file>, -vocab-file <file>, -output <file> or -save-file <name>\n"
        "           (writes <name>.txt, .bin or both as -binary 0, 1, 2),\n"
        "           -vector-size <int> (50),\n"
        "           -iter <int> (25), -eta <float> (0.05), -alpha <float> (0.75),\n"
        "           -x-max <float> (100), -grad-clip <float> (100), -binary <0|1|2> (0),\n"
        "           -model <0|1|2> (2: W + W~, 1: W, 0: W, bias, W~, bias~), -seed <int> (1)\n"
        "all:       -threads <int> (8), -verbose <0|1|2> (2), -chars <0|1> (0: every code point\n"
        "           is a word, for Chinese), -skip-invalid <0|1> (0)\n"
        "pipeline:  -train <corpus>, -output <file>, -save-vocab <file>, and every flag above\n");
}

struct glove_args {
    struct amuse_glove_options o;
    const char *vocab_file, *input_file, *output, *save_file, *train, *save_vocab;
    long long binary, verbose;
};

static int parse(int stage, int argc, char **argv, int first, struct glove_args *g)
{
    long long v;
    double d;
    for (int i = first; i < argc; i += 2) {
        const char *f = argv[i];
        if (f[0] == '-' && f[1] == '-')
            f++;
        if (i + 1 >= argc)
            return cli_error("%s: missing value", argv[i]);
        const char *a = argv[i + 1];
        int allowed = 0;
#define STR(name, mask, dst)                                                                       \
    if (strcmp(f, name) == 0) {                                                                    \
        allowed = mask;                                                                            \
        dst = a;                                                                                   \
    } else
#define INT(name, mask, lo, hi, dst)                                                               \
    if (strcmp(f, name) == 0) {                                                                    \
        allowed = mask;                                                                            \
        if (cli_parse_int(name, a, lo, hi, &v))                                                    \
            return 2;                                                                              \
        dst = v;                                                                                   \
    } else
#define DBL(name, mask, lo, hi, dst)                                                               \
    if (strcmp(f, name) == 0) {                                                                    \
        allowed = mask;                                                                            \
        if (cli_parse_double(name, a, lo, hi, &d))                                                 \
            return 2;                                                                              \
        dst = d;                                                                                   \
    } else
        STR("-vocab-file", COOCCUR | SHUFFLE | TRAIN, g->vocab_file)
        STR("-input-file", TRAIN, g->input_file)
        STR("-output", TRAIN | PIPELINE, g->output)
        STR("-save-file", TRAIN | PIPELINE, g->save_file)
        STR("-train", PIPELINE, g->train)
        STR("-save-vocab", PIPELINE, g->save_vocab)
        STR("-overflow-file", COOCCUR | SHUFFLE | PIPELINE, g->o.temp_prefix)
        INT("-min-count", VOCAB | PIPELINE, 0, 9000000000000000000LL, g->o.min_count)
        INT("-max-vocab", VOCAB | PIPELINE, 0, 9000000000000000000LL, g->o.max_vocab)
        INT("-window-size", COOCCUR | PIPELINE, 1, 1000, g->o.window_size)
        INT("-symmetric", COOCCUR | PIPELINE, 0, 1, g->o.symmetric)
        INT("-distance-weighting", COOCCUR | PIPELINE, 0, 1, g->o.distance_weighting)
        INT("-max-product", COOCCUR | PIPELINE, 0, 1LL << 40, g->o.max_product)
        INT("-overflow-length", COOCCUR | PIPELINE, 0, 1LL << 40, g->o.overflow_length)
        DBL("-memory", COOCCUR | SHUFFLE | PIPELINE, 1e-6, 1024, g->o.memory)
        INT("-vector-size", TRAIN | PIPELINE, 1, AMUSE_W2V_MAX_DIM, g->o.vector_size)
        INT("-iter", TRAIN | PIPELINE, 1, 1000000, g->o.iter)
        DBL("-eta", TRAIN | PIPELINE, 1e-12, 1e6, g->o.eta)
        DBL("-alpha", TRAIN | PIPELINE, 0, 100, g->o.alpha)
        DBL("-x-max", TRAIN | PIPELINE, 1e-12, 1e12, g->o.x_max)
        DBL("-grad-clip", TRAIN | PIPELINE, 1e-12, 1e12, g->o.grad_clip)
        INT("-binary", TRAIN | PIPELINE, 0, 2, g->binary)
        INT("-model", TRAIN | PIPELINE, 0, 2, g->o.model)
        INT("-seed", SHUFFLE | TRAIN | PIPELINE, 0, 9223372036854775807LL, g->o.seed)
        INT("-threads", ALL, 1, 512, g->o.threads)
        INT("-verbose", ALL, 0, 2, g->verbose)
        INT("-chars", VOCAB | COOCCUR | PIPELINE, 0, 1, g->o.chars)
        INT("-skip-invalid", VOCAB | COOCCUR | PIPELINE, 0, 1, g->o.skip_invalid)
        return cli_error("unknown option '%s' (see 'amuse glove --help')", argv[i]);
#undef STR
#undef INT
#undef DBL
        if (!(allowed & stage))
            return cli_error("%s does not apply to this stage (see 'amuse glove --help')", argv[i]);
    }
    return 0;
}

static void print_progress(const struct amuse_glove_progress *p, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "iter: %03d, cost: %f, %.1f s\n", p->iter, p->cost, p->elapsed_seconds);
}

/* Write the vectors: -output as given, or -save-file <name> with .txt / .bin / both. */
static int save_vectors(const struct glove_args *g, const struct amuse_word_vectors *wv)
{
    int st;
    if (g->output) {
        if ((st = amuse_word_vectors_save(
                 wv, g->output, g->binary == 1 ? AMUSE_W2V_BINARY : AMUSE_W2V_TEXT)) != AMUSE_OK)
            return cli_fail(st, "-output");
        return 0;
    }
    for (int b = 0; b <= 1; b++) {
        if ((b == 0 && g->binary == 1) || (b == 1 && g->binary == 0))
            continue;
        size_t len = strlen(g->save_file) + 5;
        char *path = malloc(len);
        if (!path)
            return cli_error("out of memory");
        snprintf(path, len, "%s.%s", g->save_file, b ? "bin" : "txt");
        st = amuse_word_vectors_save(wv, path, b ? AMUSE_W2V_BINARY : AMUSE_W2V_TEXT);
        free(path);
        if (st != AMUSE_OK)
            return cli_fail(st, "-save-file");
    }
    return 0;
}

static int stage_vocab(struct glove_args *g)
{
    struct amuse_vocab *v = NULL;
    int64_t tokens = 0;
    int st = amuse_glove_vocab_count("/dev/stdin", &g->o, &v, &tokens);
    if (st != AMUSE_OK)
        return cli_fail(st, "vocab");
    for (int64_t i = 0; i < amuse_vocab_size(v); i++)
        printf("%s %lld\n", amuse_vocab_word(v, i), (long long)amuse_vocab_count(v, i));
    if (g->verbose > 0)
        fprintf(stderr, "Processed %lld tokens.\nUsing vocabulary of size %lld.\n",
                (long long)tokens, (long long)amuse_vocab_size(v));
    amuse_vocab_free(v);
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_error("vocab: write error on standard output");
    return 0;
}

static int write_records(void *ctx, const struct amuse_glove_record *r, size_t n)
{
    (void)ctx;
    if (fwrite(r, sizeof *r, n, stdout) != n)
        return AMUSE_EIO;
    return AMUSE_OK;
}

static int stage_cooccur(struct glove_args *g)
{
    struct amuse_vocab *v = NULL;
    struct amuse_glove_stats s = {0};
    if (!g->vocab_file)
        g->vocab_file = "vocab.txt";
    int st = amuse_vocab_read(g->vocab_file, &v);
    if (st != AMUSE_OK)
        return cli_fail(st, "-vocab-file");
    if (isatty(1)) {
        amuse_vocab_free(v);
        return cli_error("cooccur writes binary records: redirect standard output to a file");
    }
    st = amuse_glove_cooccur("/dev/stdin", v, &g->o, write_records, NULL, &s);
    amuse_vocab_free(v);
    if (st == AMUSE_EIO && !amuse_last_error()[0])
        return cli_error("cooccur: write error on standard output");
    if (st != AMUSE_OK)
        return cli_fail(st, "cooccur");
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_error("cooccur: write error on standard output");
    if (g->verbose > 0)
        fprintf(stderr,
                "Processed %lld tokens; %lld co-occurrence records, %lld runs spilled, "
                "%lld cells in memory.\n",
                (long long)s.tokens, (long long)s.records, (long long)s.runs,
                (long long)s.dense_cells);
    return 0;
}

static int stage_shuffle(struct glove_args *g)
{
    struct amuse_vocab *v = NULL;
    int st;
    if (g->vocab_file && (st = amuse_vocab_read(g->vocab_file, &v)) != AMUSE_OK)
        return cli_fail(st, "-vocab-file");
    st = amuse_glove_shuffle(stdin, "standard input", stdout, &g->o, amuse_vocab_size(v));
    amuse_vocab_free(v);
    if (st != AMUSE_OK)
        return cli_fail(st, "shuffle");
    if (fflush(stdout) != 0 || ferror(stdout))
        return cli_error("shuffle: write error on standard output");
    return 0;
}

static int stage_train(struct glove_args *g)
{
    struct amuse_vocab *v = NULL;
    struct amuse_glove_record *recs = NULL;
    struct amuse_word_vectors *wv = NULL;
    int64_t n = 0;
    int st, rc = 1;
    if (!g->vocab_file)
        g->vocab_file = "vocab.txt";
    if (!g->input_file)
        g->input_file = "cooccurrence.shuf.bin";
    if (!g->output && !g->save_file)
        g->save_file = "vectors";
    if ((st = amuse_vocab_read(g->vocab_file, &v)) != AMUSE_OK) {
        cli_fail(st, "-vocab-file");
        goto out;
    }
    if ((st = amuse_glove_records_read(g->input_file, amuse_vocab_size(v), &recs, &n)) !=
        AMUSE_OK) {
        cli_fail(st, "-input-file");
        goto out;
    }
    if (g->verbose > 0)
        fprintf(stderr, "Read %lld records; vocab size %lld, vector size %d, x_max %g, alpha %g\n",
                (long long)n, (long long)amuse_vocab_size(v), g->o.vector_size, g->o.x_max,
                g->o.alpha);
    if ((st = amuse_glove_train(v, recs, n, &g->o, &wv, NULL)) != AMUSE_OK) {
        cli_fail(st, "train");
        goto out;
    }
    free(recs);
    recs = NULL;
    rc = save_vectors(g, wv);
out:
    amuse_word_vectors_free(wv);
    free(recs);
    amuse_vocab_free(v);
    return rc;
}

static int pipeline(struct glove_args *g)
{
    struct amuse_vocab *v = NULL;
    struct amuse_word_vectors *wv = NULL;
    struct amuse_glove_stats s;
    int rc = 1;
    if (!g->train)
        return cli_error("-train <corpus> is required");
    if (!g->output && !g->save_file)
        return cli_error("-output <file> (or -save-file <name>) is required");
    int st = amuse_glove_pipeline(g->train, &g->o, &v, &wv, &s);
    if (st != AMUSE_OK) {
        cli_fail(st, "glove");
        goto out;
    }
    if (g->verbose > 0)
        fprintf(stderr,
                "%lld tokens, %lld words, %lld co-occurrence records (%lld runs spilled)\n"
                "stage vocab: %.2f s\nstage cooccur: %.2f s\nstage shuffle: %.2f s\n"
                "stage train: %.2f s\nfinal cost: %f\n",
                (long long)s.tokens, (long long)s.vocab_size, (long long)s.records,
                (long long)s.runs, s.seconds_vocab, s.seconds_cooccur, s.seconds_shuffle,
                s.seconds_train, s.final_cost);
    if (g->save_vocab && (st = amuse_vocab_save(v, g->save_vocab)) != AMUSE_OK) {
        cli_fail(st, "-save-vocab");
        goto out;
    }
    rc = save_vectors(g, wv);
out:
    amuse_word_vectors_free(wv);
    amuse_vocab_free(v);
    return rc;
}

int cmd_glove(int argc, char **argv)
{
    struct glove_args g;
    memset(&g, 0, sizeof g);
    amuse_glove_options_default(&g.o);
    g.verbose = 2;
    if (cli_wants_help(argc, argv) || argc < 2) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int stage;
    } stages[] = {{"vocab", VOCAB},     {"vocab_count", VOCAB}, {"cooccur", COOCCUR},
                  {"shuffle", SHUFFLE}, {"train", TRAIN},       {"glove", TRAIN}};
    int stage = PIPELINE, first = 1;
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        if (strcmp(argv[1], stages[i].name) == 0)
            stage = stages[i].stage, first = 2;
    int rc = parse(stage, argc, argv, first, &g);
    if (rc)
        return rc;
    if (g.verbose >= 2 && (stage == TRAIN || stage == PIPELINE)) {
        g.o.progress = print_progress;
        g.o.progress_ctx = NULL;
    }
    switch (stage) {
    case VOCAB:
        return stage_vocab(&g);
    case COOCCUR:
        return stage_cooccur(&g);
    case SHUFFLE:
        return stage_shuffle(&g);
    case TRAIN:
        return stage_train(&g);
    default:
        return pipeline(&g);
    }
}
