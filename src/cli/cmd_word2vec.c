/* cmd_word2vec.c - `amuse word2vec`: word2vec.c's command line, flag for flag (single dash, same
 * defaults), plus -seed, -chars and -skip-invalid. Prints progress to stderr; writes the vector
 * file and the vocabulary atomically. Under mpirun the ranks share the training (-mpi-sync) and
 * rank 0 writes. Not here: word2vec.c's -classes (k-means) output. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/word2vec.h"
#include "core/mpi.h" /* the ranks of an mpirun job */

#include <libgen.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(FILE *out)
{
    fprintf(out,
            "usage: amuse word2vec -train <file> -output <file> [options]\n\n"
            "Train word vectors; the flags and defaults are word2vec.c's.\n\n"
            "  -train <file>        UTF-8 text; words separated by white space, one sentence a line\n"
            "  -output <file>       write the vectors here (word2vec format)\n"
            "  -size <int>          vector dimension (100)\n"
            "  -window <int>        max skip length between words (5)\n"
            "  -sample <float>      down-sample frequent words above this frequency (1e-3; 0 off)\n"
            "  -hs <0|1>            hierarchical softmax (0)\n"
            "  -negative <int>      negative examples (5; 0 off)\n"
            "  -threads <int>       training threads (12)\n"
            "  -iter <int>          training epochs (5)\n"
            "  -min-count <int>     drop words that occur fewer times (5)\n"
            "  -alpha <float>       starting learning rate (0.025 skip-gram, 0.05 CBOW and -subwords)\n"
            "  -binary <0|1>        binary output format (0: text)\n"
            "  -cbow <0|1>          1 CBOW, 0 skip-gram (1)\n"
            "  -save-vocab <file>   write the vocabulary as 'word count' lines\n"
            "  -read-vocab <file>   take the vocabulary from such a file instead of the corpus\n"
            "  -debug <int>         0 quiet, 1 summary, 2 progress too, 3 the settings too (2)\n"
            "  -seed <int>          random seed (1); -threads 1 gives the same bytes every run\n"
            "  -chars <0|1>         every non-space code point is a word (Chinese text) (0)\n"
            "  -skip-invalid <0|1>  drop and count words with invalid UTF-8 instead of failing (0)\n"
            "  -kernel <0|1|2>      skip-gram negative sampling: 0 batched loops, 1 batched sgemm,\n"
            "                       2 per pair as word2vec.c (0); with -subwords, 0 and 1 share\n"
            "                       negatives across a window, 2 draws them per target (fastText)\n"
            "  -subwords <0|1>      fastText skip-gram with character n-grams (implies -cbow 0);\n"
            "                       -output is then a fastText .bin model, plus the .vec vectors (0)\n"
            "  -minn <int>          shortest n-gram, in characters with '<' and '>' (3)\n"
            "  -maxn <int>          longest n-gram (6)\n"
            "  -bucket <int>        n-gram hash buckets (2000000)\n"
            "  -gensim <0|1>        start from gensim 4.2 Word2Vec's defaults instead (CBOW, alpha\n"
            "                       0.025, min-alpha 0.0001, 3 threads); other flags still apply\n"
            "  -min-alpha <float>   the learning rate falls linearly to this (0: alpha * 1e-4)\n"
            "  -mpi-sync <int>      under mpirun: words each rank trains between adding up the\n"
            "                       ranks' updates to the 4096 most frequent words (%d); all\n"
            "                       words every 10 such rounds and at the end of each epoch\n\n"
            "Under 'mpirun -np N amuse word2vec ...' (a build with MPI: see amuse --version) each\n"
            "rank reads the corpus and trains on its Nth of it, and the ranks combine their\n"
            "updates every -mpi-sync words; -threads defaults to the cores over the ranks on a\n"
            "machine. Rank 0 alone prints and writes files.\n",
            AMUSE_W2V_MPI_SYNC_WORDS);
}

struct progress_state {
    int tty;
    double last_line;
    int printed;
};

static void print_progress(const struct amuse_w2v_progress *p, void *ctx)
{
    struct progress_state *s = ctx;
    int eta = (int)(p->eta_seconds + 0.5);
    char line[200];
    snprintf(line, sizeof line,
             "%6.2f%%  alpha %.6f  %.1fk words/s (%.1fk words/s/thread)  ETA %d:%02d:%02d",
             p->fraction * 100, p->alpha, p->words_per_sec / 1000, p->words_per_sec_per_thread / 1000,
             eta / 3600, eta / 60 % 60, eta % 60);
    if (s->tty) {
        fprintf(stderr, "\r%s  ", line);
        s->printed = 1;
    } else if (p->elapsed_seconds - s->last_line >= 10 || p->fraction >= 1.0) {
        fprintf(stderr, "%s\n", line);
        s->last_line = p->elapsed_seconds;
    }
}

static int writable_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return 0;
    int ok = access(dirname(copy), W_OK) == 0;
    free(copy);
    return ok;
}

