/* fit.c - Keras's fit / evaluate / predict loops over an in-memory dataset.
 *
 * fit: validation_split holds out the LAST fraction before any shuffling; the training part is
 * reshuffled every epoch from the seed; EarlyStopping, ReduceLROnPlateau and best-epoch
 * checkpoints follow Keras's callbacks. A run can be resumed from the training state it wrote
 * (train_state.c); learning-rate schedules live in schedule.c. The progress bar lives in
 * progress.c, the curves in history.c.
 * Under MPI (core/mpi.h) fit is data-parallel: see "data-parallel helpers" below. Rank 0 alone
 * prints and writes checkpoints; the caller decides who writes the final model. */
#define _POSIX_C_SOURCE 200809L
#include "nn/model_internal.h"

#include "core/internal.h"
#include "core/mpi.h"
#include "nn/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---------------------------------------------------------------- options from the config */

static int fit_number(const cJSON *fit, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(fit, key);
    if (!v || cJSON_IsNull(v))
        return AMUSE_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return am__fail(AMUSE_EFORMAT, "fit.%s must be a number in [%g, %g]", key, lo, hi);
    *out = v->valuedouble;
    return AMUSE_OK;
}

/* A callback's "monitor" (NULL if absent). */
static int parse_monitor(const cJSON *cfg, int i, const char **out)
{
    static const char *const ok[] = {"val_loss", "val_accuracy", "loss", "accuracy"};
    const cJSON *monitor = cJSON_GetObjectItemCaseSensitive(cfg, "monitor");
    *out = NULL;
    if (!monitor)
        return AMUSE_OK;
    for (int k = 0; k < 4; k++)
        if (cJSON_IsString(monitor) && strcmp(monitor->valuestring, ok[k]) == 0) {
            *out = ok[k];
            return AMUSE_OK;
        }
    return am__fail(AMUSE_EFORMAT,
                    "fit.callbacks[%d].config.monitor must be val_loss, val_accuracy, loss or "
                    "accuracy",
                    i);
}

/* ReduceLROnPlateau with Keras's defaults: monitor val_loss, factor 0.1, patience 10,
 * min_delta 1e-4, cooldown 0, min_lr 0. */
static int parse_plateau(const cJSON *cfg, int i, const char *monitor,
                         struct amuse_fit_options *opt)
{
    double factor = 0.1, patience = 10, min_delta = 1e-4, cooldown = 0, min_lr = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cfg, "factor");
    if (f && !(cJSON_IsNumber(f) && f->valuedouble > 0 && f->valuedouble < 1))
        return am__fail(AMUSE_EFORMAT,
                        "fit.callbacks[%d].config.factor must be a number in (0, 1) "
                        "(ReduceLROnPlateau)",
                        i);
    if (f)
        factor = f->valuedouble;
    if (fit_number(cfg, "patience", 0, 1e6, &patience) ||
        fit_number(cfg, "min_delta", 0, 1e6, &min_delta) ||
        fit_number(cfg, "cooldown", 0, 1e6, &cooldown) ||
        fit_number(cfg, "min_lr", 0, 1e3, &min_lr))
        return am__fail_prefix(AMUSE_EFORMAT, "fit.callbacks[%d] (ReduceLROnPlateau)", i);
    if (patience != floor(patience) || cooldown != floor(cooldown))
        return am__fail(AMUSE_EFORMAT,
                        "fit.callbacks[%d] (ReduceLROnPlateau): patience and cooldown must be "
                        "whole numbers",
                        i);
    opt->plateau_monitor = monitor ? monitor : "val_loss";
    opt->plateau_factor = factor;
    opt->plateau_patience = (int)patience;
    opt->plateau_min_delta = min_delta;
    opt->plateau_cooldown = (int)cooldown;
    opt->plateau_min_lr = min_lr;
    return AMUSE_OK;
}

