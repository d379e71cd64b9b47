/* main.c - the amuse command: picks fast BLAS kernels, then dispatches to a subcommand.
 * Each subcommand lives in its own file (cmd_*.c) and owns its flags and --help. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_command commands[] = {
    {"word2vec", "train word vectors (word2vec.c's flags)", cmd_word2vec},
    {"words", "query and evaluate word vectors", cmd_words},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: amuse <command> [options]\n\n"
                 "Train and serve the models an entertainment product needs.\n\ncommands:\n");
    for (int i = 0; commands[i].name; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'amuse <command> --help' describes a command's options.\n"
                 "Environment: OPENBLAS_CORETYPE is respected when set; otherwise amuse picks\n"
                 "the fastest OpenBLAS kernels this CPU supports (AMUSE_NO_BLAS_REEXEC=1 disables"
                 " this).\n");
}

/* OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads. If it fell back to generic
 * kernels on a CPU it does not recognise, start again with the right value: a 5x faster GEMM. */
static void maybe_reexec_for_blas(char **argv)
{
    if (getenv("AMUSE_NO_BLAS_REEXEC") || getenv("AMUSE_BLAS_REEXECED"))
        return;
    const char *core = amuse_blas_recommended_coretype(amuse_blas_core(), NULL);
    if (!core)
        return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("AMUSE_BLAS_REEXECED", "1", 1);
    execv("/proc/self/exe", argv);
    /* If exec fails we simply go on with the slower kernels. */
}

int main(int argc, char **argv)
{
    maybe_reexec_for_blas(argv);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("amuse %s (BLAS kernels: %s)\n", amuse_version(), amuse_blas_core());
        return 0;
    }
    for (int i = 0; commands[i].name; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return 2;
}
