/* test_seq2seq.c - the seed's Keras encoder-decoder recipe (models/seq2seq-chars.json) trains
 * through amuse_model_fit on a tiny made-up pair set: two one-hot inputs (encoder characters,
 * decoder characters with teacher forcing), sequence targets shifted by one step, rmsprop and
 * validation_split 0.2 from the recipe. Once with one-hot targets and categorical cross-entropy
 * (the seed's code), once with int32 targets and sparse cross-entropy. The loss must fall.
 * Text files, vocabularies and inference (the encoder / one-step decoder split) are not here. */
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/rng.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECIPE AMUSE_SOURCE_DIR "/models/seq2seq-chars.json"
#define PAIRS  40

/* Token ids: 0 = padding (Keras's example pads with ' '), 1 = start ('\t'), 2 = end ('\n'),
 * 3.. = the letters of a small alphabet. A target is the source reversed. */
static void make_pair(struct amuse_rng *rng, int *src, int *src_len, int *tgt, int *tgt_len)
{
    *src_len = 3 + (int)amuse_rng_below(rng, 6);
    for (int i = 0; i < *src_len; i++)
        src[i] = 3 + (int)amuse_rng_below(rng, 10);
    tgt[0] = 1;
    for (int i = 0; i < *src_len; i++)
        tgt[1 + i] = src[*src_len - 1 - i];
    tgt[1 + *src_len] = 2;
    *tgt_len = *src_len + 2;
}

/* Fill a dataset from the recipe's input shapes: encoder and decoder one-hot inputs, and the
 * decoder input shifted left by one as the target (one-hot floats, or int32 ids if sparse). */
static void make_dataset(struct amuse_model *m, struct amuse_dataset *d, int sparse)
{
    const struct amuse_shape *enc = amuse_model_input_shape_at(m, 0);
    const struct amuse_shape *dec = amuse_model_input_shape_at(m, 1);
    int64_t te = enc->dim[0], ve = enc->dim[1], td = dec->dim[0], vd = dec->dim[1];
    memset(d, 0, sizeof *d);
    d->n = PAIRS;
    d->n_inputs = 2;
    ASSERT_OK(amuse_array_alloc(&d->input[0], "input_1", AMUSE_FLOAT32, enc, PAIRS));
    ASSERT_OK(amuse_array_alloc(&d->input[1], "input_2", AMUSE_FLOAT32, dec, PAIRS));
    struct amuse_shape ids;
    amuse_shape_make(&ids, 1, &td);
    ASSERT_OK(amuse_array_alloc(&d->target, NULL, sparse ? AMUSE_INT32 : AMUSE_FLOAT32,
                                sparse ? &ids : dec, PAIRS));
    d->n_classes = (int)vd;
    struct amuse_rng rng;
    amuse_rng_seed(&rng, 12);
    for (int p = 0; p < PAIRS; p++) {
        int src[16], tgt[24], sl, tl;
        make_pair(&rng, src, &sl, tgt, &tl);
        ASSERT_TRUE(sl <= te && tl <= td);
        for (int64_t t = 0; t < te; t++)
            d->input[0].f32[(p * te + t) * ve + (t < sl ? src[t] : 0)] = 1.0f;
        for (int64_t t = 0; t < td; t++) {
            int in = t < tl ? tgt[t] : 0, next = t + 1 < tl ? tgt[t + 1] : 0;
            d->input[1].f32[(p * td + t) * vd + in] = 1.0f;
            if (sparse)
                d->target.i32[p * td + t] = next;
            else
                d->target.f32[(p * td + t) * vd + next] = 1.0f;
        }
    }
}

