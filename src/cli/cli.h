/* cli/cli.h - what the amuse command's subcommands share: the command table, error reporting,
 * and strict number parsing. Only the CLI prints and exits; the library returns status. */
#ifndef AMUSE_CLI_H
#define AMUSE_CLI_H

#include <stdint.h>
#include <stdio.h>

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; returns exit status */
};

/* Print "amuse: <message>" to stderr and return 1 (use as: return cli_error(...)). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "amuse: <what>: <library message>" for a failed library call and return 1. */
int cli_fail(int status, const char *what);

/* Parse a whole string as a number within [lo, hi]. Return 0 or print why and return 1. */
int cli_parse_int(const char *opt, const char *text, long long lo, long long hi, long long *out);
int cli_parse_double(const char *opt, const char *text, double lo, double hi, double *out);

/* Write s as a JSON string literal (quoted and escaped). */
void cli_json_string(FILE *out, const char *s);

/* The key database path: $AMUSE_DB, else ${XDG_DATA_HOME:-$HOME/.local/share}/amuse/amuse.db
 * (else ./amuse.db without a home). Shared by `amuse serve` and `amuse keys`. */
void cli_default_database(char *buf, size_t size);

/* 1 if argv has -h or --help. */
int cli_wants_help(int argc, char **argv);

struct amuse_model;
struct amuse_dataset;

/* Open a model: a directory (config.json + model.safetensors) loads trained weights; a .json
 * recipe builds an untrained model (weights zero) - allowed only when allow_untrained is set. */
int cli_open_model(const char *path, int allow_untrained, struct amuse_model **m);

/* Load the labelled set named by the model config's data section ("train" or "test"), or by
 * explicit IDX paths when given. limit > 0 keeps the first `limit` samples. */
int cli_load_dataset(struct amuse_model *m, const char *split, const char *images,
                     const char *labels, long long limit, struct amuse_dataset *d);

/* Subcommands (one file each). */
int cmd_train(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_word2vec(int argc, char **argv);
int cmd_words(int argc, char **argv);
int cmd_glove(int argc, char **argv);
int cmd_sentiment(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_audio(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_events(int argc, char **argv);

#endif
