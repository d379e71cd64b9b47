/* amuse/model.h - neural-network models: build from a Keras-style JSON config, train, evaluate,
 * predict, save and load.
 *
 * A model is a small graph of layers (Keras "Sequential" is the common case of a chain). Its
 * config uses Keras class names and config keys (Conv2D with filters, kernel_size, strides,
 * padding, activation; Dense with units; ...) plus "compile" (optimizer, loss, metrics) and "fit"
 * (batch_size, epochs, validation_split, callbacks) sections; docs/model-format.md describes it.
 *
 * On disk a model is a directory: config.json and model.safetensors (F32 tensors named
 * "<layer>/<weight>", e.g. "conv2d/kernel", in Keras layouts: Dense kernel (in, out), Conv2D kernel
 * (kh, kw, in, out), channels-last activations).
 *
 * Memory: parameters, gradients and optimizer state are one block each, allocated when the model
 * is built; activations are sized once per batch size. A model is not thread-safe: use one per
 * thread, or serialise calls.
 */
#ifndef AMUSE_MODEL_H
#define AMUSE_MODEL_H

#include "amuse/version.h" /* AMUSE_API */

#include "amuse/data.h"
#include "amuse/tensor.h"

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amuse_model;

/* ---- building, saving, loading ------------------------------------------------------------ */

/* Build a model from a config document (a training recipe or a saved model's config.json).
 * `source` names the document in error messages. Weights are zero until amuse_model_init_weights
 * or amuse_model_load. Errors name the layer index, layer name and config key at fault. */
AMUSE_API int amuse_model_from_json(struct amuse_model **out, const char *json, size_t len,
                                    const char *source);
AMUSE_API int amuse_model_from_file(struct amuse_model **out, const char *config_path);

/* Initialise weights as Keras does (glorot_uniform kernels, zero biases) from a seed. */
AMUSE_API int amuse_model_init_weights(struct amuse_model *m, uint64_t seed);

/* Load a model directory (config.json + model.safetensors). Every weight named by the config must
 * be present with the right shape; extra tensors are an error too. */
AMUSE_API int amuse_model_load(struct amuse_model **out, const char *dir);

/* Save to a directory (created if missing): config.json and model.safetensors, each written
 * atomically (temp file, fsync, rename). */
AMUSE_API int amuse_model_save(struct amuse_model *m, const char *dir);

AMUSE_API void amuse_model_free(struct amuse_model *m);

/* ---- introspection ------------------------------------------------------------------------ */

AMUSE_API const char *amuse_model_name(const struct amuse_model *m);
/* Shape of one input sample / one output sample (no batch dimension). For a model with several
 * inputs, amuse_model_input_shape is the first one's. */
AMUSE_API const struct amuse_shape *amuse_model_input_shape(const struct amuse_model *m);
/* Change the per-sample shape of input `index` and re-derive every layer's shapes: a sequence
 * model trained on 64 steps can run 1 step at a time (with stateful layers) or on 200. Weights,
 * their values and the optimizer state are kept. AMUSE_ESHAPE naming the layer if a layer refuses
 * the shape or a weight's shape would change (a Flatten -> Dense model cannot change its image
 * size); the model is then unchanged. AMUSE_EINVAL for a bad index or shape. Buffers are
 * re-sized at the next forward pass. The config document is not rewritten: a saved model keeps
 * the shape it was built with. */
AMUSE_API int amuse_model_set_input_shape(struct amuse_model *m, int index, const struct amuse_shape *shape);

/* Number of inputs (InputLayers, in the config's input_layers order) and the shape of each;
 * NULL for an index out of range. */
AMUSE_API int amuse_model_input_count(const struct amuse_model *m);
AMUSE_API const struct amuse_shape *amuse_model_input_shape_at(const struct amuse_model *m, int index);
AMUSE_API const struct amuse_shape *amuse_model_output_shape(const struct amuse_model *m);
/* The element type of input k: AMUSE_INT32 for token-id inputs (InputLayer "dtype": "int32"),
 * else AMUSE_FLOAT32 (also for an index out of range). */
AMUSE_API enum amuse_dtype amuse_model_input_dtype_at(const struct amuse_model *m, int index);
/* The position of the InputLayer called `name`, or AMUSE_ENOTFOUND. */
AMUSE_API int amuse_model_input_index(const struct amuse_model *m, const char *name);
/* Rows of the output per sample: its size over its last axis (1 for a classifier's (classes),
 * T for a (T, V) sequence output). Losses and accuracy run over rows. */
