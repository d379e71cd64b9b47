/* lstm_bench.c - the amuse side of bench/lstm.sh: the character LM trained, scored and
 * sampled through the public API only, with the same data rules and measurements as
 * bench/lstm_torch.py (see its header): Embedding(V, 64) -> LSTM(256) -> LSTM(256) -> Dense(V),
 * Adam (lr 1e-3, eps 1e-7), random windows of seq + 1 characters from the first 1 - heldout of
 * the corpus, held-out bits per character over non-overlapping windows from a zero state.
 * Also: aggregate chars/s of 16 streams stepped together (amuse_generator_step), and the poem
 * line check on --poems samples, with line shape kept (poem_line_ok, as amuse generates verse
 * for a model configured so) and free (poem_line_ok_free: the model alone). Sampling runs with
 * the generator's automatic threads (one per pass of few streams). Prints one JSON object. Not
 * installed; lstm.sh builds it against build/libamuse.so.
 *
 *   lstm_bench CORPUS STEPS BATCH SEQ HELDOUT THREADS SEED SAMPLE_CHARS POEMS [POEM_MODEL_DIR]
 */
#include <amuse/charvocab.h>
#include <amuse/generate.h>
#include <amuse/model.h>
#include <amuse/rng.h>
#include <amuse/runtime.h>
#include <amuse/textdata.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "lstm_bench: %s: %s\n", what, amuse_last_error());
    exit(1);
}

/* Byte offset of code point k of text (len bytes). */
static size_t cp_offset(const char *text, size_t len, size_t k)
{
    size_t i = 0;
    for (size_t n = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80 && n++ == k)
            return i;
    return len;
}

static int is_break(const char *s, size_t n)
{
    static const char *const marks[] = {"，", "。", "？", "！", "；", "、", "\n"};
    for (size_t k = 0; k < sizeof marks / sizeof *marks; k++)
        if (n == strlen(marks[k]) && memcmp(s, marks[k], n) == 0)
            return 1;
    return 0;
}

/* Half-line lengths (in characters) of text: counts of characters between break marks; only
 * segments closed by a mark are counted. Returns how many segments were written to out. */
static int segments(const char *text, size_t len, int *out, int cap)
{
    int n = 0, run = 0;
    for (size_t i = 0; i < len;) {
        size_t l = 1;
        unsigned char c = (unsigned char)text[i];
        if (c >= 0xF0)
            l = 4;
        else if (c >= 0xE0)
            l = 3;
        else if (c >= 0xC0)
            l = 2;
        if (is_break(text + i, l)) {
            if (run > 0 && n < cap)
                out[n++] = run;
            run = 0;
        } else {
            run++;
        }
        i += l;
    }
    return n;
}

/* Line-length check: prompts are the first lines of poems whose half-lines are all 5 or all 7
 * characters; each sample generates to the end of its poem (a blank line) or 48 characters. */
static double poem_line_ok(struct amuse_generator *g, const char *text, size_t len, int samples,
                           enum amuse_line_shape shape, int *lines_out)
{
    /* first lines of poems: after a blank line (or the start) */
    int ok = 0, total = 0, done = 0, slots = amuse_generator_slots(g);
    const char *stops[1] = {"\n\n"};
    char (*prompt)[256] = calloc((size_t)slots, 256);
    int *want = calloc((size_t)slots, sizeof(int));
    char (*gen)[2048] = calloc((size_t)slots, 2048);
    struct amuse_generate_event *ev = calloc((size_t)slots, sizeof *ev);
    size_t pos = 0;
    uint64_t seed = 1;
    while (done < samples) {
        /* fill free slots */
        for (int s = 0; s < slots && done + amuse_generator_active_count(g) < samples; s++) {
            if (amuse_generator_active(g, s))
                continue;
            for (;;) {
                if (pos >= len)
                    pos = 0;
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t end = nl ? (size_t)(nl - text) : len;
                int start_of_poem = pos == 0 || (pos >= 2 && text[pos - 2] == '\n');
                size_t line_len = end - pos;
                int seg[16], n = segments(text + pos, line_len + (nl ? 1 : 0), seg, 16);
                size_t at = pos;
                pos = end + 1;
                if (!start_of_poem || n < 2 || line_len + 2 > sizeof prompt[s])
                    continue;
                int same = 1;
                for (int k = 1; k < n; k++)
                    same &= seg[k] == seg[0];
                if (!same || (seg[0] != 5 && seg[0] != 7))
                    continue;
                memcpy(prompt[s], text + at, line_len + 1);
                prompt[s][line_len + 1] = 0;
                want[s] = seg[0];
                break;
            }
            struct amuse_generate_request r;
            amuse_generate_request_defaults(&r);
            r.prompt = prompt[s];
            r.prompt_len = strlen(prompt[s]);
            r.max_tokens = 48;
            r.sampling.temperature = 0.8f;
            r.sampling.seed = seed++;
            r.stop = stops;
            r.n_stop = 1;
            r.line_shape = shape;
            if (amuse_generator_start(g, s, &r))
                die("poem prompt");
            gen[s][0] = 0;
        }
        int n;
        if (amuse_generator_step(g, ev, slots, &n))
            die("poem step");
        for (int k = 0; k < n; k++) {
            int s = ev[k].slot;
            size_t have = strlen(gen[s]);
            if (have + ev[k].len < 2048) {
                memcpy(gen[s] + have, ev[k].text, ev[k].len);
                gen[s][have + ev[k].len] = 0;
            }
            if (ev[k].finish) {
                int seg[128], m = segments(gen[s], strlen(gen[s]), seg, 128);
                for (int j = 0; j < m; j++)
                    ok += seg[j] == want[s];
                total += m;
                done++;
            }
        }
    }
    free(prompt);
    free(want);
    free(gen);
    free(ev);
    *lines_out = total;
    return total ? (double)ok / total : 0.0;
}

