/* cmd_train.c - `amuse train <config.json>`: build the model from a recipe, fit it on the
 * recipe's data with Keras semantics, save it, write history.json and training.svg, and report
 * test accuracy. Flags override the recipe's fit settings. Under `mpirun -np N` the ranks train
 * data-parallel (batch_size per rank) and rank 0 alone prints, saves and evaluates. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/data.h"
#include "amuse/model.h"
#include "amuse/runtime.h"
#include "amuse/textdata.h"
#include "core/internal.h" /* am__write_file_atomic */
#include "core/mpi.h"      /* data-parallel runs under mpirun */

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amuse train <config.json> [options]\n\n"
            "Train a model from a recipe (see models/*.json) and save it as a model directory.\n"
            "A recipe whose data section names a text file (data.text) trains a character model:\n"
            "its vocabulary is built from the file and saved in the model's config.\n\n"
            "options:\n"
            "  -o, --output DIR      where to save the model (default: out/<name>)\n"
            "  -e, --epochs N        override fit.epochs\n"
            "  -b, --batch-size N    override fit.batch_size\n"
            "  -t, --threads N       threads for math (default: all cores)\n"
            "  -s, --seed N          seed for initial weights, shuffling and dropout\n"
            "      --train-limit N   use only the first N training samples (before the split)\n"
            "      --resume DIR      continue the run whose training state is in DIR (a model\n"
            "                        directory this command wrote, or its best/ checkpoint) up\n"
            "                        to --epochs / fit.epochs in all; same data and seed\n"
            "      --no-eval         skip the test-set evaluation at the end\n"
            "  -q, --quiet           no progress bar\n"
            "  -h, --help            this help\n\n"
            "Writes <output>/config.json, model.safetensors, history.json, training.svg and\n"
            "training_state.safetensors (what --resume reads); with a ModelCheckpoint callback\n"
            "the best epoch is also kept in <output>/best.\n\n"
            "Under 'mpirun -np N amuse train ...' (a build with MPI: see amuse --version) the N\n"
            "ranks train one model data-parallel: each takes batch_size samples of every global\n"
            "batch of N x batch_size, and gradients are summed across ranks. Threads default to\n"
            "the cores over the ranks on each machine. Rank 0 alone prints and writes files.\n");
}

static char *history_json(const struct amuse_epoch_log *h, int n)
{
    size_t cap = 256 + (size_t)n * 360, at = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    at += (size_t)snprintf(s + at, cap - at, "{\"epochs\": [");
    for (int i = 0; i < n; i++) {
        /* JSON has no NaN: a missing validation figure is null. */
        char vl[32] = "null", va[32] = "null", lr[32] = "null";
        if (!isnan(h[i].val_loss)) {
            snprintf(vl, sizeof vl, "%.6f", h[i].val_loss);
            snprintf(va, sizeof va, "%.6f", h[i].val_accuracy);
        }
        if (isfinite(h[i].learning_rate))
            snprintf(lr, sizeof lr, "%.6g", h[i].learning_rate);
        at += (size_t)snprintf(s + at, cap - at,
                               "%s\n  {\"epoch\": %d, \"loss\": %.6f, \"accuracy\": %.6f, "
                               "\"val_loss\": %s, \"val_accuracy\": %s, \"train_seconds\": %.3f, "
                               "\"val_seconds\": %.3f, \"train_samples\": %lld, "
                               "\"learning_rate\": %s}",
                               i ? "," : "", h[i].epoch, h[i].loss, h[i].accuracy, vl, va,
                               h[i].train_seconds, h[i].val_seconds,
                               (long long)h[i].train_samples, lr);
    }
    snprintf(s + at, cap - at, "\n]}\n");
    return s;
}