AMUSE_API int64_t amuse_model_output_rows(const struct amuse_model *m);
AMUSE_API int64_t amuse_model_param_count(const struct amuse_model *m);
/* Class labels from the config ("labels": [...]); NULL if the config has none. */
AMUSE_API const char *amuse_model_label(const struct amuse_model *m, int index);
/* The config document (as loaded, with anything amuse_model_save added). Owned by the model. */
AMUSE_API const char *amuse_model_config_json(const struct amuse_model *m);

/* A string from a section of the config, e.g. ("data", "train_images"); NULL if absent. */
AMUSE_API const char *amuse_model_config_string(const struct amuse_model *m, const char *section,
                                                const char *key);
/* A boolean from a section of the config; `fallback` if absent. */
AMUSE_API int amuse_model_config_bool(const struct amuse_model *m, const char *section, const char *key,
                                      int fallback);
/* Attach a JSON value (text) under a top-level key of the config, replacing any old value; it is
 * saved with the model (the CLI records training results under "training"). */
AMUSE_API int amuse_model_config_set(struct amuse_model *m, const char *key, const char *json);

/* Weights in a fixed order. value and grad are views into the model's blocks. */
AMUSE_API int amuse_model_weight_count(const struct amuse_model *m);
AMUSE_API const char *amuse_model_weight_info(struct amuse_model *m, int index, struct amuse_tensor *value,
                                              struct amuse_tensor *grad);
/* By name ("dense/kernel"); AMUSE_ENOTFOUND if absent. */
AMUSE_API int amuse_model_find_weight(struct amuse_model *m, const char *name, struct amuse_tensor *value,
                                      struct amuse_tensor *grad);

/* Keras-style summary table (layers, output shapes, parameter counts) to out. */
AMUSE_API void amuse_model_summary(const struct amuse_model *m, FILE *out);

/* ---- training one step at a time -------------------------------------------------------- */

/* Set optimizer, loss and metrics from a Keras-like "compile" JSON object, e.g.
 * {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
 *  "loss": "categorical_crossentropy"}. The optimizer's learning_rate may also be a Keras
 * LearningRateSchedule, {"class_name": "ExponentialDecay" | "CosineDecay" |
 * "PiecewiseConstantDecay", "config": {...}} (docs/model-format.md), evaluated at each update.
 * Resets optimizer state. AMUSE_EFORMAT naming the field at fault (e.g.
 * "compile.optimizer.config.learning_rate.config.decay_steps must be > 0"); AMUSE_EUNSUPPORTED
 * for an unknown optimizer, loss or schedule. */
AMUSE_API int amuse_model_compile(struct amuse_model *m, const char *compile_json);

/* The learning rate the next amuse_model_step will use: the schedule's value at the updates made
 * so far, or the constant rate (as ReduceLROnPlateau left it). */
AMUSE_API float amuse_model_learning_rate(const struct amuse_model *m);
/* Optimizer updates made since compile / init_weights (Keras's optimizer.iterations). */
AMUSE_API int64_t amuse_model_iterations(const struct amuse_model *m);

/* Run the graph on `batch` samples (x: batch * size(input) floats) of a one-input model. training=1 enables dropout.
 * *out points to batch * size(output) floats owned by the model, valid until the next call. */
AMUSE_API int amuse_model_forward(struct amuse_model *m, const float *x, int64_t batch, int training,
                                  const float **out);

/* The same for a model with several inputs: xs[k] holds batch * size(input k) floats (token-id
 * inputs take whole-number floats, converted to int32; AMUSE_EINVAL otherwise). */
AMUSE_API int amuse_model_forward_inputs(struct amuse_model *m, const float *const *xs, int n_inputs,
                                         int64_t batch, int training, const float **out);

/* Run the graph on a batch: b->n samples, b->n_inputs arrays matched to the model's inputs by
 * name (or by position where the name is ""), each float32 or int32 (converted to the input's
 * dtype), each of the input's per-sample shape (AMUSE_ESHAPE naming the input otherwise). The
 * targets are not read. *out as for amuse_model_forward. */
AMUSE_API int amuse_model_forward_batch(struct amuse_model *m, const struct amuse_batch *b, int training,
                                        const float **out);

/* Loss of the last forward pass, Keras's way (probabilities clipped to [1e-7, 1 - 1e-7]). The
 * loss runs over the output's last axis: an output of per-sample shape (..., V) has
 * rows = batch * amuse_model_output_rows(m) rows of V values (llm.c's B*T rows). Give one-hot/soft
 * `targets` (rows * V floats) or integer `labels` (rows ids, each in [0, V)). The loss is the
 * mean over rows; also stores d(loss)/d(output) for amuse_model_backward (fused with softmax
 * where the output layer's type allows it). */
