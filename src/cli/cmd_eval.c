/* cmd_eval.c - `amuse eval <model>`: loss, accuracy and per-class accuracy on a labelled set (the
 * model's test data by default), as a table or as JSON. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/data.h"
#include "amuse/model.h"
#include "amuse/runtime.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: amuse eval <model-dir> [options]\n\n"
                 "Evaluate a trained model on its test set (config data.test_*) or on given IDX "
                 "files.\n\noptions:\n"
                 "      --images FILE     IDX images (gzip or plain)\n"
                 "      --labels FILE     IDX labels\n"
                 "      --data PATH       a voice model's clips: manifest CSV or directory\n"
                 "  -b, --batch-size N    batch size (default 128)\n"
                 "  -t, --threads N       threads (default: all cores)\n"
                 "      --limit N         only the first N samples\n"
                 "      --json            one JSON object on stdout\n"
                 "  -h, --help            this help\n");
}

/* ", \"confusion\": [[...], ...]" (row: true class, column: predicted) for a classifier with
 * one output row and int32 targets; nothing otherwise. */
static void print_confusion(struct amuse_model *m, const struct amuse_dataset *d, int batch)
{
    int64_t k = amuse_shape_size(amuse_model_output_shape(m));
    if (amuse_model_output_rows(m) != 1 || d->target.dtype != AMUSE_INT32 || !d->target.i32 ||
        k < 2 || k > 256 || d->n_inputs != 1)
        return;
    float *out = malloc((size_t)(d->n * k) * sizeof *out);
    int64_t *count = calloc((size_t)(k * k), sizeof *count);
    if (out && count && amuse_model_predict(m, d->input[0].f32, d->n, batch, out) == AMUSE_OK) {
        for (int64_t i = 0; i < d->n; i++) {
            int64_t best = 0, truth = d->target.i32[i];
            for (int64_t j = 1; j < k; j++)
                if (out[i * k + j] > out[i * k + best])
                    best = j;
            if (truth >= 0 && truth < k)
                count[truth * k + best]++;
        }
        printf(", \"confusion\": [");
        for (int64_t t = 0; t < k; t++) {
            printf("%s[", t ? ", " : "");
            for (int64_t j = 0; j < k; j++)
                printf("%s%lld", j ? ", " : "", (long long)count[t * k + j]);
            printf("]");
        }
        printf("]");
    }
    free(out);
    free(count);
}

int cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"images", required_argument, 0, 'I'}, {"labels", required_argument, 0, 'L'},
        {"data", required_argument, 0, 'D'},
        {"batch-size", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"limit", required_argument, 0, 'n'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *images = NULL, *labels = NULL, *data = NULL;
    long long batch = 128, threads = 0, limit = 0;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'I': images = optarg; break;
        case 'L': labels = optarg; break;
        case 'D': data = optarg; break;
        case 'b': if (cli_parse_int("--batch-size", optarg, 1, 65536, &batch)) return 2; break;
        case 't': if (cli_parse_int("--threads", optarg, 1, 1024, &threads)) return 2; break;
        case 'n': if (cli_parse_int("--limit", optarg, 1, 1LL << 40, &limit)) return 2; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || (!images) != (!labels) || (data && images)) {
        usage(stderr);
        return 2;
    }
    amuse_set_threads((int)threads);
    struct amuse_model *m;
    struct amuse_dataset d = {0};
    struct amuse_eval_result res = {0};
    int status = 1, rc;
    if (cli_open_model(argv[optind], 0, &m))
        return 1;
    if (cli_load_dataset(m, "test", data ? data : images, labels, limit, &d))
        goto out;
    if ((rc = amuse_model_evaluate(m, &d, (int)batch, &res))) {
        cli_fail(rc, "evaluation failed");
        goto out;
    }
    if (json) {
        printf("{\"model\": ");
        cli_json_string(stdout, amuse_model_name(m));
        printf(", \"samples\": %lld, \"loss\": %.6f, \"accuracy\": %.6f, \"seconds\": %.4f, "
               "\"class_accuracy\": [",
               (long long)res.samples, res.loss, res.accuracy, res.seconds);
        for (int k = 0; k < res.n_classes; k++)
            printf(isnan(res.class_accuracy[k]) ? "%snull" : "%s%.6f", k ? ", " : "",
                   res.class_accuracy[k]);
        printf("]");
        print_confusion(m, &d, (int)batch);
        printf("}\n");
    } else {
        printf("%s: %lld samples - loss: %.4f - accuracy: %.4f (%.0f samples/s)\n\n",
               amuse_model_name(m), (long long)res.samples, res.loss, res.accuracy,
               res.seconds > 0 ? res.samples / res.seconds : 0.0);
        printf("  %-14s %8s %9s\n", "class", "samples", "accuracy");
        for (int k = 0; k < res.n_classes; k++) {
            const char *name = amuse_model_label(m, k);
            char fallback[16];
            if (!name) {
                snprintf(fallback, sizeof fallback, "%d", k);
                name = fallback;
            }
            printf("  %-14s %8lld %9.4f\n", name, (long long)res.class_count[k],
                   res.class_accuracy[k]);
        }
    }
    status = 0;
out:
    amuse_eval_result_release(&res);
    amuse_dataset_release(&d);
    amuse_model_free(m);
    return status;
}
