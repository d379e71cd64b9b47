/* generate.c - text generation inside a program (a game's NPC lines, say): load a character
 * model once, then run several streams together, each with its own prompt and seed, stepping
 * them all in one batched call per character, as a game loop would each frame. Build against an
 * installed amuse:
 *
 *     cc generate.c $(pkg-config --cflags --libs amuse) -o generate
 *     ./generate models/default/poems-zh/1 "白日依山尽，" "春眠不觉晓，"
 */
#include <amuse/generate.h>

#include <stdio.h>
#include <string.h>

#define MAX_STREAMS 8

int main(int argc, char **argv)
{
    if (argc < 3 || argc - 2 > MAX_STREAMS) {
        fprintf(stderr, "usage: %s <model-dir> <prompt>... (1 to %d prompts)\n", argv[0],
                MAX_STREAMS);
        return 2;
    }
    struct amuse_generator *g;
    if (amuse_generator_load(&g, argv[1], MAX_STREAMS) != AMUSE_OK) {
        fprintf(stderr, "%s\n", amuse_last_error());
        return 1;
    }
    /* One stream per prompt; each finishes at a blank line or after 64 characters. */
    static char text[MAX_STREAMS][1024];
    const char *stops[] = {"\n\n"};
    for (int i = 0; i < argc - 2; i++) {
        struct amuse_generate_request r;
        amuse_generate_request_defaults(&r);
        r.prompt = argv[2 + i];
        r.prompt_len = strlen(argv[2 + i]);
        r.max_tokens = 64;
        r.sampling.temperature = 0.8f;
        r.sampling.top_k = 40;
        r.sampling.seed = (uint64_t)i + 1;
        r.stop = stops;
        r.n_stop = 1;
        if (amuse_generator_start(g, i, &r) != AMUSE_OK) {
            fprintf(stderr, "prompt %d: %s\n", i + 1, amuse_last_error());
            amuse_generator_free(g);
            return 1;
        }
        snprintf(text[i], sizeof text[i], "%s", argv[2 + i]);
    }
    /* The loop: one step advances every active stream by one character. */
    struct amuse_generate_event ev[MAX_STREAMS];
    int n;
    while (amuse_generator_active_count(g) > 0) {
        if (amuse_generator_step(g, ev, MAX_STREAMS, &n) != AMUSE_OK) {
            fprintf(stderr, "%s\n", amuse_last_error());
            amuse_generator_free(g);
            return 1;
        }
        for (int k = 0; k < n; k++) {
            size_t have = strlen(text[ev[k].slot]);
            if (have + ev[k].len < sizeof text[0])
                memcpy(text[ev[k].slot] + have, ev[k].text, ev[k].len);
            if (ev[k].finish)
                printf("[%d] (%s, %d characters)\n%s\n\n", ev[k].slot + 1,
                       amuse_finish_name(ev[k].finish), ev[k].usage.completion_tokens,
                       text[ev[k].slot]);
        }
    }
    amuse_generator_free(g);
    return 0;
}