/* A subword model: output is the fastText .bin; its .vec (text vectors) goes next to it. */
static int save_fasttext(const struct amuse_word_vectors *wv, const char *output)
{
    size_t n = strlen(output);
    int st = amuse_fasttext_save(wv, output);
    if (st != AMUSE_OK)
        return cli_fail(st, "-output"), st;
    char *vec = malloc(n + 5);
    if (!vec)
        return cli_error("out of memory"), AMUSE_ENOMEM;
    memcpy(vec, output, n + 1);
    if (n > 4 && strcmp(output + n - 4, ".bin") == 0)
        vec[n - 4] = '\0';
    strcat(vec, ".vec");
    st = amuse_word_vectors_save(wv, vec, AMUSE_W2V_TEXT);
    if (st != AMUSE_OK)
        cli_fail(st, "-output (.vec)");
    free(vec);
    return st;
}

int cmd_word2vec(int argc, char **argv)
{
    struct amuse_w2v_options o;
    const char *train = NULL, *output = NULL, *save_vocab = NULL, *read_vocab = NULL;
    long long binary = 0, debug = 2, v;
    double dv;
    int alpha_given = 0, cbow_given = 0, threads_given = 0, rc = 1;
    int rank = am__mpi_rank(), ranks = am__mpi_size();
    struct amuse_vocab *vocab = NULL;
    struct amuse_w2v_corpus *corpus = NULL;
    struct amuse_word_vectors *wv = NULL;
    amuse_w2v_options_default(&o);
    if (cli_wants_help(argc, argv) || argc < 2) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* -gensim 1 (gensim's Word2Vec defaults, README "gensim's Word2Vec") is applied before the
     * other flags, wherever it stands, so that they override it; -min-alpha is its decay. */
    long long gensim = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-gensim") == 0 || strcmp(argv[i], "--gensim") == 0) {
            if (cli_parse_int("-gensim", argv[i + 1], 0, 1, &gensim))
                return 2;
            if (gensim)
                amuse_w2v_options_gensim(&o);
        }
    }
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "-gensim") == 0 || strcmp(argv[i], "--gensim") == 0)
            continue;
        if (i + 1 < argc && (strcmp(argv[i], "-min-alpha") == 0 ||
                             strcmp(argv[i], "--min-alpha") == 0)) {
            if (cli_parse_double("-min-alpha", argv[i + 1], 0, 10, &dv))
                return 2;
            o.min_alpha = dv;
            continue;
        }
        const char *f = argv[i];
        if (f[0] == '-' && f[1] == '-')
            f++; /* --size works too */
        if (i + 1 >= argc)
            return cli_error("%s: missing value", argv[i]);
        const char *a = argv[i + 1];
#define INT_FLAG(name, lo, hi, dst)                                                                \
    if (strcmp(f, name) == 0) {                                                                    \
        if (cli_parse_int(name, a, lo, hi, &v))                                                    \
            return 2;                                                                              \
        dst = v;                                                                                   \
        continue;                                                                                  \
    }
        if (strcmp(f, "-train") == 0) {
            train = a;
            continue;
        }
        if (strcmp(f, "-output") == 0) {
            output = a;
            continue;
        }
        if (strcmp(f, "-save-vocab") == 0) {
            save_vocab = a;
            continue;
        }
        if (strcmp(f, "-read-vocab") == 0) {
            read_vocab = a;
            continue;
        }
        INT_FLAG("-size", 1, AMUSE_W2V_MAX_DIM, o.size)
        INT_FLAG("-window", 1, 1000, o.window)
        INT_FLAG("-hs", 0, 1, o.hs)
        INT_FLAG("-negative", 0, 1000, o.negative)
        if (strcmp(f, "-threads") == 0)
            threads_given = 1;
        INT_FLAG("-threads", 1, 512, o.threads)
        INT_FLAG("-mpi-sync", 1000, 1LL << 40, o.mpi_sync_words)
        INT_FLAG("-iter", 1, 1000000, o.iter)
        INT_FLAG("-min-count", 0, 2000000000, o.min_count)
        INT_FLAG("-binary", 0, 1, binary)
        if (strcmp(f, "-cbow") == 0)
            cbow_given = 1;
        INT_FLAG("-cbow", 0, 1, o.cbow)
        INT_FLAG("-debug", 0, 10, debug)
        INT_FLAG("-seed", 0, 9223372036854775807LL, o.seed)
        INT_FLAG("-chars", 0, 1, o.chars)
        INT_FLAG("-skip-invalid", 0, 1, o.skip_invalid)
        INT_FLAG("-kernel", 0, 2, o.kernel)
        /* fastText subwords (-subwords implies skip-gram unless -cbow is given) */
        INT_FLAG("-subwords", 0, 1, o.subwords)
        INT_FLAG("-minn", 1, AMUSE_FASTTEXT_MAX_N, o.minn)
        INT_FLAG("-maxn", 1, AMUSE_FASTTEXT_MAX_N, o.maxn)
        INT_FLAG("-bucket", 1, AMUSE_FASTTEXT_MAX_BUCKET, o.bucket)
