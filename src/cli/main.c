/* main.c - the amuse command: picks fast BLAS kernels, then dispatches to a subcommand.
 * Each subcommand lives in its own file (cmd_*.c) and owns its flags and --help. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/runtime.h"
#include "core/mpi.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_command commands[] = {
    {"train", "train a model from a JSON recipe", cmd_train},
    {"summary", "print a model's layers, output shapes and parameter counts", cmd_summary},
    {"eval", "report loss, accuracy and per-class accuracy on a labelled set", cmd_eval},
    {"predict", "label images with a trained model (top-k with probabilities)", cmd_predict},
    {"generate", "write text with a character model (streamed, sampling flags)", cmd_generate},
    {"word2vec", "train word vectors (word2vec.c's flags)", cmd_word2vec},
    {"words", "query and evaluate word vectors", cmd_words},
    {"glove", "train GloVe word vectors (the reference tool's stages and flags)", cmd_glove},
    {"data", "write sample images from the test set (PNG)", cmd_data},
    {"sentiment", "score review text; train and evaluate sentiment models", cmd_sentiment},
    {"serve", "serve a model repository over HTTP (KServe V2), with API keys", cmd_serve},
    {"keys", "create, list and revoke the server's API keys", cmd_keys},
    {"audio", "show how amuse reads a sound file, and its speech features", cmd_audio},
    {"listen", "print the voice commands in a recording or a live stream", cmd_listen},
    {"recommend", "train, evaluate and query recommenders (ALS, BPR, item-kNN)", cmd_recommend},
    {"events", "load user events and items into a tenant of the server's database", cmd_events},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: amuse <command> [options]\n\n"
                 "Train and serve the models an entertainment product needs.\n\ncommands:\n");
    for (int i = 0; commands[i].name; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'amuse <command> --help' describes a command's options.\n"
                 "Environment: OPENBLAS_CORETYPE, OMP_WAIT_POLICY and GOMP_SPINCOUNT are respected\n"
                 "when set; otherwise amuse picks the fastest OpenBLAS kernels this CPU supports\n"
                 "and short OpenMP spin-waits (AMUSE_NO_REEXEC=1 disables this).\n");
}

/* Two settings only take effect when the process starts, so amuse sets them and starts itself
 * again (once; AMUSE_NO_REEXEC=1 disables this, and a value already in the environment always
 * wins):
 *  - OPENBLAS_CORETYPE: OpenBLAS picks its kernels when it loads. If it fell back to generic ones
 *    on a CPU it does not recognise, name the right family: a 5x faster GEMM.
 *  - GOMP_SPINCOUNT: OpenMP workers spin between parallel regions. On a machine shared with other
 *    work, long spins take the core from the thread that has work to do (training ran 1.5x
 *    slower on 2 threads than on 1); a short spin, then sleep, costs nothing when idle. */
static void tune_environment(char **argv)
{
    if (getenv("AMUSE_NO_REEXEC") || getenv("AMUSE_REEXECED"))
        return;
    int changed = 0;
    const char *core = amuse_blas_recommended_coretype(amuse_blas_core(), NULL);
    if (core) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        changed = 1;
    }
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) {
        setenv("GOMP_SPINCOUNT", "10000", 1);
        changed = 1;
    }
    if (!changed)
        return;
    setenv("AMUSE_REEXECED", "1", 1);
    /* Exec the real path, not /proc/self/exe, so ps and top still say "amuse". */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    execv(self, argv);
    /* If exec fails we simply go on with the defaults. */
}

/* The commands that share work across the ranks of an MPI job (docs/SCALING.md). Under mpirun
 * every other command runs as independent copies. */
static int distributed(const char *name)
{
    return strcmp(name, "train") == 0 || strcmp(name, "word2vec") == 0 ||
           strcmp(name, "recommend") == 0;
}

static int run_command(const struct cli_command *c, int argc, char **argv)
{
    if (!distributed(c->name) || !am__mpi_launched())
        return c->run(argc, argv);
    if (!am__mpi_compiled()) {
        /* Every copy would train alone and write the same files: refuse instead. */
        if (getenv("OMPI_COMM_WORLD_SIZE") && strcmp(getenv("OMPI_COMM_WORLD_SIZE"), "1") != 0)
            return cli_error("started by mpirun, but this amuse was built without MPI "
                             "(see 'amuse --version'; rebuild with openmpi installed)");
        return c->run(argc, argv);
    }
    int rc = am__mpi_init(&argc, &argv);
    if (rc) {
        cli_fail(rc, "cannot start MPI");
        return 1;
    }
    int status = c->run(argc, argv);
    /* A rank that failed ends the whole job: the others may be waiting for it in a collective. */
    if (status != 0 && am__mpi_size() > 1)
        am__mpi_abort(status);
    am__mpi_finalize();
    return status;
}

int main(int argc, char **argv)
{
    tune_environment(argv);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("amuse %s (BLAS kernels: %s; MPI: %s)\n", amuse_version(), amuse_blas_core(),
               am__mpi_compiled() ? am__mpi_library() : "not compiled in");
        printf("databases: %s\n", am__db_backends());
        return 0;
    }
    for (int i = 0; commands[i].name; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return run_command(&commands[i], argc - 1, argv + 1);
    cli_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return 2;
}
