/* fit.c - Keras's fit / evaluate / predict loops over an in-memory dataset.
 *
 * fit: validation_split holds out the LAST fraction before any shuffling; the training part is
 * reshuffled every epoch from the seed; EarlyStopping and best-epoch checkpoints follow Keras's
 * callbacks. The progress bar lives in progress.c, the curves in history.c. */
#define _POSIX_C_SOURCE 200809L
#include "nn/model_internal.h"

#include "core/internal.h"
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
        if (!cJSON_IsString(cls))
            return am__fail(AMUSE_EFORMAT, "fit.callbacks[%d]: missing string 'class_name'", i);
        const cJSON *monitor = cJSON_GetObjectItemCaseSensitive(cfg, "monitor");
        if (monitor) {
            static const char *const ok[] = {"val_loss", "val_accuracy", "loss", "accuracy"};
            int found = 0;
            for (int k = 0; k < 4; k++)
                if (cJSON_IsString(monitor) && strcmp(monitor->valuestring, ok[k]) == 0) {
                    opt->monitor = ok[k];
                    found = 1;
                }
            if (!found)
                return am__fail(AMUSE_EFORMAT,
                                "fit.callbacks[%d].config.monitor must be val_loss, val_accuracy, "
                                "loss or accuracy",
                                i);
        }
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
                            "ModelCheckpoint)",
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

/* ---------------------------------------------------------------- batches */

struct batch_buffers {
    float *x;
    int32_t *labels;
};

static int batch_alloc(struct batch_buffers *b, int64_t batch, int64_t sample)
{
    b->x = am__calloc_aligned((size_t)(batch * sample), sizeof(float));
    b->labels = malloc((size_t)batch * sizeof(int32_t));
    if (!b->x || !b->labels)
        return am__fail(AMUSE_ENOMEM, "cannot allocate a batch of %lld", (long long)batch);
    return AMUSE_OK;
}

static void batch_release(struct batch_buffers *b)
{
    am__free(b->x);
    free(b->labels);
}

static void gather(const struct amuse_dataset *d, const int64_t *idx, int64_t n, int64_t sample,
                   struct batch_buffers *b)
{
#pragma omp parallel for schedule(static) if (n * sample > 65536)
    for (int64_t i = 0; i < n; i++)
        memcpy(b->x + i * sample, d->x + idx[i] * sample, (size_t)sample * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        b->labels[i] = d->labels[idx[i]];
}

static int check_dataset(const struct amuse_model *m, const struct amuse_dataset *d)
{
    if (m->n_inputs != 1)
        return am__fail(AMUSE_EUNSUPPORTED,
                        "model '%s' has %d inputs; fit, evaluate and predict take one-input "
                        "models (train it step by step with amuse_model_forward_inputs)",
                        m->name, m->n_inputs);
    if (!amuse_shape_equal(&d->sample, amuse_model_input_shape(m))) {
        char a[96], b[96];
        return am__fail(AMUSE_ESHAPE, "data samples are %s but model '%s' takes %s",
                        amuse_shape_format(&d->sample, 0, a, sizeof a), m->name,
                        amuse_shape_format(amuse_model_input_shape(m), 0, b, sizeof b));
    }
    if (!d->labels)
        return am__fail(AMUSE_EINVAL, "the dataset has no labels");
    int64_t classes = m->loss == AM__LOSS_BINARY_CROSSENTROPY
                          ? 2 /* labels are the 0/1 target of every output */
                          : amuse_shape_size(amuse_model_output_shape(m));
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= classes)
            return am__fail(AMUSE_EINVAL, "sample %lld has label %d; the model has %lld classes",
                            (long long)i, d->labels[i], (long long)classes);
    return AMUSE_OK;
}

