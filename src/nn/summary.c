/* summary.c - model.summary() as Keras prints it: layer (type), output shape, parameter count,
 * then the totals. The widths match Keras 2 so the table reads the same. */
#include "nn/model_internal.h"

#include <string.h>

static void rule(FILE *out, char c)
{
    for (int i = 0; i < 65; i++)
        fputc(c, out);
    fputc('\n', out);
}

static void with_commas(int64_t v, char *buf, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), at = 0;
    for (int i = 0; i < n && at + 2 < (int)len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = '\0';
}

void amuse_model_summary(const struct amuse_model *m, FILE *out)
{
    fprintf(out, "Model: \"%s\"\n", m->name);
    rule(out, '_');
    fprintf(out, " %-27s %-25s %-9s\n", "Layer (type)", "Output Shape", "Param #");
    rule(out, '=');
    for (int i = 0; i < m->n_layers; i++) {
        const struct am__layer *l = &m->layers[i];
        char name[160], shape[400];
        int64_t params = 0;
        for (int k = 0; k < l->n_weights; k++)
            params += amuse_shape_size(&l->w[k].shape);
        snprintf(name, sizeof name, "%s (%s)", l->name, l->type->class_name);
        if (l->type == &am__input_layer) {
            if (m->sequential)
                continue; /* Keras lists no input row for a Sequential model */
            char inner[80];
            snprintf(shape, sizeof shape, "[%s]",
                     amuse_shape_format(&l->out_shape[0], 1, inner, sizeof inner));
        } else if (l->n_outputs > 1) {
            /* Keras lists every output of a multi-output layer (LSTM with return_state). */
            size_t at = 0;
            shape[at++] = '[';
            for (int k = 0; k < l->n_outputs && at < sizeof shape - 100; k++) {
                char inner[96];
                at +=
                    (size_t)snprintf(shape + at, sizeof shape - at, "%s%s", k ? ", " : "",
                                     amuse_shape_format(&l->out_shape[k], 1, inner, sizeof inner));
            }
            snprintf(shape + at, sizeof shape - at, "]");
        } else {
            amuse_shape_format(&l->out_shape[0], 1, shape, sizeof shape);
        }
        fprintf(out, " %-27s %-25s %-9lld\n", name, shape, (long long)params);
        if (i + 1 < m->n_layers)
            fputc('\n', out);
    }
    rule(out, '=');
    char total[32], trainable[32], frozen[32];
    with_commas(m->n_params, total, sizeof total);
    with_commas(m->n_trainable, trainable, sizeof trainable);
    with_commas(m->n_params - m->n_trainable, frozen, sizeof frozen);
    fprintf(out, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", total,
            trainable, frozen);
    rule(out, '_');
}
