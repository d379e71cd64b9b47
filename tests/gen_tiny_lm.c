/* gen_tiny_lm.c - writes a tiny trained character language model directory (Embedding 16 ->
 * LSTM 32 -> Dense softmax, its vocabulary in config.json, "generation": {"max_tokens": 200})
 * for the server's generation tests and bench/generate.sh. It trains for a few epochs on a short
 * text (two verses, repeated), with fixed seeds: same build, same model. Not a test by itself.
 * bench/generate.sh asks for a bigger one (Embedding 64 -> LSTM UNITS x LAYERS, EPOCHS epochs).
 * usage: gen_tiny_lm DIR [UNITS LAYERS EPOCHS] */
#include "amuse/charvocab.h"
#include "amuse/data.h"
#include "amuse/error.h"
#include "amuse/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TEXT[] = "twinkle twinkle little star, how i wonder what you are.\n"
                           "up above the world so high, like a diamond in the sky.\n";
enum { T = 16, N = 192 };

static int fail(const char *what)
{
    fprintf(stderr, "gen_tiny_lm: %s: %s\n", what, amuse_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: gen_tiny_lm DIR [UNITS LAYERS EPOCHS]\n");
        return 2;
    }
    int units = argc == 5 ? atoi(argv[2]) : 32, layers = argc == 5 ? atoi(argv[3]) : 1;
    int epochs = argc == 5 ? atoi(argv[4]) : 30, embed = argc == 5 ? 64 : 16;
    if (units < 1 || units > 4096 || layers < 1 || layers > 4 || epochs < 0 || epochs > 30) {
        fprintf(stderr, "gen_tiny_lm: UNITS 1..4096, LAYERS 1..4, EPOCHS 0..30\n");
        return 2;
    }
    const char *texts[1] = {TEXT};
    size_t lens[1] = {strlen(TEXT)};
    struct amuse_charvocab *v = NULL;
    if (amuse_charvocab_build(&v, texts, lens, 1, 1, 0, "text"))
        return fail("vocabulary");
    int V = amuse_charvocab_size(v);
    char json[4096], lstm[1024] = "";
    for (int i = 0, off = 0; i < layers; i++)
        off += snprintf(lstm + off, sizeof lstm - (size_t)off,
                        "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"lstm%d\", "
                        "\"units\": %d, \"return_sequences\": true}},",
                        i, units);
    snprintf(json, sizeof json,
             "{\"name\": \"tiny-lm\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], "
             "\"dtype\": \"int32\"}},"
             "{\"class_name\": \"Embedding\", \"config\": {\"name\": \"emb\", \"input_dim\": %d, "
             "\"output_dim\": %d}},"
             "%s"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": %d, "
             "\"activation\": \"softmax\"}}]}},"
             "\"compile\": {\"optimizer\": {\"class_name\": \"Adam\", \"config\": "
             "{\"learning_rate\": 0.02}}, \"loss\": \"sparse_categorical_crossentropy\"}}",
             T, V, embed, lstm, V);
    struct amuse_model *m = NULL;
    char *vj = NULL;
    if (amuse_model_from_json(&m, json, strlen(json), "gen_tiny_lm") ||
        amuse_charvocab_to_json(v, &vj) || amuse_model_config_set(m, "vocabulary", vj) ||
        amuse_model_config_set(m, "generation", "{\"max_tokens\": 200}") ||
        amuse_model_init_weights(m, 7))
        return fail("model");
    free(vj);
    int32_t ids[256];
    size_t n_text = 0;
    if (amuse_charvocab_encode(v, TEXT, strlen(TEXT), AMUSE_UNKNOWN_FAIL, ids, 256, &n_text, NULL))
        return fail("encode");
    struct amuse_dataset d;
    memset(&d, 0, sizeof d);
    int64_t t = T;
    struct amuse_shape s;
    amuse_shape_make(&s, 1, &t);
    if (amuse_array_alloc(&d.input[0], NULL, AMUSE_INT32, &s, N) ||
        amuse_array_alloc(&d.target, NULL, AMUSE_INT32, &s, N))
        return fail("data");
    d.n = N;
    d.n_inputs = 1;
    d.n_classes = V;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < T; k++) {
            d.input[0].i32[i * T + k] = ids[(i + k) % n_text];
            d.target.i32[i * T + k] = ids[(i + k + 1) % n_text];
        }
    struct amuse_fit_options opt;
    if (amuse_model_fit_options(m, &opt))
        return fail("fit options");
    opt.epochs = epochs;
    opt.batch_size = 32;
    opt.verbose = 0;
    opt.seed = 3;
    int ran = 0;
    struct amuse_epoch_log log[30];
    if (epochs > 0 && amuse_model_fit(m, &d, &opt, log, &ran))
        return fail("fit");
    if (amuse_model_save(m, argv[1]))
        return fail("save");
    if (ran > 0)
        printf("gen_tiny_lm: %d ids, loss %.3f -> %.3f\n", V, log[0].loss, log[ran - 1].loss);
    else
        printf("gen_tiny_lm: %d ids, untrained\n", V);
    amuse_dataset_release(&d);
    amuse_model_free(m);
    amuse_charvocab_free(v);
    return 0;
}