/* Class count for per-class figures: a one-output binary model has classes 0 and 1. */
static int64_t class_count(const struct amuse_model *m)
{
    int64_t width = amuse_shape_size(amuse_model_output_shape(m));
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

/* Loss and accuracy over samples idx[0..n) without training. */
static int run_eval(struct amuse_model *m, const struct amuse_dataset *d, const int64_t *idx,
                    int64_t n, int batch_size, double *loss, double *accuracy, int64_t *per_class,
                    int64_t *per_class_ok)
{
    int64_t sample = amuse_shape_size(&d->sample);
    int64_t width = amuse_shape_size(amuse_model_output_shape(m));
    struct batch_buffers b;
    int rc = batch_alloc(&b, batch_size, sample);
    double total = 0;
    int64_t correct = 0;
    enum am__loss saved = m->loss;
    if (m->loss == AM__LOSS_NONE)
        m->loss = AM__LOSS_CATEGORICAL_CROSSENTROPY;
    for (int64_t at = 0; rc == AMUSE_OK && at < n; at += batch_size) {
        int64_t nb = n - at < batch_size ? n - at : batch_size;
        const float *p;
        float l;
        gather(d, idx + at, nb, sample, &b);
        if ((rc = amuse_model_forward(m, b.x, nb, 0, &p)) ||
            (rc = amuse_model_loss(m, NULL, b.labels, &l)))
            break;
        total += (double)l * nb;
        correct += am__count_correct(m, p, NULL, b.labels, nb, width);
        if (per_class)
            for (int64_t i = 0; i < nb; i++) {
                int64_t best = predicted_class(m, p + i * width, width);
                per_class[b.labels[i]]++;
                per_class_ok[b.labels[i]] += best == b.labels[i];
            }
    }
    m->loss = saved;
    batch_release(&b);
    *loss = n ? total / (double)n : NAN;
    *accuracy = n ? (double)correct / (double)n : NAN;
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
    int64_t n_train = (int64_t)floor((double)d->n * (1.0 - opt->validation_split));
    int64_t n_val = d->n - n_train;
    if (n_train < 1)
        return am__fail(AMUSE_EINVAL, "no training samples left after validation_split %g",
                        opt->validation_split);
    const char *monitor = opt->monitor ? opt->monitor : "val_loss";
    if (n_val == 0 && strncmp(monitor, "val_", 4) == 0)
        monitor = monitor + 4; /* no validation data: fall back to the training figure */
    int maximize = strstr(monitor, "accuracy") != NULL;

    int64_t sample = amuse_shape_size(&d->sample);
    int64_t width = amuse_shape_size(amuse_model_output_shape(m));
    int64_t *idx = malloc((size_t)d->n * sizeof *idx);
    float *best_weights = opt->restore_best_weights
                              ? am__calloc_aligned((size_t)m->n_params + 1, sizeof(float))
                              : NULL;
    struct batch_buffers b = {0};
    if (!idx || (opt->restore_best_weights && !best_weights)) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = batch_alloc(&b, opt->batch_size, sample)))
        goto out;
    for (int64_t i = 0; i < d->n; i++)
        idx[i] = i;
    struct amuse_rng rng;
    amuse_rng_seed(&rng, opt->seed ^ 0x73687566666c65ULL);
    struct am__progress bar;
    FILE *out = opt->progress ? opt->progress : stdout;
    double best = maximize ? -INFINITY : INFINITY;
    int wait = 0;
    int64_t steps = (n_train + opt->batch_size - 1) / opt->batch_size;

    for (int epoch = 0; epoch < opt->epochs; epoch++) {
        struct amuse_epoch_log *e = &history[epoch];
        memset(e, 0, sizeof *e);
        e->epoch = epoch + 1;
        if (opt->shuffle)
            amuse_rng_shuffle(&rng, idx, n_train);
        if (opt->verbose)
            am__progress_begin(&bar, out, epoch + 1, opt->epochs, steps);
        double total = 0, t0 = am__now();
        int64_t correct = 0, seen = 0;
        for (int64_t s = 0; s < steps; s++) {
            int64_t at = s * opt->batch_size;
            int64_t nb = n_train - at < opt->batch_size ? n_train - at : opt->batch_size;
            const float *p;
            float l;
            gather(d, idx + at, nb, sample, &b);
            if ((rc = amuse_model_forward(m, b.x, nb, 1, &p)) ||
                (rc = amuse_model_loss(m, NULL, b.labels, &l)))
                goto out;
            if (!isfinite(l)) {
                rc = am__fail(AMUSE_EINVAL,
                              "epoch %d, step %lld: the loss is %g; lower the learning rate",
                              epoch + 1, (long long)s + 1, (double)l);
                goto out;
            }
            correct += am__count_correct(m, p, NULL, b.labels, nb, width);
            amuse_model_zero_grad(m);
            if ((rc = amuse_model_backward(m)) || (rc = amuse_model_step(m)))
                goto out;
            total += (double)l * nb;
            seen += nb;
            if (opt->verbose)
                am__progress_step(&bar, s + 1, total / seen,
                                  m->metric_accuracy ? (double)correct / seen : NAN);
        }
        e->train_seconds = am__now() - t0;
        e->train_samples = seen;
        e->loss = total / (double)seen;
        e->accuracy = (double)correct / (double)seen;
        e->val_loss = e->val_accuracy = NAN;
        if (n_val > 0) {
            double t1 = am__now();
            /* Validation indices are the untouched tail: idx is only shuffled below n_train. */
            if ((rc = run_eval(m, d, idx + n_train, n_val, opt->batch_size, &e->val_loss,
                               &e->val_accuracy, NULL, NULL)))
                goto out;
            e->val_seconds = am__now() - t1;
        }
        *epochs_run = epoch + 1;
        if (opt->verbose)
            am__progress_end(&bar, e, m->metric_accuracy);

        double v = monitored(e, monitor);
        int improved = maximize ? v > best + opt->min_delta : v < best - opt->min_delta;
        if (improved) {
            best = v;
            wait = 0;
            if (best_weights)
                memcpy(best_weights, m->params, (size_t)m->n_params * sizeof(float));
            if (opt->checkpoint_dir && (rc = amuse_model_save(m, opt->checkpoint_dir)))
                goto out;
        } else if (opt->patience >= 0 && ++wait >= (opt->patience > 0 ? opt->patience : 1)) {
            /* Keras: stop once `patience` epochs in a row failed to improve. */
            if (opt->verbose)
                fprintf(out, "Epoch %d: early stopping (%s did not improve for %d epochs)\n",
                        epoch + 1, monitor, wait);
            break;
        }
    }
    if (best_weights && isfinite(best)) {
        memcpy(m->params, best_weights, (size_t)m->n_params * sizeof(float));
        if (opt->verbose)
            fprintf(out, "Restoring model weights from the end of the best epoch (%s %.4f).\n",
                    monitor, best);
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
    rc = run_eval(m, d, idx, d->n, batch_size, &res->loss, &res->accuracy, res->class_count, ok);
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
                        "amuse_model_forward_inputs", m->name, m->n_inputs);
    if (batch_size < 1)
        batch_size = 32;
    int64_t sample = amuse_shape_size(amuse_model_input_shape(m));
    int64_t width = amuse_shape_size(amuse_model_output_shape(m));
    for (int64_t at = 0; at < n; at += batch_size) {
        int64_t nb = n - at < batch_size ? n - at : batch_size;
        const float *p;
        int rc = amuse_model_forward(m, x + at * sample, nb, 0, &p);
        if (rc)
            return rc;
        memcpy(out + at * width, p, (size_t)(nb * width) * sizeof(float));
    }
    return AMUSE_OK;
}
