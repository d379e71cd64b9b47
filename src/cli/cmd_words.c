/* cmd_words.c - `amuse words`: query and evaluate word2vec files and fastText models (similar,
 * analogy, doesnt-match, similarity, eval-analogies, eval-pairs). Loads the file (text, binary or
 * fastText .bin, detected), prints "word<TAB>score" lines or a short report; a word a fastText
 * model composes from its n-grams is noted on stderr. It does not train (see cmd_word2vec.c). */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/word2vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The file formats the evaluations read, shared by the general help and theirs. */
#define ANALOGY_FORMAT                                                                             \
    "  questions file: UTF-8 text, one question per line, 4 words separated by spaces:\n"          \
    "  A B C D (A is to B as C is to D; the answer is D). A line starting with ':' names\n"        \
    "  a section (': capital-common-countries'); the first 5 sections count as semantic,\n"        \
    "  the rest as syntactic (as in questions-words.txt). Case is folded on both sides;\n"         \
    "  a question with a word outside the first --restrict words is skipped (counted).\n"          \
    "  word2vec's questions-words.txt is in data/eval/.\n"
#define PAIRS_FORMAT                                                                               \
    "  pairs file: UTF-8 text, one pair per line: word1<TAB>word2<TAB>score (exactly two\n"        \
    "  tabs; the score a human rating on any scale). Lines starting with '#' and empty\n"          \
    "  lines are skipped. Reported: Spearman and\n"                                                \
    "  Pearson correlation between the scores and the cosines, and the share of pairs\n"           \
    "  with a word outside the first --restrict words (left out, as gensim). WordSim-353\n"        \
    "  (wordsim353.tsv) has this format.\n"

static const struct {
    const char *name, *usage, *text;
} subcommands[] = {
    {"similar", "similar <vectors> WORD... [--minus WORD]... [-k N]",
     "  The k words nearest by cosine to the mean of the WORDs' unit vectors minus the\n"
     "  --minus words' (gensim's most_similar).\n"},
    {"analogy", "analogy <vectors> A B C [-k N]", "  A is to B as C is to ? (3CosAdd).\n"},
    {"doesnt-match", "doesnt-match <vectors> WORD...",
     "  The word furthest from the mean of the others (unknown words are ignored).\n"},
    {"similarity", "similarity <vectors> A B", "  The cosine similarity of A and B.\n"},
    {"eval-analogies", "eval-analogies <vectors> <questions file> [--restrict N (30000)]",
     "  Analogy accuracy, semantic and syntactic, as gensim's "
     "evaluate_word_analogies.\n" ANALOGY_FORMAT},
    {"eval-pairs", "eval-pairs <vectors> <pairs file> [--restrict N (300000)]",
     "  Correlation with human similarity ratings, as gensim's "
     "evaluate_word_pairs.\n" PAIRS_FORMAT},
};
#define N_SUBCOMMANDS (int)(sizeof subcommands / sizeof subcommands[0])

static void help(FILE *out)
{
    fprintf(out, "usage: amuse words <subcommand> <vectors> [arguments] [options]\n\n"
                 "Query and evaluate a word2vec file (text or binary) or a fastText .bin model; the\n"
                 "format is detected. Words are looked up as written, else lower-cased (ASCII). A\n"
                 "fastText model composes words it has not seen from their character n-grams\n"
                 "(noted on stderr).\n\n");
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %s\n", subcommands[i].usage);
    fprintf(out, "\noptions:\n"
                 "  -k N              how many words to list (10)\n"
                 "  --format F        text, binary, fasttext or auto (auto)\n"
                 "  --restrict N      evaluate over the first N words only\n\n"
                 "file formats:\n" ANALOGY_FORMAT PAIRS_FORMAT
                 "\n'amuse words <subcommand> --help' describes one subcommand.\n");
}

/* 1 and the subcommand's help printed, if argv[1] names one and --help is given. */
static int subcommand_help(int argc, char **argv)
{
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        if (argc > 1 && strcmp(argv[1], subcommands[i].name) == 0) {
            printf("usage: amuse words %s\n\n%s\noptions:\n"
                   "  --format F        text, binary, fasttext or auto (auto)\n"
                   "  -h, --help        this help\n",
                   subcommands[i].usage, subcommands[i].text);
            return 1;
        }
    return 0;
}