static void train_recipe(int sparse)
{
    struct amuse_model *m = NULL;
    int rc = amuse_model_from_file(&m, RECIPE);
    if (rc)
        TEST_FAIL("%s", amuse_last_error());
    ASSERT_EQ_INT(amuse_model_input_count(m), 2);
    ASSERT_EQ_INT(amuse_model_output_rows(m), amuse_model_input_shape_at(m, 1)->dim[0]);
    if (sparse)
        ASSERT_OK(amuse_model_compile(m, "{\"optimizer\": \"rmsprop\", \"loss\": "
                                         "\"sparse_categorical_crossentropy\", \"metrics\": "
                                         "[\"accuracy\"]}"));
    ASSERT_OK(amuse_model_init_weights(m, 3));
    struct amuse_dataset d;
    make_dataset(m, &d, sparse);
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    ASSERT_NEAR(o.validation_split, 0.2, 1e-12); /* the seed's settings, from the recipe */
    ASSERT_EQ_INT(o.batch_size, 64);
    o.epochs = 6; /* a few steps, not the recipe's 100 epochs */
    o.batch_size = 8;
    o.verbose = 0;
    struct amuse_epoch_log h[6];
    int ran = 0;
    rc = amuse_model_fit(m, &d, &o, h, &ran);
    if (rc)
        TEST_FAIL("fit: %s", amuse_last_error());
    ASSERT_EQ_INT(ran, 6);
    printf("  %s: loss %.4f -> %.4f, val_loss %.4f -> %.4f, accuracy %.3f -> %.3f\n",
           sparse ? "sparse" : "one-hot", h[0].loss, h[5].loss, h[0].val_loss, h[5].val_loss,
           h[0].accuracy, h[5].accuracy);
    ASSERT_TRUE(isfinite(h[5].loss) && isfinite(h[5].val_loss));
    ASSERT_TRUE(h[5].loss < 0.8 * h[0].loss);
    ASSERT_TRUE(h[5].val_loss < h[0].val_loss);
    ASSERT_TRUE(h[5].accuracy > h[0].accuracy);
    /* evaluate over every target step; predict_batch gives (n, T, V) probabilities. */
    struct amuse_eval_result r;
    ASSERT_OK(amuse_model_evaluate(m, &d, 16, &r));
    ASSERT_TRUE(r.samples == PAIRS && isfinite(r.loss));
    amuse_eval_result_release(&r);
    amuse_dataset_release(&d);
    amuse_model_free(m);
}

TEST(seq2seq_recipe_trains_with_one_hot_targets)
{
    train_recipe(0);
}

TEST(seq2seq_recipe_trains_with_sparse_targets)
{
    train_recipe(1);
}

/* Targets that do not fit the output are refused before training, naming what is wrong. */
TEST(seq2seq_rejects_mismatched_data)
{
    struct amuse_model *m = NULL;
    ASSERT_OK(amuse_model_from_file(&m, RECIPE));
    struct amuse_dataset d;
    make_dataset(m, &d, 1);
    struct amuse_fit_options o;
    ASSERT_OK(amuse_model_fit_options(m, &o));
    o.verbose = 0;
    o.epochs = 1;
    struct amuse_epoch_log h[1];
    int ran;
    d.target.i32[3 * 24 + 5] = 4800;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_EINVAL,
                 "sample 3, step 5 has label 4800");
    d.target.i32[3 * 24 + 5] = 0;
    d.target.shape.dim[0] = 12;
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_ESHAPE, "int32 targets of shape (12,)");
    d.target.shape.dim[0] = 24;
    /* The decoder takes its state from the encoder: it cannot keep one, and nothing changes. */
    ASSERT_FAILS(amuse_model_set_stateful(m, 1), AMUSE_EUNSUPPORTED,
                 "layer 'lstm_1' (LSTM): takes its initial state from other layers");
    ASSERT_EQ_INT(amuse_model_state_size(m), 0);
    snprintf(d.input[1].name, sizeof d.input[1].name, "decoder");
    ASSERT_FAILS(amuse_model_fit(m, &d, &o, h, &ran), AMUSE_ENOTFOUND, "no input named 'decoder'");
    amuse_dataset_release(&d);
    amuse_model_free(m);
}

int main(void)
{
    RUN(seq2seq_recipe_trains_with_one_hot_targets);
    RUN(seq2seq_recipe_trains_with_sparse_targets);
    RUN(seq2seq_rejects_mismatched_data);
    return test_summary();
}
