/* cmd_predict.c - `amuse predict <model> <image...>`: decode each image into the model's input
 * (grey or RGB, resized, scaled to [0, 1]) and print the top-k labels with probabilities. A bad
 * image is reported and the others are still labelled; the exit status says something failed. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/image.h"
#include "amuse/model.h"
#include "amuse/runtime.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: amuse predict <model-dir> <image>... [options]\n\n"
                 "Label images (PNG, JPEG, BMP, GIF) with a trained image model.\n\noptions:\n"
                 "  -k, --top-k K      labels to show per image (default 3)\n"
                 "  -t, --threads N    threads (default: all cores)\n"
                 "      --json         one JSON object per image\n"
                 "  -h, --help         this help\n");
}

int cmd_predict(int argc, char **argv)
{
    static const struct option longopts[] = {{"top-k", required_argument, 0, 'k'},
                                             {"threads", required_argument, 0, 't'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    long long k = 3, threads = 0;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': if (cli_parse_int("--top-k", optarg, 1, 1000, &k)) return 2; break;
        case 't': if (cli_parse_int("--threads", optarg, 1, 1024, &threads)) return 2; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind < 2) {
        usage(stderr);
        return 2;
    }
    amuse_set_threads((int)threads);
    struct amuse_model *m;
    if (cli_open_model(argv[optind], 0, &m))
        return 1;
    const struct amuse_shape *in = amuse_model_input_shape(m);
    int64_t classes = amuse_shape_size(amuse_model_output_shape(m));
    if (in->ndim != 3 || (in->dim[2] != 1 && in->dim[2] != 3)) {
        amuse_model_free(m);
        return cli_error("%s: not an image model (input must be height x width x 1 or 3)",
                         argv[optind]);
    }
    struct amuse_image_options io = {(int)in->dim[0], (int)in->dim[1], (int)in->dim[2],
                                     amuse_image_invert_setting(m), 0, 0};
    float *x = malloc((size_t)amuse_shape_size(in) * sizeof(float));
    if (!x) {
        amuse_model_free(m);
        return cli_error("out of memory");
    }
    if (k > classes)
        k = classes;
    int status = 0;
    for (int i = optind + 1; i < argc; i++) {
        const float *p;
        int rc = amuse_image_load(argv[i], &io, x);
        if (rc == AMUSE_OK)
            rc = amuse_model_forward(m, x, 1, 0, &p);
        if (rc) {
            cli_fail(rc, argv[i]);
            status = 1;
            continue;
        }
        if (json)
        {
            printf("{\"image\": ");
            cli_json_string(stdout, argv[i]);
            printf(", \"top\": [");
        }
        else
            printf("%s:", argv[i]);
        /* Top-k by repeated selection: k is small and so is the class count. */
        int taken[4096] = {0};
        for (int r = 0; r < k && r < 4096; r++) {
            int best = -1;
            for (int j = 0; j < classes && j < 4096; j++)
                if (!taken[j] && (best < 0 || p[j] > p[best]))
                    best = j;
            taken[best] = 1;
            const char *label = amuse_model_label(m, best);
            char fallback[16];
            if (!label) {
                snprintf(fallback, sizeof fallback, "%d", best);
                label = fallback;
            }
            if (json) {
                printf("%s{\"label\": ", r ? ", " : "");
                cli_json_string(stdout, label);
                printf(", \"index\": %d, \"probability\": %.6f}", best, p[best]);
            }
            else
                printf("%s %s %.4f", r ? "," : "", label, p[best]);
        }
        printf(json ? "]}\n" : "\n");
    }
    free(x);
    amuse_model_free(m);
    return status;
}
