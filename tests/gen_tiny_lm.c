/* gen_tiny_lm.c - writes a tiny trained character language model directory (Embedding 16 ->
 * LSTM 32 -> Dense softmax, its vocabulary in config.json, "generation": {"max_tokens": 200})
 * for the server's generation tests and bench/generate.sh. It trains for a few epochs on a short
 * text (two verses, repeated), with fixed seeds: same build, same model. Not a test by itself.
 * usage: gen_tiny_lm DIR */
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
    if (argc != 2) {
        fprintf(stderr, "usage: gen_tiny_lm DIR\n");
        return 2;
    }
    const char *texts[1] = {TEXT};
    size_t lens[1] = {strlen(TEXT)};
    struct amuse_charvocab *v = NULL;
    if (amuse_charvocab_build(&v, texts, lens, 1, 1, 0, "text"))
        return fail("vocabulary");
    int V = amuse_charvocab_size(v);
    char json[2048];
    snprintf(json, sizeof json,
             "{\"name\": \"tiny-lm\", \"model\": {\"class_name\": \"Sequential\", \"config\": "
             "{\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %d], "
             "\"dtype\": \"int32\"}},"
             "{\"class_name\": \"Embedding\", \"config\": {\"name\": \"emb\", \"input_dim\": %d, "
             "\"output_dim\": 16}},"
             "{\"class_name\": \"LSTM\", \"config\": {\"name\": \"lstm\", \"units\": 32, "
             "\"return_sequences\": true}},"
             "{\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": %d, "
             "\"activation\": \"softmax\"}}]}},"
             "\"compile\": {\"optimizer\": {\"class_name\": \"Adam\", \"config\": "
             "{\"learning_rate\": 0.02}}, \"loss\": \"sparse_categorical_crossentropy\"}}",
             T, V, V);
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
    opt.epochs = 30;
    opt.batch_size = 32;
    opt.verbose = 0;
    opt.seed = 3;
    int ran = 0;
    struct amuse_epoch_log log[30];
    if (amuse_model_fit(m, &d, &opt, log, &ran))
        return fail("fit");
    if (amuse_model_save(m, argv[1]))
        return fail("save");
    printf("gen_tiny_lm: %d ids, loss %.3f -> %.3f\n", V, log[0].loss, log[ran - 1].loss);
    amuse_dataset_release(&d);
    amuse_model_free(m);
    amuse_charvocab_free(v);
    return 0;
}