static int parse_callbacks(const cJSON *list, struct amuse_fit_options *opt)
{
    const cJSON *cb;
    int i = 0;
    if (list && !cJSON_IsArray(list))
        return am__fail(AMUSE_EFORMAT, "fit.callbacks must be a list");
    cJSON_ArrayForEach(cb, list)
    {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cb, "class_name");
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(cb, "config");
        const char *monitor;
        int rc;
        if (!cJSON_IsString(cls))
            return am__fail(AMUSE_EFORMAT, "fit.callbacks[%d]: missing string 'class_name'", i);
        if (cfg && !cJSON_IsObject(cfg))
            return am__fail(AMUSE_EFORMAT, "fit.callbacks[%d].config must be an object", i);
        if ((rc = parse_monitor(cfg, i, &monitor)))
            return rc;
        if (strcmp(cls->valuestring, "ReduceLROnPlateau") == 0) {
            /* Its own monitor: EarlyStopping and ModelCheckpoint share the other one. */
            if ((rc = parse_plateau(cfg, i, monitor, opt)))
                return rc;
            i++;
            continue;
        }
        if (monitor)
            opt->monitor = monitor;
        if (strcmp(cls->valuestring, "EarlyStopping") == 0) {
            double patience = 0, min_delta = 0;
            if (fit_number(cfg, "patience", 0, 1e6, &patience) ||
                fit_number(cfg, "min_delta", 0, 1e6, &min_delta))
                return am__fail_prefix(AMUSE_EFORMAT, "fit.callbacks[%d] (EarlyStopping)", i);
            opt->patience = (int)patience;
            opt->min_delta = min_delta;
            opt->restore_best_weights =
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "restore_best_weights"));
        } else if (strcmp(cls->valuestring, "ModelCheckpoint") == 0) {
            opt->checkpoint = 1;
        } else {
            return am__fail(AMUSE_EUNSUPPORTED,
                            "fit.callbacks[%d]: unknown callback '%s' (known: EarlyStopping, "
                            "ModelCheckpoint, ReduceLROnPlateau)",
                            i, cls->valuestring);
        }
        i++;
    }
    return AMUSE_OK;
}

int amuse_model_fit_options(const struct amuse_model *m, struct amuse_fit_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->batch_size = 32;
    opt->epochs = 1;
    opt->shuffle = 1;
    opt->verbose = 1;
    opt->monitor = "val_loss";
    opt->patience = -1;
    const cJSON *fit = cJSON_GetObjectItemCaseSensitive(m->doc, "fit");
    if (!fit)
        return AMUSE_OK;
    if (!cJSON_IsObject(fit))
        return am__fail(AMUSE_EFORMAT, "'fit' must be an object");
    double batch = opt->batch_size, epochs = opt->epochs, seed = 0;
    int rc;
    if ((rc = fit_number(fit, "batch_size", 1, 1 << 20, &batch)) ||
        (rc = fit_number(fit, "epochs", 1, 1e6, &epochs)) ||
        (rc = fit_number(fit, "validation_split", 0, 0.99, &opt->validation_split)) ||
        (rc = fit_number(fit, "seed", 0, 9007199254740991.0, &seed)))
        return rc;
    opt->batch_size = (int)batch;
    opt->epochs = (int)epochs;
    opt->seed = (uint64_t)seed;
    const cJSON *shuffle = cJSON_GetObjectItemCaseSensitive(fit, "shuffle");
    if (shuffle)
        opt->shuffle = cJSON_IsTrue(shuffle);
    return parse_callbacks(cJSON_GetObjectItemCaseSensitive(fit, "callbacks"), opt);
}

/* ---------------------------------------------------------------- batches
 * A batch is gathered from a dataset by sample index: every input array, the targets and the
 * row weights, each in its own dtype. */

struct batch_buffers {
    struct amuse_batch b;
    float *weight;
};

static void *array_data(const struct amuse_array *a)
{
    return a->dtype == AMUSE_INT32 ? (void *)a->i32 : (void *)a->f32;
}

static int batch_alloc(struct batch_buffers *bb, const struct amuse_dataset *d, int64_t batch)
{
    memset(bb, 0, sizeof *bb);
    int rc = AMUSE_OK;
    bb->b.n_inputs = d->n_inputs;
    for (int k = 0; k < d->n_inputs && rc == AMUSE_OK; k++)
        rc = amuse_array_alloc(&bb->b.input[k], d->input[k].name, d->input[k].dtype,
                               &d->input[k].shape, batch);
    if (rc == AMUSE_OK)
        rc = amuse_array_alloc(&bb->b.target, NULL, d->target.dtype, &d->target.shape, batch);
    if (rc == AMUSE_OK && d->weight) {
        int64_t rows = amuse_dataset_target_rows(&d->target);
        bb->weight = am__calloc_aligned((size_t)(batch * rows) + 1, sizeof(float));
        if (!bb->weight)
            rc = am__fail(AMUSE_ENOMEM, "cannot allocate a batch of %lld", (long long)batch);
        bb->b.weight = bb->weight;
    }
    return rc;
}

static void batch_release(struct batch_buffers *bb)
{
    for (int k = 0; k < AMUSE_MAX_INPUTS; k++) {
        am__free(bb->b.input[k].f32);
        am__free(bb->b.input[k].i32);
    }
    am__free(bb->b.target.f32);
    am__free(bb->b.target.i32);
    am__free(bb->weight);
    memset(bb, 0, sizeof *bb);
}

