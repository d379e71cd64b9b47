/* cmd_summary.c - `amuse summary <model>`: the Keras-style layer table of a model directory or a
 * recipe. */
#include "cli/cli.h"

#include "amuse/model.h"

#include <stdio.h>

int cmd_summary(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: amuse summary <model-dir | config.json>\n\n"
               "Print each layer's output shape and parameter count, and the totals.\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: amuse summary <model-dir | config.json>\n");
        return 2;
    }
    struct amuse_model *m;
    if (cli_open_model(argv[1], 1, &m))
        return 1;
    amuse_model_summary(m, stdout);
    amuse_model_free(m);
    return 0;
}