AMUSE_API int amuse_model_loss(struct amuse_model *m, const float *targets, const int32_t *labels,
                               float *loss);
/* The same with a weight per row (NULL: all 1): the loss is sum(w * loss_row) / sum(w), so rows
 * of weight 0 (padding) count for nothing; all-zero weights give loss 0 and no gradient. If the
 * model's output carries a step mask (Embedding mask_zero through mask-passing layers), the mask
 * multiplies the weights. */
AMUSE_API int amuse_model_loss_weighted(struct amuse_model *m, const float *targets, const int32_t *labels,
                                        const float *weights, float *loss);
/* The loss of the last forward pass against b's targets and weights (b->n must be that pass's
 * batch): int32 targets of size amuse_model_output_rows(m) per sample, or float targets of the
 * output's size; AMUSE_ESHAPE otherwise. */
AMUSE_API int amuse_model_loss_batch(struct amuse_model *m, const struct amuse_batch *b, float *loss);

/* Set all gradients to zero. */
AMUSE_API void amuse_model_zero_grad(struct amuse_model *m);
/* Back-propagate the last loss; gradients accumulate (+=) into the gradient block. */
AMUSE_API int amuse_model_backward(struct amuse_model *m);
/* One optimizer update from the current gradients. */
AMUSE_API int amuse_model_step(struct amuse_model *m);

/* ---- kept recurrent state: one step at a time ------------------------------------------- */

/* Recurrent layers configured with "stateful": true (Keras's flag) keep their final states per
 * batch row: each forward pass starts row b from the state kept for row b (zeros for a row
 * never run or reset) and stores row b's final state back, in training and inference alike
 * (gradients do not flow into kept state). So a model whose input is one time step, run once
 * per token with the same row for the same stream, carries (h, c) between calls: token-by-token
 * sampling. Rows are slots: continuous batching moves a stream between slots with get/set and
 * frees a slot with reset. Kept state grows with the largest batch run (or row set), up to
 * AMUSE_MAX_STATE_ROWS rows; it is not saved with the model. */
#define AMUSE_MAX_STATE_ROWS 65536

/* Floats of kept state per row: for each stateful layer in graph order, h (units) then, for an
 * LSTM, c (units). 0 if the model has no stateful layer. */
AMUSE_API int64_t amuse_model_state_size(const struct amuse_model *m);
/* Copy row `row`'s state out (amuse_model_state_size floats) or in. AMUSE_EINVAL for a model
 * without stateful layers or a row outside [0, AMUSE_MAX_STATE_ROWS); AMUSE_ENOMEM. */
AMUSE_API int amuse_model_state_get(struct amuse_model *m, int64_t row, float *out);
AMUSE_API int amuse_model_state_set(struct amuse_model *m, int64_t row, const float *in);
/* Make every recurrent layer keep its state (on = 1, as "stateful": true would) or not (on = 0,
 * which also drops what was kept). Together with amuse_model_set_input_shape this turns a model
 * trained on whole sequences into a one-step generator with the same weights. AMUSE_EINVAL if the
 * model has no recurrent layer; AMUSE_EUNSUPPORTED (naming the layer, nothing changed) if one
 * takes its initial state from other layers. Not saved with the model. */
AMUSE_API int amuse_model_set_stateful(struct amuse_model *m, int on);
/* Zero the state of the n_rows rows listed (rows NULL: every row, and the memory is freed).
 * A model without stateful layers has nothing to reset (AMUSE_OK). */
AMUSE_API int amuse_model_reset_states(struct amuse_model *m, const int64_t *rows, int n_rows);

/* ---- fit / evaluate / predict ------------------------------------------------------------ */

struct amuse_epoch_log {
    int epoch;
    double loss, accuracy, val_loss, val_accuracy; /* val_* are NAN without validation data */
    double train_seconds, val_seconds;            /* time in training steps / in validation */
    int64_t train_samples;
    /* The learning rate at the end of the epoch, before ReduceLROnPlateau acts (Keras's "lr" /
     * "learning_rate" log entry); with a schedule, the rate of the next update. */
    double learning_rate;
};