static void gather_array(const struct amuse_array *src, const int64_t *idx, int64_t n,
                         struct amuse_array *dst)
{
    size_t per = (size_t)amuse_array_sample_size(src) * amuse_array_elem_size(src);
    const char *from = array_data(src);
    char *to = array_data(dst);
#pragma omp parallel for schedule(static) if ((size_t)n * per > 262144)
    for (int64_t i = 0; i < n; i++)
        memcpy(to + (size_t)i * per, from + (size_t)idx[i] * per, per);
}

static void gather(const struct amuse_dataset *d, const int64_t *idx, int64_t n,
                   struct batch_buffers *bb)
{
    for (int k = 0; k < d->n_inputs; k++)
        gather_array(&d->input[k], idx, n, &bb->b.input[k]);
    gather_array(&d->target, idx, n, &bb->b.target);
    if (d->weight) {
        int64_t rows = amuse_dataset_target_rows(&d->target);
        for (int64_t i = 0; i < n; i++)
            memcpy(bb->weight + i * rows, d->weight + idx[i] * rows, (size_t)rows * sizeof(float));
    }
    bb->b.n = n;
}

static int check_dataset(const struct amuse_model *m, const struct amuse_dataset *d)
{
    if (d->n_inputs != m->n_inputs)
        return am__fail(AMUSE_EINVAL, "model '%s' takes %d inputs; the data has %d", m->name,
                        m->n_inputs, d->n_inputs);
    for (int j = 0; j < d->n_inputs; j++) {
        const struct amuse_array *a = &d->input[j];
        int k = a->name[0] ? amuse_model_input_index(m, a->name) : j;
        if (k < 0)
            return k;
        if (!array_data(a))
            return am__fail(AMUSE_EINVAL, "data input %d has no values", j);
        if (!amuse_shape_equal(&a->shape, amuse_model_input_shape_at(m, k))) {
            char x[96], y[96];
            return am__fail(AMUSE_ESHAPE, "data samples are %s but model '%s' takes %s%s%s",
                            amuse_shape_format(&a->shape, 0, x, sizeof x), m->name,
                            amuse_shape_format(amuse_model_input_shape_at(m, k), 0, y, sizeof y),
                            m->n_inputs > 1 ? " at input " : "",
                            m->n_inputs > 1 ? m->layers[m->input_nodes[k]].name : "");
        }
    }
    const struct amuse_array *t = &d->target;
    if (!array_data(t))
        return am__fail(AMUSE_EINVAL, "the dataset has no labels");
    int64_t width = am__output_width(m), rows = am__output_rows(m);
    if (t->dtype == AMUSE_INT32 ? amuse_shape_size(&t->shape) != rows
                                : amuse_shape_size(&t->shape) != rows * width) {
        char x[96], y[96];
        return am__fail(AMUSE_ESHAPE, "model '%s' outputs %s; %s targets of shape %s do not fit",
                        m->name, amuse_shape_format(amuse_model_output_shape(m), 0, x, sizeof x),
                        t->dtype == AMUSE_INT32 ? "int32" : "float",
                        amuse_shape_format(&t->shape, 0, y, sizeof y));
    }
    if (t->dtype == AMUSE_INT32) {
        int64_t classes = m->loss == AM__LOSS_BINARY_CROSSENTROPY
                              ? 2 /* labels are the 0/1 target of every output */
                              : width;
        for (int64_t i = 0; i < d->n * rows; i++)
            if (t->i32[i] < 0 || t->i32[i] >= classes) {
                if (rows == 1)
                    return am__fail(AMUSE_EINVAL,
                                    "sample %lld has label %d; the model has %lld classes",
                                    (long long)i, t->i32[i], (long long)classes);
                return am__fail(AMUSE_EINVAL,
                                "sample %lld, step %lld has label %d; the model has %lld classes",
                                (long long)(i / rows), (long long)(i % rows), t->i32[i],
                                (long long)classes);
            }
    }
    return AMUSE_OK;
}

/* Class count for per-class figures: a one-output binary model has classes 0 and 1. */
static int64_t class_count(const struct amuse_model *m)
{
    int64_t width = am__output_width(m);
    return m->loss == AM__LOSS_BINARY_CROSSENTROPY && width == 1 ? 2 : width;
}

