/* cmd_generate.c - `amuse generate <model> [--prompt TEXT] [sampling flags]`: continue a prompt
 * (a character language model) or answer it (an encoder-decoder), printing each piece of text as
 * it is generated; --json prints one JSON object per piece and a final one with the finish reason
 * and token counts. One stream; the batched many-stream use is the server's. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/generate.h"
#include "amuse/runtime.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amuse generate <model-dir> [options]\n\n"
            "Generate text with a character model (a language model continues the prompt; an\n"
            "encoder-decoder answers it), printing as it goes. Prompt characters the model's\n"
            "vocabulary lacks are skipped (and counted in --json's usage).\n\noptions:\n"
            "  -p, --prompt TEXT           the prompt (default: a newline, for a language model)\n"
            "  -n, --max-tokens N          at most N characters (default 200, or the model's cap)\n"
            "      --temperature T         >= 0; 0 is greedy (default 0.8)\n"
            "      --top-k K               keep the K most likely (default 0: all)\n"
            "      --top-p P               nucleus, (0, 1] (default 1)\n"
            "      --min-p P               drop below P x the most likely, [0, 1) (default 0)\n"
            "      --repetition-penalty R  >= 1 over the last 64 characters (default 1)\n"
            "      --seed S                the same seed gives the same text (default 0)\n"
            "      --stop S                stop before S (repeatable, at most %d)\n"
            "      --line-shape keep|off   keep the prompt's first half-line length in verse\n"
            "                              (5 or 7 characters between ， and 。), or not\n"
            "                              (default: the model's \"generation\" config)\n"
            "  -t, --threads N             threads (default 1: one stream's small steps only\n"
            "                              wait at thread barriers when split)\n"
            "      --json                  JSON lines: {\"text\": ...} per piece, then the end\n"
            "  -h, --help                  this help\n",
            AMUSE_GENERATE_MAX_STOPS);
}

int cmd_generate(int argc, char **argv)
{
    enum { O_TEMP = 256, O_TOPK, O_TOPP, O_MINP, O_REP, O_SEED, O_STOP, O_JSON, O_SHAPE };
    static const struct option longopts[] = {{"prompt", required_argument, 0, 'p'},
                                             {"max-tokens", required_argument, 0, 'n'},
                                             {"temperature", required_argument, 0, O_TEMP},
                                             {"top-k", required_argument, 0, O_TOPK},
                                             {"top-p", required_argument, 0, O_TOPP},
                                             {"min-p", required_argument, 0, O_MINP},
                                             {"repetition-penalty", required_argument, 0, O_REP},
                                             {"seed", required_argument, 0, O_SEED},
                                             {"stop", required_argument, 0, O_STOP},
                                             {"line-shape", required_argument, 0, O_SHAPE},
                                             {"threads", required_argument, 0, 't'},
                                             {"json", no_argument, 0, O_JSON},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    struct amuse_generate_request r;
    amuse_generate_request_defaults(&r);
    r.sampling.temperature = 0.8f;
    const char *prompt = NULL, *stops[AMUSE_GENERATE_MAX_STOPS + 1];
    long long max_tokens = -1, threads = 1, ll;
    double d;
    int json = 0, n_stop = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:n:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            prompt = optarg;
            break;
        case 'n':
            if (cli_parse_int("--max-tokens", optarg, 1, 1 << 30, &max_tokens))
                return 2;
            break;
        case O_TEMP:
            if (cli_parse_double("--temperature", optarg, 0, 100, &d))
                return 2;
            r.sampling.temperature = (float)d;
            break;
        case O_TOPK:
            if (cli_parse_int("--top-k", optarg, 0, 1 << 24, &ll))
                return 2;
            r.sampling.top_k = (int)ll;
            break;
        case O_TOPP:
            if (cli_parse_double("--top-p", optarg, 1e-9, 1, &d))
                return 2;
            r.sampling.top_p = (float)d;
            break;
        case O_MINP:
            if (cli_parse_double("--min-p", optarg, 0, 0.999999, &d))
                return 2;
            r.sampling.min_p = (float)d;
            break;
        case O_REP:
            if (cli_parse_double("--repetition-penalty", optarg, 1, 10, &d))
                return 2;
            r.sampling.repetition_penalty = (float)d;
            break;
        case O_SEED:
            if (cli_parse_int("--seed", optarg, 0, 1LL << 53, &ll))
                return 2;
            r.sampling.seed = (uint64_t)ll;
            break;
        case O_STOP:
            if (n_stop == AMUSE_GENERATE_MAX_STOPS)
                return cli_error("--stop: at most %d stop strings", AMUSE_GENERATE_MAX_STOPS);
            stops[n_stop++] = optarg;
            break;
        case O_SHAPE:
            if (strcmp(optarg, "keep") == 0)
                r.line_shape = AMUSE_LINE_SHAPE_KEEP;
            else if (strcmp(optarg, "off") == 0)
                r.line_shape = AMUSE_LINE_SHAPE_OFF;
            else
                return cli_error("--line-shape: '%s' is not keep or off", optarg);
            break;
        case 't':
            if (cli_parse_int("--threads", optarg, 1, 1024, &threads))
                return 2;
            break;
        case O_JSON:
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    amuse_set_threads((int)threads);
    struct amuse_generator *g;
    int rc = amuse_generator_load(&g, argv[optind], 1);
    if (rc)
        return cli_fail(rc, "cannot open the generator");
    amuse_generator_set_threads(g, (int)threads); /* 1..1024: always valid */
    if (!prompt) {
        if (amuse_generator_kind(g) != AMUSE_GENERATOR_LM) {
            amuse_generator_free(g);
            return cli_error("%s answers a prompt: give one with --prompt", argv[optind]);
        }
        prompt = "\n";
    }
    int cap = amuse_generator_max_tokens(g);
    r.max_tokens = max_tokens > 0 ? (int)max_tokens : (cap < 200 ? cap : 200);
    r.prompt = prompt;
    r.prompt_len = strlen(prompt);
    r.stop = stops;
    r.n_stop = n_stop;
    if ((rc = amuse_generator_start(g, 0, &r))) {
        amuse_generator_free(g);
        return cli_fail(rc, "cannot start");
    }
    struct amuse_generate_event ev;
    int n, status = 0;
    if (!json && amuse_generator_kind(g) == AMUSE_GENERATOR_LM)
        fputs(prompt, stdout);
    for (;;) {
        if ((rc = amuse_generator_step(g, &ev, 1, &n))) {
            status = cli_fail(rc, "generation failed");
            break;
        }
        if (n == 0) { /* a long prompt is still being read, a chunk per step */
            if (!amuse_generator_active(g, 0))
                break;
            continue;
        }
        if (json && ev.len) {
            char *piece = strndup(ev.text, ev.len);
            if (!piece) {
                status = cli_error("out of memory");
                break;
            }
            fputs("{\"text\": ", stdout);
            cli_json_string(stdout, piece);
            fputs("}\n", stdout);
            free(piece);
        } else if (!json) {
            fwrite(ev.text, 1, ev.len, stdout);
        }
        fflush(stdout);
        if (ev.finish) {
            if (json)
                printf("{\"finish_reason\": \"%s\", \"usage\": {\"prompt_tokens\": %d, "
                       "\"completion_tokens\": %d, \"total_tokens\": %d, "
                       "\"prompt_unknown\": %d}}\n",
                       amuse_finish_name(ev.finish), ev.usage.prompt_tokens,
                       ev.usage.completion_tokens,
                       ev.usage.prompt_tokens + ev.usage.completion_tokens,
                       ev.usage.prompt_unknown);
            else
                putchar('\n');
            break;
        }
    }
    amuse_generator_free(g);
    return status;
}