/* Chars/s of `streams` streams stepped together for `chars` steps after a prompt each. */
static double stream_rate(struct amuse_generator *g, const char *prompt, int streams, int chars)
{
    struct amuse_generate_event ev[64];
    for (int s = 0; s < streams; s++) {
        struct amuse_generate_request r;
        amuse_generate_request_defaults(&r);
        r.prompt = prompt;
        r.prompt_len = strlen(prompt);
        r.max_tokens = chars;
        r.sampling.seed = (uint64_t)s + 1;
        if (amuse_generator_start(g, s, &r))
            die("stream prompt");
    }
    long long made = 0;
    int n;
    double t0 = now();
    while (amuse_generator_active_count(g) > 0) {
        if (amuse_generator_step(g, ev, 64, &n))
            die("step");
        made += n;
    }
    return (double)made / (now() - t0);
}

int main(int argc, char **argv)
{
    if (argc < 10) {
        fprintf(stderr, "usage: lstm_bench CORPUS STEPS BATCH SEQ HELDOUT THREADS SEED "
                        "SAMPLE_CHARS POEMS [POEM_MODEL_DIR]\n");
        return 2;
    }
    const char *corpus = argv[1];
    int steps = atoi(argv[2]), B = atoi(argv[3]), T = atoi(argv[4]);
    double heldout = atof(argv[5]);
    int threads = atoi(argv[6]), sample_chars = atoi(argv[8]), poems = atoi(argv[9]);
    uint64_t seed = strtoull(argv[7], NULL, 10);
    amuse_set_threads(threads);

    char *text;
    size_t len;
    if (amuse_text_read(corpus, &text, &len))
        die("corpus");
    struct amuse_charvocab *v;
    const char *t0 = text;
    if (amuse_charvocab_build(&v, &t0, &len, 1, 1, 0, corpus))
        die("vocabulary");
    int V = amuse_charvocab_size(v);
    int32_t *ids = malloc((len + 1) * sizeof(int32_t));
    size_t n_ids;
    if (amuse_charvocab_encode(v, text, len, AMUSE_UNKNOWN_AS_UNK, ids, len + 1, &n_ids, NULL))
        die("encode");
    size_t cut = (size_t)((double)n_ids * (1.0 - heldout));

    char json[4096];
    snprintf(json, sizeof json,
             "{\"name\": \"bench-lstm\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], "
             "\"dtype\": \"int32\"}},"
             "{\"class_name\": \"Embedding\", \"config\": {\"name\": \"embedding\", "
             "\"input_dim\": %d, \"output_dim\": 64}},"
             "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"lstm\", \"units\": 256, "
             "\"return_sequences\": true}},"
             "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"lstm_1\", \"units\": 256, "
             "\"return_sequences\": true}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": %d, "
             "\"activation\": \"softmax\"}}]}},"
             "\"compile\": {\"optimizer\": {\"class_name\": \"Adam\", \"config\": "
             "{\"learning_rate\": 0.001, \"epsilon\": 1e-7}}, "
             "\"loss\": \"sparse_categorical_crossentropy\"}}",
             T, V, V);
    struct amuse_model *m;
    if (amuse_model_from_json(&m, json, strlen(json), "bench") || amuse_model_init_weights(m, seed))
        die("model");
    char *vj;
    if (amuse_charvocab_to_json(v, &vj) || amuse_model_config_set(m, "vocabulary", vj))
        die("vocabulary json");
    free(vj);

    /* training: random windows, timed steps only */
    int32_t *x = malloc((size_t)B * (size_t)T * sizeof(int32_t));
    int32_t *y = malloc((size_t)B * (size_t)T * sizeof(int32_t));
    struct amuse_batch b;
    memset(&b, 0, sizeof b);
    b.n = B;
    b.n_inputs = 1;
    b.input[0].dtype = AMUSE_INT32;
    b.input[0].shape.ndim = 1;
    b.input[0].shape.dim[0] = T;
    b.input[0].i32 = x;
    b.target.dtype = AMUSE_INT32;
    b.target.shape = b.input[0].shape;
    b.target.i32 = y;
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed);
    double train_s = 0;
    float loss = NAN;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < B; i++) {
            size_t st = (size_t)amuse_rng_below(&rng, cut - (size_t)T - 1);
            for (int t = 0; t < T; t++) {
                x[i * T + t] = ids[st + (size_t)t];
                y[i * T + t] = ids[st + (size_t)t + 1];
            }
        }
        const float *out;
        double a = now();
        amuse_model_zero_grad(m);
        if (amuse_model_forward_batch(m, &b, 1, &out) || amuse_model_loss_batch(m, &b, &loss) ||
            amuse_model_backward(m) || amuse_model_step(m))
            die("train step");
        train_s += now() - a;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_train = (double)ru.ru_maxrss / 1024.0;

    /* held-out bits per character */
    size_t held = n_ids - cut, n_win = (held - 1) / (size_t)T;
    double total = 0;
    long long count = 0;
    int EB = 64;
    int32_t *ex = malloc((size_t)EB * (size_t)T * sizeof(int32_t));
    for (size_t w0 = 0; w0 < n_win; w0 += (size_t)EB) {
        int nb = (int)(n_win - w0 < (size_t)EB ? n_win - w0 : (size_t)EB);
        for (int i = 0; i < nb; i++)
            memcpy(ex + i * T, ids + cut + (w0 + (size_t)i) * (size_t)T,
                   (size_t)T * sizeof(int32_t));
        b.n = nb;
        b.input[0].i32 = ex;
        const float *p;
        if (amuse_model_forward_batch(m, &b, 0, &p))
            die("held-out");
        for (int i = 0; i < nb; i++)
            for (int t = 0; t < T; t++) {
                int32_t tgt = ids[cut + (w0 + (size_t)i) * (size_t)T + (size_t)t + 1];
                double q = p[((size_t)i * (size_t)T + (size_t)t) * (size_t)V + (size_t)tgt];
                total += -log(q > 1e-30 ? q : 1e-30);
                count++;
            }
    }
    double bpc = total / (double)count / log(2.0);

    /* sampling: one stream, then 16 together, from a 16-character held-out prompt */
    struct amuse_generator *g;
    if (amuse_generator_from_model(&g, m, 16))
        die("generator");
    size_t pb = cp_offset(text, len, cut), pe = cp_offset(text, len, cut + 16);
    char prompt[256];
    snprintf(prompt, sizeof prompt, "%.*s", (int)(pe - pb), text + pb);
    double one = stream_rate(g, prompt, 1, sample_chars);
    double sixteen = stream_rate(g, prompt, 16, sample_chars / 4 > 16 ? sample_chars / 4 : 16);
    int lines = 0, lines_free = 0, lines_default = 0, lines_default_free = 0;
    double line_ok = NAN, line_ok_free = NAN, line_ok_default = NAN, line_ok_default_free = NAN;
    if (poems) {
        line_ok = poem_line_ok(g, text, len, poems, AMUSE_LINE_SHAPE_KEEP, &lines);
        line_ok_free = poem_line_ok(g, text, len, poems, AMUSE_LINE_SHAPE_OFF, &lines_free);
    }
    amuse_generator_free(g);
    if (argc > 10 && poems) {
        struct amuse_generator *gd;
        if (amuse_generator_load(&gd, argv[10], 16) == AMUSE_OK) {
            line_ok_default = poem_line_ok(gd, text, len, poems, AMUSE_LINE_SHAPE_MODEL,
                                           &lines_default);
            line_ok_default_free = poem_line_ok(gd, text, len, poems, AMUSE_LINE_SHAPE_OFF,
                                                &lines_default_free);
            amuse_generator_free(gd);
        }
    }
    char ok_default[32] = "null", ok_default_free[32] = "null";
    if (!isnan(line_ok_default)) {
        snprintf(ok_default, sizeof ok_default, "%.4f", line_ok_default);
        snprintf(ok_default_free, sizeof ok_default_free, "%.4f", line_ok_default_free);
    }
    printf("{\"vocab\": %d, \"steps\": %d, \"batch\": %d, \"seq\": %d, \"threads\": %d, "
           "\"train_chars_s\": %.1f, \"final_train_loss\": %.4f, \"bpc\": %.4f, "
           "\"sample_chars_s\": %.1f, \"streams16_chars_s\": %.1f, \"rss_mb\": %.1f, "
           "\"poem_line_ok\": %.4f, \"poem_lines\": %d, \"poem_line_ok_free\": %.4f, "
           "\"poem_lines_free\": %d, \"poem_line_ok_default_model\": %s, "
           "\"poem_lines_default_model\": %d, \"poem_line_ok_default_model_free\": %s, "
           "\"poem_lines_default_model_free\": %d}\n",
           V, steps, B, T, threads, (double)steps * B * T / train_s, loss, bpc, one, sixteen,
           rss_train, line_ok, lines, line_ok_free, lines_free, ok_default, lines_default,
           ok_default_free, lines_default_free);
    free(x);
    free(y);
    free(ex);
    free(ids);
    free(text);
    amuse_model_free(m);
    amuse_charvocab_free(v);
    return 0;
}