#undef INT_FLAG
        if (strcmp(f, "-sample") == 0) {
            if (cli_parse_double("-sample", a, 0, 1, &dv))
                return 2;
            o.sample = dv;
            continue;
        }
        if (strcmp(f, "-alpha") == 0) {
            if (cli_parse_double("-alpha", a, 1e-9, 10, &dv))
                return 2;
            o.alpha = dv;
            alpha_given = 1;
            continue;
        }
        if (strcmp(f, "-classes") == 0)
            return cli_error("-classes (k-means word classes) is not supported");
        return cli_error("unknown option '%s' (see 'amuse word2vec --help')", argv[i]);
    }
    (void)alpha_given;
    if (o.subwords && !cbow_given)
        o.cbow = 0;
    if (o.subwords && o.cbow)
        return cli_error("-subwords 1 trains skip-gram: -cbow 1 is not supported with it");
    if (o.subwords && o.hs)
        return cli_error("-subwords 1 trains with negative sampling: -hs 1 is not supported with it");
    if (o.subwords && o.minn > o.maxn)
        return cli_error("-minn %d is larger than -maxn %d", o.minn, o.maxn);
    if (!train)
        return cli_error("-train <file> is required");
    if (!output && !save_vocab)
        return cli_error("nothing to do: give -output and/or -save-vocab");
    if (output && !writable_dir_of(output))
        return cli_error("%s: cannot write in that directory", output);

    if (ranks > 1) {
        if (!threads_given) { /* ranks on one machine share its cores */
            int share = omp_get_num_procs() / am__mpi_local_size();
            o.threads = share > 0 ? share : 1;
        }
        if (rank != 0) { /* rank 0 speaks and writes for the job */
            debug = 0;
            save_vocab = NULL;
        }
    }
    struct progress_state ps = {isatty(2), 0, 0};
    if (debug >= 2) {
        o.progress = print_progress;
        o.progress_ctx = &ps;
    }
    int st;
    if (read_vocab && (st = amuse_vocab_read(read_vocab, &vocab)) != AMUSE_OK) {
        cli_fail(st, "-read-vocab");
        goto out;
    }
    if ((st = amuse_w2v_corpus_read(train, &o, vocab, &corpus)) != AMUSE_OK) {
        cli_fail(st, "-train");
        goto out;
    }
    const struct amuse_w2v_corpus_stats *cs = amuse_w2v_corpus_stats(corpus);
    if ((gensim && debug >= 1) || debug >= 3)
        fprintf(stderr, "Settings: %s size %d window %d min-count %d sample %g negative %d hs %d "
                "iter %d alpha %g min-alpha %g threads %d seed %llu%s\n",
                o.cbow ? "cbow" : "skip-gram", o.size, o.window, o.min_count, o.sample, o.negative,
                o.hs, o.iter, o.alpha > 0 ? o.alpha : (o.cbow ? 0.05 : 0.025), o.min_alpha,
                o.threads, (unsigned long long)o.seed, gensim ? " (gensim defaults)" : "");
    if (debug >= 1 && ranks > 1)
        fprintf(stderr, "Ranks: %d x %d thread%s, combining updates every %lld words per rank\n",
                ranks, o.threads, o.threads == 1 ? "" : "s",
                (long long)(o.mpi_sync_words > 0 ? o.mpi_sync_words : AMUSE_W2V_MPI_SYNC_WORDS));
    if (debug >= 1) {
        fprintf(stderr, "Vocab size: %lld\nWords in train file: %lld\n",
                (long long)amuse_vocab_size(amuse_w2v_corpus_vocab(corpus)),
                (long long)cs->train_words);
        if (cs->dropped_long)
            fprintf(stderr, "Dropped %lld tokens longer than %d bytes\n",
                    (long long)cs->dropped_long, AMUSE_W2V_MAX_WORD_BYTES);
        if (cs->dropped_invalid)
            fprintf(stderr, "Dropped %lld tokens with invalid UTF-8\n",
                    (long long)cs->dropped_invalid);
    }
    if (save_vocab && (st = amuse_vocab_save(amuse_w2v_corpus_vocab(corpus), save_vocab)) != AMUSE_OK) {
        cli_fail(st, "-save-vocab");
        goto out;
    }
    if (!output) {
        rc = 0;
        goto out;
    }
    if ((st = amuse_w2v_train(corpus, &o, &wv)) != AMUSE_OK) {
        if (ps.printed)
            fputc('\n', stderr);
        cli_fail(st, "training");
        goto out;
    }
    if (ps.printed)
        fputc('\n', stderr);
    amuse_w2v_corpus_free(corpus); /* the ids are not needed for writing */
    corpus = NULL;
    if (rank != 0) { /* every rank holds the same averaged vectors */
        rc = 0;
        goto out;
    }
    if (o.subwords) {
        if ((st = save_fasttext(wv, output)) != AMUSE_OK)
            goto out;
    } else if ((st = amuse_word_vectors_save(wv, output,
                                             binary ? AMUSE_W2V_BINARY : AMUSE_W2V_TEXT)) !=
               AMUSE_OK) {
        cli_fail(st, "-output");
        goto out;
    }
    rc = 0;
out:
    amuse_word_vectors_free(wv);
    amuse_w2v_corpus_free(corpus);
    amuse_vocab_free(vocab);
    return rc;
}