int cmd_words(int argc, char **argv)
{
    const char *pos[1100], *minus[1024];
    int npos = 0, nminus = 0, rc = 1, st;
    long long k = 10, restrict_rows = 0;
    int format = AMUSE_W2V_AUTO;
    struct amuse_word_vectors *wv = NULL;
    struct amuse_w2v_hit *hits = NULL;
    if (argc >= 2 && cli_wants_help(argc, argv) && subcommand_help(argc, argv))
        return 0;
    if (argc < 2 || cli_wants_help(argc, argv)) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-k") == 0 || strcmp(a, "--restrict") == 0 || strcmp(a, "--minus") == 0 ||
            strcmp(a, "--format") == 0) {
            if (i + 1 >= argc)
                return cli_error("%s: missing value", a);
            const char *val = argv[++i];
            if (strcmp(a, "-k") == 0 && cli_parse_int("-k", val, 1, 100000, &k))
                return 2;
            if (strcmp(a, "--restrict") == 0 &&
                cli_parse_int("--restrict", val, 1, AMUSE_W2V_MAX_WORDS, &restrict_rows))
                return 2;
            if (strcmp(a, "--minus") == 0) {
                if (nminus == 1024)
                    return cli_error("too many --minus words");
                minus[nminus++] = val;
            }
            if (strcmp(a, "--format") == 0) {
                if (strcmp(val, "text") == 0)
                    format = AMUSE_W2V_TEXT;
                else if (strcmp(val, "binary") == 0)
                    format = AMUSE_W2V_BINARY;
                else if (strcmp(val, "fasttext") == 0)
                    format = AMUSE_W2V_FASTTEXT;
                else if (strcmp(val, "auto") == 0)
                    format = AMUSE_W2V_AUTO;
                else
                    return cli_error("--format: '%s' is not text, binary, fasttext or auto", val);
            }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0')
            return cli_error("unknown option '%s' (see 'amuse words --help')", a);
        if (npos == 1100)
            return cli_error("too many arguments");
        pos[npos++] = a;
    }
    if (npos < 2)
        return cli_error("words: give a subcommand and a vectors file (see 'amuse words --help')");
    const char *sub = pos[0], *path = pos[1];
    const char *const *words = pos + 2;
    int nwords = npos - 2;
    static const char *const subs[] = {"similar", "analogy", "doesnt-match", "similarity",
                                       "eval-analogies", "eval-pairs"};
    static const int want[] = {-1, 3, -1, 2, 1, 1}; /* word count (-1: at least one) */
    int which = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(sub, subs[i]) == 0)
            which = i;
    if (which < 0)
        return cli_error("words: unknown subcommand '%s' (see 'amuse words --help')", sub);
    if ((want[which] < 0 && nwords < 1) || (want[which] >= 0 && nwords != want[which]))
        return cli_error("words %s: expected %s%d argument%s after the vectors file", sub,
                         want[which] < 0 ? "at least " : "", want[which] < 0 ? 1 : want[which],
                         want[which] == 1 || want[which] < 0 ? "" : "s");
    if ((st = amuse_word_vectors_load(path, format, &wv)) != AMUSE_OK)
        return cli_fail(st, "cannot load vectors");
    if (amuse_word_vectors_has_subwords(wv) && which <= 3 && which != 2) {
        for (int i = 0; i < nwords; i++)
            if (amuse_vocab_lookup(wv->vocab, words[i]) < 0)
                fprintf(stderr, "amuse: '%s' is not in the vocabulary: composed from its "
                        "character n-grams\n", words[i]);
        for (int i = 0; i < nminus; i++)
            if (amuse_vocab_lookup(wv->vocab, minus[i]) < 0)
                fprintf(stderr, "amuse: '%s' is not in the vocabulary: composed from its "
                        "character n-grams\n", minus[i]);
    }
    hits = malloc((size_t)k * sizeof *hits);
    if (!hits) {
        cli_error("out of memory");
        goto out;
    }
    int n = 0;
    switch (which) {
    case 0:
        st = amuse_w2v_similar(wv, words, nwords, minus, nminus, (int)k, restrict_rows, hits, &n);
        break;
    case 1:
        st = amuse_w2v_analogy(wv, words[0], words[1], words[2], (int)k, hits, &n);
        break;
    case 2: {
        int64_t at;
        if ((st = amuse_w2v_doesnt_match(wv, words, nwords, &at)) == AMUSE_OK)
            printf("%s\n", amuse_vocab_word(wv->vocab, at));
        break;
    }
    case 3: {
        float s;
        if ((st = amuse_w2v_similarity(wv, words[0], words[1], &s)) == AMUSE_OK)
            printf("%.6f\n", (double)s);
        break;
    }
    case 4: {
        struct amuse_w2v_analogy_result r;
        if ((st = amuse_w2v_eval_analogies(wv, words[0], restrict_rows, &r)) == AMUSE_OK)
            printf("semantic accuracy:  %6.2f%%  (%lld/%lld)\n"
                   "syntactic accuracy: %6.2f%%  (%lld/%lld)\n"
                   "total accuracy:     %6.2f%%  (%lld/%lld)\n"
                   "questions seen:     %lld of %lld (%lld skipped: a word outside the first %lld)\n",
                   r.semantic_accuracy * 100, (long long)r.semantic_correct,
                   (long long)r.semantic_seen, r.syntactic_accuracy * 100,
                   (long long)r.syntactic_correct, (long long)r.syntactic_seen, r.accuracy * 100,
                   (long long)r.correct, (long long)r.seen, (long long)r.seen,
                   (long long)r.questions, (long long)r.skipped,
                   restrict_rows > 0 ? restrict_rows : 30000LL);
        break;
    }
    case 5: {
        struct amuse_w2v_pairs_result r;
        if ((st = amuse_w2v_eval_pairs(wv, words[0], restrict_rows, &r)) == AMUSE_OK) {
            printf("spearman: %.4f\npearson:  %.4f\noov:      %.2f%% (%lld of %lld pairs)\n",
                   r.spearman, r.pearson, r.oov_ratio, (long long)r.oov,
                   (long long)(r.oov + r.pairs));
            if (r.skipped_lines)
                printf("skipped:  %lld lines that are not 'w1<TAB>w2<TAB>score'\n",
                       (long long)r.skipped_lines);
        }
        break;
    }
    }
    if (st != AMUSE_OK) {
        cli_fail(st, sub);
        goto out;
    }
    for (int i = 0; i < n; i++)
        printf("%s\t%.6f\n", amuse_vocab_word(wv->vocab, hits[i].index), (double)hits[i].score);
    rc = 0;
out:
    free(hits);
    amuse_word_vectors_free(wv);
    return rc;
}