int cmd_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"epochs", required_argument, 0, 'e'},
        {"batch-size", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 's'},  {"train-limit", required_argument, 0, 'L'},
        {"no-eval", no_argument, 0, 'N'},     {"quiet", no_argument, 0, 'q'},
        {"resume", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *output = NULL, *resume = NULL;
    long long epochs = 0, batch = 0, threads = 0, seed = -1, limit = 0;
    int quiet = 0, no_eval = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:e:b:t:s:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'e': if (cli_parse_int("--epochs", optarg, 1, 100000, &epochs)) return 2; break;
        case 'b': if (cli_parse_int("--batch-size", optarg, 1, 65536, &batch)) return 2; break;
        case 't': if (cli_parse_int("--threads", optarg, 1, 1024, &threads)) return 2; break;
        case 's': if (cli_parse_int("--seed", optarg, 0, 1LL << 53, &seed)) return 2; break;
        case 'L': if (cli_parse_int("--train-limit", optarg, 1, 1LL << 40, &limit)) return 2; break;
        case 'N': no_eval = 1; break;
        case 'R': resume = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *config = argv[optind];
    int rank = am__mpi_rank(), ranks = am__mpi_size();
    amuse_set_threads((int)threads);
    if (!threads && am__mpi_local_size() > 1) {
        /* Ranks on one machine share its cores. */
        int share = amuse_get_threads() / am__mpi_local_size();
        amuse_set_threads(share > 0 ? share : 1);
    }

    struct amuse_model *m = NULL;
    struct amuse_dataset train = {0}, test = {0};
    struct amuse_epoch_log *history = NULL;
    char *hist = NULL, *path = NULL, *best = NULL, outbuf[512];
    int status = 1, rc;
    if (cli_open_model(config, 1, &m))
        goto out;
    /* A text recipe: the vocabulary and the data set the model's lengths and widths. */
    int text_recipe = amuse_model_config_string(m, "data", "text") != NULL;
    if (text_recipe) {
        amuse_model_free(m);
        m = NULL;
        if ((rc = amuse_text_recipe_load(&m, &train, config, limit))) {
            cli_fail(rc, "cannot load the text recipe");
            goto out;
        }
    }
    struct amuse_fit_options opt;
    if ((rc = amuse_model_fit_options(m, &opt))) {
        cli_fail(rc, config);
        goto out;
    }
    if (epochs)
        opt.epochs = (int)epochs;
    if (batch)
        opt.batch_size = (int)batch;
    if (seed >= 0)
        opt.seed = (uint64_t)seed;
    opt.verbose = !quiet && rank == 0;
    if (!output) {
        snprintf(outbuf, sizeof outbuf, "out/%s", amuse_model_name(m));
        output = outbuf;
    }
    if (opt.checkpoint) {
        size_t n = strlen(output) + 8;
        best = malloc(n);
        if (!best)
            goto out;
        snprintf(best, n, "%s/best", output);
        opt.checkpoint_dir = best;
    }
    /* The training state goes beside the model; a resumed run replaces these weights. */
    opt.state_dir = output;
    opt.resume_dir = resume;
    amuse_model_init_weights(m, opt.seed);
    if (!text_recipe && cli_load_dataset(m, "train", NULL, NULL, limit, &train))
        goto out;
    if (!quiet && rank == 0) {
        amuse_model_summary(m, stdout);
        if (ranks > 1)
            printf("Training on %lld samples (%.0f%% held out for validation), %d ranks x %d "
                   "thread%s, batch %d per rank (%d in all), BLAS %s\n",
                   (long long)train.n, opt.validation_split * 100, ranks, amuse_get_threads(),
                   amuse_get_threads() == 1 ? "" : "s", opt.batch_size, opt.batch_size * ranks,
                   amuse_blas_core());
        else
            printf("Training on %lld samples (%.0f%% held out for validation), %d threads, "
                   "BLAS %s\n",
                   (long long)train.n, opt.validation_split * 100, amuse_get_threads(),
                   amuse_blas_core());
    }
    history = calloc((size_t)opt.epochs, sizeof *history);
    if (!history)
        goto out;
    int ran = 0;
    if ((rc = amuse_model_fit(m, &train, &opt, history, &ran))) {
        cli_fail(rc, resume ? "cannot resume training" : "training failed");
        goto out;
    }
    if (rank != 0) { /* the model is the same on every rank: rank 0 saves and evaluates it */
        status = 0;
        goto out;
    }
    /* Record what produced these weights in the saved config. */
    char meta[512];
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(meta, sizeof meta,
             "{\"epochs_run\": %d, \"batch_size\": %d, \"ranks\": %d, \"seed\": %llu, "
             "\"train_samples\": %lld, \"finished\": \"%s\", \"final_loss\": %.6f, "
             "\"final_accuracy\": %.6f}",
             ran, opt.batch_size, ranks, (unsigned long long)opt.seed, (long long)train.n, when,
             history[ran - 1].loss, history[ran - 1].accuracy);
    amuse_model_config_set(m, "training", meta);
    if ((rc = amuse_model_save(m, output))) {
        cli_fail(rc, "cannot save the model");
        goto out;
    }
    size_t plen = strlen(output) + 32;
    path = malloc(plen);
    hist = history_json(history, ran);
    if (!path || !hist)
        goto out;
    snprintf(path, plen, "%s/training.svg", output);
    if ((rc = amuse_history_write_svg(path, history, ran))) {
        cli_fail(rc, "cannot write the training curves");
        goto out;
    }
    snprintf(path, plen, "%s/history.json", output);
    if ((rc = am__write_file_atomic(path, hist, strlen(hist)))) {
        cli_fail(rc, "cannot write the history");
        goto out;
    }
    if (!quiet)
        printf("Saved %s (config.json, model.safetensors, history.json, training.svg, "
               "training_state.safetensors)\n",
               output);
    if (!no_eval && (amuse_model_config_string(m, "data", "test_images") ||
                     amuse_model_config_string(m, "data", "test_split"))) {
        struct amuse_eval_result res;
        if (cli_load_dataset(m, "test", NULL, NULL, 0, &test))
            goto out;
        if ((rc = amuse_model_evaluate(m, &test, opt.batch_size, &res))) {
            cli_fail(rc, "evaluation failed");
            goto out;
        }
        printf("Test: %lld samples - loss: %.4f - accuracy: %.4f\n", (long long)res.samples,
               res.loss, res.accuracy);
        amuse_eval_result_release(&res);
    }
    status = 0;
out:
    free(hist);
    free(path);
    free(best);
    free(history);
    amuse_dataset_release(&train);
    amuse_dataset_release(&test);
    amuse_model_free(m);
    return status;
}