static int64_t predicted_class(const struct amuse_model *m, const float *p, int64_t width)
{
    if (m->loss == AM__LOSS_BINARY_CROSSENTROPY && width == 1)
        return p[0] > 0.5f;
    int64_t best = 0;
    for (int64_t j = 1; j < width; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

/* The row weights the last loss used (the batch's, times the output's mask). */
static const float *loss_weights(struct amuse_model *m, const struct amuse_batch *b)
{
    return am__output_mask(m) ? m->row_weight : b->weight;
}

/* One batch's loss and correct/counted rows, after a forward pass. */
static int batch_loss(struct amuse_model *m, const struct amuse_batch *b, const float *p,
                      float *loss, int64_t *correct, int64_t *counted)
{
    int rc = amuse_model_loss_batch(m, b, loss);
    if (rc)
        return rc;
    const struct amuse_array *t = &b->target;
    int64_t rows = b->n * am__output_rows(m), n = 0;
    *correct += am__count_correct(m, p, t->dtype == AMUSE_INT32 ? NULL : t->f32,
                                  t->dtype == AMUSE_INT32 ? t->i32 : NULL, loss_weights(m, b),
                                  rows, am__output_width(m), &n);
    *counted += n;
    return AMUSE_OK;
}

/* What an evaluation adds up: sums, so that ranks' shares can be added before dividing. */
enum { EVAL_LOSS_SUM, EVAL_SAMPLES, EVAL_CORRECT, EVAL_COUNTED, EVAL_SUMS };

/* Loss and accuracy over samples idx[0..n) without training; sums[] receives the raw sums. */
static int run_eval(struct amuse_model *m, const struct amuse_dataset *d, const int64_t *idx,
                    int64_t n, int batch_size, double *loss, double *accuracy, int64_t *per_class,
                    int64_t *per_class_ok, double sums[EVAL_SUMS])
{
    int64_t width = am__output_width(m), rows = am__output_rows(m);
    struct batch_buffers b;
    int rc = batch_alloc(&b, d, batch_size);
    double total = 0;
    int64_t correct = 0, counted = 0;
    enum am__loss saved = m->loss;
    if (m->loss == AM__LOSS_NONE)
        m->loss = AM__LOSS_CATEGORICAL_CROSSENTROPY;
    for (int64_t at = 0; rc == AMUSE_OK && at < n; at += batch_size) {
        int64_t nb = n - at < batch_size ? n - at : batch_size;
        const float *p;
        float l;
        gather(d, idx + at, nb, &b);
        if ((rc = amuse_model_forward_batch(m, &b.b, 0, &p)) ||
            (rc = batch_loss(m, &b.b, p, &l, &correct, &counted)))
            break;
        total += (double)l * nb;
        if (per_class && b.b.target.dtype == AMUSE_INT32) {
            const float *w = loss_weights(m, &b.b);
            for (int64_t i = 0; i < nb * rows; i++) {
                if (w && w[i] == 0.0f)
                    continue;
                int32_t want = b.b.target.i32[i];
                per_class[want]++;
                per_class_ok[want] += predicted_class(m, p + i * width, width) == want;
            }
        }
    }
    m->loss = saved;
    batch_release(&b);
    sums[EVAL_LOSS_SUM] = total;
    sums[EVAL_SAMPLES] = (double)n;
    sums[EVAL_CORRECT] = (double)correct;
    sums[EVAL_COUNTED] = (double)counted;
    *loss = n ? total / (double)n : NAN;
    *accuracy = counted ? (double)correct / (double)counted : NAN;
    return rc;
}

static double monitored(const struct amuse_epoch_log *e, const char *monitor)
{
    if (strcmp(monitor, "val_loss") == 0)
        return e->val_loss;
    if (strcmp(monitor, "val_accuracy") == 0)
        return e->val_accuracy;
    if (strcmp(monitor, "accuracy") == 0)
        return e->accuracy;
    return e->loss;
}

/* ---------------------------------------------------------------- data-parallel helpers
 * Under MPI every rank holds the whole dataset and the same weights, shuffles with the same seed,
 * and takes its share of each global batch of ranks * batch_size samples. The loss is a weighted
 * mean over rows, so rank r's gradient g_r is over its own weight sum w_r; the global batch's
 * gradient is sum_r g_r w_r / sum_r w_r. Each step therefore reduces a few sums first (weight,
 * loss, accuracy counts, failures), scales its gradient by w_r / W after backward, and sums the
 * one gradient block across ranks; then every rank takes the same optimizer step. */

enum { STEP_WEIGHT, STEP_LOSS, STEP_CORRECT, STEP_COUNTED, STEP_FAILED, STEP_SUMS };

/* The loss's denominator for the last batch: the sum of its row weights (rows if none). */
static double loss_denominator(struct amuse_model *m, const struct amuse_batch *b)
{
    const float *w = loss_weights(m, b);
    int64_t rows = b->n * am__output_rows(m);
    if (!w)
        return (double)rows;
    double s = 0;
    for (int64_t i = 0; i < rows; i++)
        s += w[i];
    return s;
}

/* Average BatchNormalization's moving statistics (the non-trainable tail of the parameters):
 * each rank saw different batches, and every rank must save and validate the same model. */
static int average_state(struct amuse_model *m, int ranks)
{
    int64_t n = m->n_params - m->n_trainable;
    if (ranks == 1 || n == 0)
        return AMUSE_OK;
    float *state = m->params + m->n_trainable;
    int rc = am__mpi_allreduce_sum_float(state, n);
    for (int64_t i = 0; rc == AMUSE_OK && i < n; i++)
        state[i] /= (float)ranks;
    return rc;
}

/* One training step on this rank's share of the global batch [at, at + nb_global). */
static int train_step(struct amuse_model *m, const struct amuse_dataset *d, const int64_t *idx,
                      int64_t at, int64_t nb_global, int epoch, int64_t step,
                      struct batch_buffers *b, double sums[STEP_SUMS])
{
    int ranks = am__mpi_size(), rank = am__mpi_rank();
    int64_t lo = at + am__mpi_share(nb_global, rank, ranks);
    int64_t nb = at + am__mpi_share(nb_global, rank + 1, ranks) - lo;
    int64_t correct = 0, counted = 0;
    float l = 0;
    double weight = 0; /* this rank's loss denominator */
    int rc = AMUSE_OK;
    memset(sums, 0, STEP_SUMS * sizeof *sums);
    if (nb > 0) {
        const float *p;
        gather(d, idx + lo, nb, b);
        if (!(rc = amuse_model_forward_batch(m, &b->b, 1, &p)))
            rc = batch_loss(m, &b->b, p, &l, &correct, &counted);
        if (!rc) {
            sums[STEP_WEIGHT] = weight = loss_denominator(m, &b->b);
            sums[STEP_LOSS] = (double)l * weight;
            sums[STEP_CORRECT] = (double)correct;
            sums[STEP_COUNTED] = (double)counted;
        }
    }
    sums[STEP_FAILED] = rc ? 1 : 0;
    if (ranks > 1) {
        /* Everyone hears about a failure here, before anyone waits in the gradient allreduce. */
        int crc = am__mpi_allreduce_sum_double(sums, STEP_SUMS);
        if (crc)
            return crc;
        if (!rc && sums[STEP_FAILED] > 0)
            return am__fail(AMUSE_EINVAL, "epoch %d, step %lld: %g other rank(s) failed",
                            epoch + 1, (long long)step + 1, sums[STEP_FAILED]);
    }
    if (rc)
        return rc;
    double loss = sums[STEP_WEIGHT] > 0 ? sums[STEP_LOSS] / sums[STEP_WEIGHT] : 0;
    if (!isfinite(loss))
        return am__fail(AMUSE_EINVAL, "epoch %d, step %lld: the loss is %g; lower the learning rate",
                        epoch + 1, (long long)step + 1, loss);
    amuse_model_zero_grad(m);
    if (nb > 0 && (rc = amuse_model_backward(m)))
        return rc;
    if (ranks > 1) {
        float scale = sums[STEP_WEIGHT] > 0 ? (float)(weight / sums[STEP_WEIGHT]) : 0.0f;
        for (int64_t i = 0; i < m->n_trainable; i++)
            m->grads[i] *= scale;
        if ((rc = am__mpi_allreduce_sum_float(m->grads, m->n_trainable)))
            return rc;
    }
    if (ranks == 1) /* keep the one-rank figures exactly as before: the batch's own mean */
        sums[STEP_LOSS] = (double)l;
    else
        sums[STEP_LOSS] = loss;
    return amuse_model_step(m);
}

/* ReduceLROnPlateau at the end of an epoch, Keras's on_epoch_end: in cooldown, count it down and
 * do not wait; an improvement resets the wait; otherwise, out of cooldown, `patience` epochs
 * without one multiply the constant rate by factor (not below min_lr) and start the cooldown. */
static void plateau_epoch_end(struct amuse_model *m, const struct amuse_fit_options *opt,
                              struct am__fit_state *st, double v, int maximize, int epoch,
                              int verbose, FILE *out)
{
    if (st->plateau_cooldown > 0) {
        st->plateau_cooldown--;
        st->plateau_wait = 0;
    }
    int improved = maximize ? v > st->plateau_best + opt->plateau_min_delta
                            : v < st->plateau_best - opt->plateau_min_delta;
    if (improved) {
        st->plateau_best = v;
        st->plateau_wait = 0;
        return;
    }
    if (st->plateau_cooldown > 0 || ++st->plateau_wait < opt->plateau_patience)
        return;
    float old = m->opt.learning_rate;
    if (old > (float)opt->plateau_min_lr) {
        double lr = (double)old * opt->plateau_factor;
        m->opt.learning_rate = (float)(lr > opt->plateau_min_lr ? lr : opt->plateau_min_lr);
        if (verbose)
            fprintf(out, "Epoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch + 1,
                    (double)m->opt.learning_rate);
        st->plateau_cooldown = opt->plateau_cooldown;
        st->plateau_wait = 0;
    }
}

/* Without validation data a val_ figure falls back to the training one. */
static const char *effective_monitor(const char *monitor, int64_t n_val)
{
    if (!monitor)
        monitor = "val_loss";
    return n_val == 0 && strncmp(monitor, "val_", 4) == 0 ? monitor + 4 : monitor;
}

int amuse_model_fit(struct amuse_model *m, const struct amuse_dataset *d,
                    const struct amuse_fit_options *opt, struct amuse_epoch_log *history,
                    int *epochs_run)
{
    int rc = check_dataset(m, d);
    *epochs_run = 0;
    if (rc)
        return rc;
    if (m->loss == AM__LOSS_NONE)
        return am__fail(AMUSE_EINVAL, "model '%s' has no loss: add a 'compile' section", m->name);
    if (opt->batch_size < 1 || opt->epochs < 1)
        return am__fail(AMUSE_EINVAL, "batch_size and epochs must be at least 1");
    int plateau = opt->plateau_factor > 0;
    if (plateau && !(opt->plateau_factor < 1))
        return am__fail(AMUSE_EINVAL, "ReduceLROnPlateau's factor must be in (0, 1)");
    if (plateau && m->opt.schedule.kind != AM__SCHEDULE_NONE)
        return am__fail(AMUSE_EINVAL,
                        "ReduceLROnPlateau needs a constant learning rate, but the optimizer's "
                        "learning_rate is a %s schedule (use one or the other)",
                        am__schedule_name(&m->opt.schedule));
    int64_t n_train = (int64_t)floor((double)d->n * (1.0 - opt->validation_split));
    int64_t n_val = d->n - n_train;
    if (n_train < 1)
        return am__fail(AMUSE_EINVAL, "no training samples left after validation_split %g",
                        opt->validation_split);
    const char *monitor = effective_monitor(opt->monitor, n_val);
    int maximize = strstr(monitor, "accuracy") != NULL;
    const char *plateau_monitor = effective_monitor(opt->plateau_monitor, n_val);
    int plateau_maximize = strstr(plateau_monitor, "accuracy") != NULL;
    /* Data-parallel under MPI: batch_size per rank, so a global batch is ranks * batch_size. */
    int ranks = am__mpi_size(), rank = am__mpi_rank();
    int verbose = opt->verbose && rank == 0;
    int show_lr = plateau || m->opt.schedule.kind != AM__SCHEDULE_NONE;
    int64_t global_batch = (int64_t)opt->batch_size * ranks;

    int64_t *idx = malloc((size_t)(d->n ? d->n : 1) * sizeof *idx);
    float *best_weights = opt->restore_best_weights
                              ? am__calloc_aligned((size_t)m->n_params + 1, sizeof(float))
                              : NULL;
    struct batch_buffers b;
    memset(&b, 0, sizeof b);
    if (!idx || (opt->restore_best_weights && !best_weights)) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < d->n; i++)
        idx[i] = i;
    /* Everything a resumed run continues from, beside the model's own blocks. */
    struct am__fit_state st;
    memset(&st, 0, sizeof st);
    st.train_samples = n_train;
    st.seed = opt->seed;
    st.monitor = monitor;
    st.best = maximize ? -INFINITY : INFINITY;
    st.plateau_best = plateau_maximize ? -INFINITY : INFINITY;
    st.plateau = plateau;
    st.best_weights = best_weights;
    amuse_rng_seed(&st.shuffle, opt->seed ^ 0x73687566666c65ULL);
    int first = 0;
    if (opt->resume_dir) {
        struct am__fit_state want = st;
        if ((rc = am__train_state_load(m, opt->resume_dir, &want, opt->epochs, idx,
                                       opt->shuffle, &st, history)))
            goto out;
        first = *epochs_run = st.epoch;
        if (verbose)
            fprintf(opt->progress ? opt->progress : stdout,
                    "Resuming from %s/%s: %d epochs done, %lld optimizer steps\n",
                    opt->resume_dir, AMUSE_TRAINING_STATE_FILE, first,
                    (long long)m->opt.iterations);
    }
    if ((rc = batch_alloc(&b, d, opt->batch_size)))
        goto out;
    /* Every rank starts from rank 0's weights, whatever initialised them. */
    if (ranks > 1 &&
        (rc = am__mpi_bcast(m->params, (size_t)m->n_params * sizeof(float), 0)))
        goto out;
    struct am__progress bar;
    FILE *out = opt->progress ? opt->progress : stdout;
    int64_t steps = (n_train + global_batch - 1) / global_batch;

    for (int epoch = first; epoch < opt->epochs; epoch++) {
        struct amuse_epoch_log *e = &history[epoch];
        memset(e, 0, sizeof *e);
        e->epoch = epoch + 1;
        if (opt->shuffle)
            amuse_rng_shuffle(&st.shuffle, idx, n_train);
        if (verbose)
            am__progress_begin(&bar, out, epoch + 1, opt->epochs, steps);
        double total = 0, t0 = am__now();
        int64_t correct = 0, counted = 0, seen = 0;
        for (int64_t s = 0; s < steps; s++) {
            int64_t at = s * global_batch;
            int64_t nb = n_train - at < global_batch ? n_train - at : global_batch;
            double sums[STEP_SUMS];
            if ((rc = train_step(m, d, idx, at, nb, epoch, s, &b, sums)))
                goto out;
            correct += (int64_t)sums[STEP_CORRECT];
            counted += (int64_t)sums[STEP_COUNTED];
            total += sums[STEP_LOSS] * (double)nb;
            seen += nb;
            if (verbose)
                am__progress_step(&bar, s + 1, total / seen,
                                  m->metric_accuracy && counted ? (double)correct / counted
                                                                : NAN);
        }
        if ((rc = average_state(m, ranks)))
            goto out;
        e->train_seconds = am__now() - t0;
        e->train_samples = seen;
        e->loss = total / (double)seen;
        e->accuracy = counted ? (double)correct / (double)counted : NAN;
        e->val_loss = e->val_accuracy = NAN;
        e->learning_rate = amuse_model_learning_rate(m);
        if (n_val > 0) {
            double t1 = am__now(), sums[EVAL_SUMS];
            /* Validation indices are the untouched tail: idx is only shuffled below n_train.
             * Each rank evaluates its share; the sums are added before dividing. */
            int64_t lo = am__mpi_share(n_val, rank, ranks);
            int64_t hi = am__mpi_share(n_val, rank + 1, ranks);
            if ((rc = run_eval(m, d, idx + n_train + lo, hi - lo, opt->batch_size, &e->val_loss,
                               &e->val_accuracy, NULL, NULL, sums)))
                goto out;
            if (ranks > 1) {
                if ((rc = am__mpi_allreduce_sum_double(sums, EVAL_SUMS)))
                    goto out;
                e->val_loss = sums[EVAL_LOSS_SUM] / sums[EVAL_SAMPLES];
                e->val_accuracy =
                    sums[EVAL_COUNTED] > 0 ? sums[EVAL_CORRECT] / sums[EVAL_COUNTED] : NAN;
            }
            e->val_seconds = am__now() - t1;
        }
        *epochs_run = epoch + 1;
        if (verbose)
            am__progress_end(&bar, e, m->metric_accuracy, show_lr ? e->learning_rate : NAN);

        double v = monitored(e, monitor);
        int improved = maximize ? v > st.best + opt->min_delta : v < st.best - opt->min_delta;
        int stop = 0;
        if (improved) {
            st.best = v;
            st.wait = 0;
            if (best_weights)
                memcpy(best_weights, m->params, (size_t)m->n_params * sizeof(float));
        } else if (opt->patience >= 0 && ++st.wait >= (opt->patience > 0 ? opt->patience : 1)) {
            stop = 1; /* Keras: stop once `patience` epochs in a row failed to improve */
        }
        if (plateau)
            plateau_epoch_end(m, opt, &st, monitored(e, plateau_monitor), plateau_maximize,
                              epoch, verbose, out);
        st.epoch = epoch + 1;
        /* Rank 0 alone writes files; the others hold the same weights. The state beside a
         * checkpoint lets a run resume from its best epoch. */
        if (improved && opt->checkpoint_dir && rank == 0 &&
            ((rc = amuse_model_save(m, opt->checkpoint_dir)) ||
             (rc = am__train_state_save(m, opt->checkpoint_dir, &st, history))))
            goto out;
        if (stop) {
            if (verbose)
                fprintf(out, "Epoch %d: early stopping (%s did not improve for %d epochs)\n",
                        epoch + 1, monitor, st.wait);
            break;
        }
    }
    /* The state of the last epoch, before restore_best_weights replaces the weights. */
    if (opt->state_dir && rank == 0 && (rc = am__train_state_save(m, opt->state_dir, &st, history)))
        goto out;
    if (best_weights && isfinite(st.best)) {
        memcpy(m->params, best_weights, (size_t)m->n_params * sizeof(float));
        if (verbose)
            fprintf(out, "Restoring model weights from the end of the best epoch (%s %.4f).\n",
                    monitor, st.best);
    }
out:
    batch_release(&b);
    am__free(best_weights);
    free(idx);
    return rc;
}

/* ---------------------------------------------------------------- evaluate / predict */

int amuse_model_evaluate(struct amuse_model *m, const struct amuse_dataset *d, int batch_size,
                         struct amuse_eval_result *res)
{
    memset(res, 0, sizeof *res);
    int rc = check_dataset(m, d);
    if (rc)
        return rc;
    if (batch_size < 1)
        batch_size = 32;
    int64_t classes = class_count(m);
    int64_t *idx = malloc((size_t)(d->n ? d->n : 1) * sizeof *idx);
    res->class_count = calloc((size_t)classes, sizeof *res->class_count);
    int64_t *ok = calloc((size_t)classes, sizeof *ok);
    res->class_accuracy = calloc((size_t)classes, sizeof *res->class_accuracy);
    if (!idx || !res->class_count || !ok || !res->class_accuracy) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    res->n_classes = (int)classes;
    for (int64_t i = 0; i < d->n; i++)
        idx[i] = i;
    double t0 = am__now();
    double sums[EVAL_SUMS];
    rc = run_eval(m, d, idx, d->n, batch_size, &res->loss, &res->accuracy, res->class_count, ok,
                  sums);
    res->seconds = am__now() - t0;
    res->samples = d->n;
    for (int64_t c = 0; c < classes; c++)
        res->class_accuracy[c] = res->class_count[c] ? (double)ok[c] / res->class_count[c] : NAN;
out:
    free(idx);
    free(ok);
    if (rc)
        amuse_eval_result_release(res);
    return rc;
}

void amuse_eval_result_release(struct amuse_eval_result *res)
{
    if (!res)
        return;
    free(res->class_accuracy);
    free(res->class_count);
    res->class_accuracy = NULL;
    res->class_count = NULL;
}

int amuse_model_predict(struct amuse_model *m, const float *x, int64_t n, int batch_size,
                        float *out)
{
    if (m->n_inputs != 1)
        return am__fail(AMUSE_EUNSUPPORTED, "model '%s' has %d inputs; use "
                        "amuse_model_predict_batch", m->name, m->n_inputs);
    struct amuse_batch all;
    memset(&all, 0, sizeof all);
    all.n = n;
    all.n_inputs = 1;
    all.input[0].dtype = AMUSE_FLOAT32;
    all.input[0].shape = *amuse_model_input_shape(m);
    all.input[0].f32 = (float *)x;
    return amuse_model_predict_batch(m, &all, batch_size, out);
}

int amuse_model_predict_batch(struct amuse_model *m, const struct amuse_batch *inputs,
                              int batch_size, float *out)
{
    if (batch_size < 1)
        batch_size = 32;
    int64_t n = inputs->n;
    int64_t size = amuse_shape_size(amuse_model_output_shape(m));
    for (int64_t at = 0; at < n; at += batch_size) {
        struct amuse_batch b = *inputs;
        b.n = n - at < batch_size ? n - at : batch_size;
        for (int k = 0; k < b.n_inputs && k < AMUSE_MAX_INPUTS; k++) {
            int64_t per = amuse_array_sample_size(&b.input[k]);
            if (b.input[k].dtype == AMUSE_INT32)
                b.input[k].i32 = inputs->input[k].i32 ? inputs->input[k].i32 + at * per : NULL;
            else
                b.input[k].f32 = inputs->input[k].f32 ? inputs->input[k].f32 + at * per : NULL;
        }
        const float *p;
        int rc = amuse_model_forward_batch(m, &b, 0, &p);
        if (rc)
            return rc;
        memcpy(out + at * size, p, (size_t)(b.n * size) * sizeof(float));
    }
    return AMUSE_OK;
}
