/* nn/model_internal.h - the model struct shared by the engine's files (internal).
 * model.c builds the graph and runs it, compile.c holds losses and optimizers, fit.c the epoch loop,
 * model_io.c files, summary.c the printed table. */
#ifndef AMUSE_NN_MODEL_INTERNAL_H
#define AMUSE_NN_MODEL_INTERNAL_H

#include "amuse/model.h"
#include "nn/layer.h"

#include <cjson/cJSON.h>

enum am__loss {
    AM__LOSS_NONE,
    AM__LOSS_CATEGORICAL_CROSSENTROPY,
    AM__LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
    AM__LOSS_BINARY_CROSSENTROPY,
    AM__LOSS_MEAN_SQUARED_ERROR
};

enum am__optimizer_kind { AM__OPT_SGD, AM__OPT_ADAM, AM__OPT_RMSPROP };

/* A Keras LearningRateSchedule (schedule.c); AM__SCHEDULE_NONE: the constant learning_rate. */
enum am__schedule_kind {
    AM__SCHEDULE_NONE,
    AM__SCHEDULE_EXPONENTIAL,
    AM__SCHEDULE_COSINE,
    AM__SCHEDULE_PIECEWISE
};
#define AM__MAX_PIECES 64 /* PiecewiseConstantDecay boundaries */

struct am__schedule {
    enum am__schedule_kind kind;
    double initial, decay_steps, decay_rate, alpha, warmup_target, warmup_steps;
    int staircase, warmup;
    int n_boundaries;
    double boundaries[AM__MAX_PIECES], values[AM__MAX_PIECES + 1];
};

struct am__optimizer {
    enum am__optimizer_kind kind;
    /* learning_rate is the constant rate (ReduceLROnPlateau lowers it); with a schedule the rate
     * of a step is am__schedule_value(&schedule, iterations) instead. */
    float learning_rate, momentum, beta_1, beta_2, epsilon, rho;
    int nesterov;
    struct am__schedule schedule;
    int64_t iterations; /* updates made so far */
};

struct am__weight_ref {
    int layer, index;
    char name[96]; /* "<layer>/<weight>" */
};

struct amuse_model {
    char name[128];
    cJSON *doc;         /* the whole config document */
    char *config_text;  /* printed doc, refreshed by amuse_model_config_json */
    int n_layers;
    struct am__layer *layers; /* topological order */
    int sequential;
    int n_inputs;             /* model inputs: InputLayer nodes, in Keras input_layers order */
    int input_nodes[AM__MAX_IO];
    struct am__node_ref output;
    char **labels;
    int n_labels;

    /* one block each for parameters, gradients and optimizer state */
    int64_t n_params;
    /* The trainable weights come first in the blocks: [0, n_trainable) is what the optimizer
     * updates; [n_trainable, n_params) holds non-trainable state (BatchNormalization's moving
     * statistics), saved with the model but never stepped. */
    int64_t n_trainable;
    float *params, *grads, *opt_state;
    int n_weight_refs;
    struct am__weight_ref *weight_refs;

    struct am__optimizer opt;
    enum am__loss loss;
    int metric_accuracy;

    /* activations for the current batch size: value and gradient per node output */
    int64_t batch_cap, last_batch;
    int reserved_threads;
    int row_products; /* am__model_set_row_products */
    float *acts, *act_grads;
    int64_t (*act_offset)[AM__MAX_IO];
    unsigned char *work;
    size_t *work_offset;
    int have_loss_grad;
    /* Step masks: mask_src[i] is the node whose mask output i's output 0 carries (-1: none);
     * mask_offset[i] is where node i's own mask lives in `masks` (makes_mask nodes). */
    int *mask_src;
    int64_t *mask_offset;
    float *masks;
    float *row_weight; /* the loss's per-row weights: user weights times the output's mask */
    /* fused_into[i] = j >= 0: node i (per-sample) runs inside node j's forward (epilogue). */
    int *fused_into;
    /* BatchNormalization folded into the layer before it at inference (see
     * AM__LAYER_FOLDS_BATCHNORM): fold_bn[i] = j >= 0 when node j is folded into node i, and
     * folded_into[j] = i; node i's folded kernel and bias live at fold_buf + fold_offset[i],
     * recomputed on every inference pass (cheap: one pass over the kernel). last_folded: the
     * last forward ran folded, so backward first runs the pairs unfolded. */
    int *fold_bn, *folded_into;
    int64_t *fold_offset;
    float *fold_buf;
    int n_folds, last_folded;
    int fold_off; /* 1: inference runs every layer as written (tests compare the two) */