struct amuse_fit_options {
    int batch_size;          /* default 32 */
    int epochs;              /* default 1 */
    double validation_split; /* fraction held out from the END before shuffling (Keras) */
    int shuffle;             /* default 1 */
    uint64_t seed;           /* shuffling and dropout */
    int verbose;             /* 0 silent, 1 progress bar (one line per epoch if not a TTY) */
    FILE *progress;          /* where progress goes (default stdout) */
    /* EarlyStopping: monitor "val_loss" / "val_accuracy" / "loss" / "accuracy"; patience < 0 off;
     * training stops once `patience` epochs in a row have not improved (Keras) */
    const char *monitor;
    int patience;
    double min_delta;
    int restore_best_weights;
    /* If set, the model is saved here whenever the monitored value improves (ModelCheckpoint
     * with save_best_only). `checkpoint` says the config asked for it; the caller picks the dir. */
    const char *checkpoint_dir;
    int checkpoint;
    /* ReduceLROnPlateau (plateau_factor 0: off): when plateau_monitor has not improved by
     * more than plateau_min_delta for plateau_patience epochs, the constant learning rate is
     * multiplied by plateau_factor (in (0, 1)), never below plateau_min_lr; then
     * plateau_cooldown epochs pass before counting again (Keras's rules). */
    const char *plateau_monitor;
    int plateau_patience, plateau_cooldown;
    double plateau_factor, plateau_min_delta, plateau_min_lr;
    /* Resume: continue the run whose training state (AMUSE_TRAINING_STATE_FILE) is in
     * resume_dir: weights, optimizer slots and step count, epochs reached, shuffling and dropout
     * RNGs, the callbacks' counters and best values, and the history so far, which fills
     * history[0..reached). Training goes on up to `epochs` in all (Keras's initial_epoch).
     * state_dir: where fit writes the training state when it returns (with the weights of the
     * last epoch, before restore_best_weights); a checkpoint_dir gets one beside every
     * checkpoint. Either may be NULL. */
    const char *resume_dir;
    const char *state_dir;
};

/* The training-state file in a model directory: safetensors, tensors "weights/<weight>",
 * "slot1/<weight>", "slot2/<weight>" (the optimizer's moments) and with restore_best_weights
 * "best_weights/<weight>"; the counters in its metadata (docs/model-format.md). */
#define AMUSE_TRAINING_STATE_FILE "training_state.safetensors"

/* Options from the config's "fit" section (with Keras defaults where it is silent). */
AMUSE_API int amuse_model_fit_options(const struct amuse_model *m, struct amuse_fit_options *opt);

/* Train on d with Keras fit semantics. d's inputs are matched to the model's as in
 * amuse_model_forward_batch; its targets as in amuse_model_loss_batch, with int32 ids checked to
 * be in range before training (AMUSE_EINVAL naming the sample and step). Loss and accuracy are
 * over target rows with weight > 0 (masked steps are ignored). history receives one entry per epoch run (up to
 * opt->epochs entries; caller allocates); *epochs_run says how many.
 * When the amuse command runs under mpirun, every rank calls this with the same data and options
 * and training is data-parallel: batch_size per rank, gradients summed across ranks, rank 0 alone
 * prints and writes checkpoints (docs/SCALING.md). The library never starts MPI itself: in any
 * other program this trains in the calling process alone.
 * With opt->resume_dir, a training state that does not fit this run fails before any training
 * with AMUSE_EFORMAT (truncated or malformed file, a missing or bad field) or AMUSE_EINVAL (another
 * model, optimizer, seed, training set size or monitor, or epochs already reached), naming the
 * file and the field; the model's weights are then unchanged. On a single thread, training N
 * epochs in one call and training K, then resuming to N, give bit-identical weights. */
AMUSE_API int amuse_model_fit(struct amuse_model *m, const struct amuse_dataset *d,
                              const struct amuse_fit_options *opt, struct amuse_epoch_log *history,
                              int *epochs_run);

struct amuse_eval_result {
    double loss, accuracy, seconds;
    int64_t samples;
    int n_classes;
    double *class_accuracy; /* n_classes entries, owned; free with amuse_eval_result_release */
    int64_t *class_count;
};
AMUSE_API int amuse_model_evaluate(struct amuse_model *m, const struct amuse_dataset *d, int batch_size,
                                   struct amuse_eval_result *res);
AMUSE_API void amuse_eval_result_release(struct amuse_eval_result *res);

/* Outputs for n samples into out (n * size(output) floats), in batches of batch_size. One-input
 * models (AMUSE_EUNSUPPORTED otherwise). */
AMUSE_API int amuse_model_predict(struct amuse_model *m, const float *x, int64_t n, int batch_size,
                                  float *out);
/* The same for any model: inputs->n samples of every input (targets ignored). */
AMUSE_API int amuse_model_predict_batch(struct amuse_model *m, const struct amuse_batch *inputs,
                                        int batch_size, float *out);

/* Write training curves (loss and accuracy, train and validation) as an SVG, atomically. */
AMUSE_API int amuse_history_write_svg(const char *path, const struct amuse_epoch_log *history, int n);

#ifdef __cplusplus
}
#endif
#endif