    /* AMUSE_PROFILE=1: seconds spent per layer, forward and backward, printed by free */
    int profile;
    double (*layer_seconds)[2];
};

/* Name of the first graph node's output buffer etc. */
static inline float *am__act(struct amuse_model *m, struct am__node_ref r)
{
    return m->acts + m->act_offset[r.node][r.slot];
}
static inline float *am__act_grad(struct amuse_model *m, struct am__node_ref r)
{
    return m->act_grads + m->act_offset[r.node][r.slot];
}

/* compile.c */
int am__compile_from_json(struct amuse_model *m, const cJSON *compile);
void am__optimizer_update(struct amuse_model *m);
/* The rate the next update uses: the schedule's value at `iterations`, or the constant. */
float am__optimizer_learning_rate(const struct am__optimizer *o);
/* "SGD", "Adam" or "RMSprop". */
const char *am__optimizer_name(enum am__optimizer_kind kind);

/* schedule.c: parse {"class_name", "config"} (errors name `path`, e.g.
 * "compile.optimizer.config.learning_rate") and evaluate at an optimizer step. */
int am__schedule_parse(const cJSON *v, const char *path, struct am__schedule *s);
double am__schedule_value(const struct am__schedule *s, int64_t step);
const char *am__schedule_name(const struct am__schedule *s);
/* Losses over `rows` rows of `width` outputs (the last axis): the weighted mean over rows with
 * weight > 0 (weights NULL: all 1). targets: rows * width floats; labels: rows ids. */
float am__loss_forward(struct amuse_model *m, const float *y_pred, const float *targets,
                       const int32_t *labels, const float *weights, int64_t rows, int64_t width,
                       float *grad, int fused);
/* Correct rows among those with weight > 0; *counted receives how many rows counted. */
int64_t am__count_correct(const struct amuse_model *m, const float *y_pred, const float *targets,
                          const int32_t *labels, const float *weights, int64_t rows, int64_t width,
                          int64_t *counted);

/* train_state.c: what a resumed fit continues from, beside the model's own blocks (weights,
 * optimizer slots and iterations, learning rate, the layers' dropout RNGs). */
struct am__fit_state {
    int epoch;             /* epochs completed */
    int64_t train_samples; /* the shuffled training part */
    uint64_t seed;
    const char *monitor;   /* EarlyStopping / ModelCheckpoint's figure */
    struct amuse_rng shuffle;
    double best, plateau_best;
    int wait, plateau_wait, plateau_cooldown;
    int plateau;           /* a ReduceLROnPlateau callback runs: its learning rate is state */
    float *best_weights;   /* n_params floats with restore_best_weights, else NULL */
};
/* Write dir/AMUSE_TRAINING_STATE_FILE atomically (history: s->epoch entries). */
int am__train_state_save(struct amuse_model *m, const char *dir, const struct am__fit_state *s,
                         const struct amuse_epoch_log *history);
/* Read it back into m, *s and history[0..s->epoch), checking it against `want` (train_samples,
 * seed, monitor, plateau, best_weights, the freshly seeded shuffle RNG) and max_epochs; idx
 * (the identity over train_samples) gets the epochs' shuffles replayed when `shuffle`. The
 * model is unchanged on failure. */
int am__train_state_load(struct amuse_model *m, const char *dir, const struct am__fit_state *want,
                         int max_epochs, int64_t *idx, int shuffle, struct am__fit_state *s,
                         struct amuse_epoch_log *history);

/* model.c */
int am__model_reserve(struct amuse_model *m, int64_t batch);
/* Inference passes of at most `rows` rows compute Dense and recurrent products row by row
 * (am__sgemm_rows); 0 (the default): always one sgemm. Training passes never do. */
void am__model_set_row_products(struct amuse_model *m, int rows);
/* Rows per sample of the output (its size over its last axis) and the output's last axis. */
int64_t am__output_rows(const struct amuse_model *m);
int64_t am__output_width(const struct amuse_model *m);
/* The mask of the last forward's output (batch * rows floats), or NULL. */
const float *am__output_mask(struct amuse_model *m);

#endif
