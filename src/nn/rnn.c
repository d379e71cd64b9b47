/* rnn.c - LSTM and GRU with Keras's semantics and weight layouts.
 *
 * LSTM: kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u), gate order i, f, c, o.
 * GRU (reset_after=True, Keras's default): kernel (in, 3u), recurrent_kernel (u, 3u),
 * bias (2, 3u) = [input bias; recurrent bias], gate order z, r, h:
 *   z = sigma(x Wz + bz + h Rz + rz), r = sigma(x Wr + br + h Rr + rr),
 *   n = tanh(x Wh + bh + r * (h Rh + rh)), h' = z * h + (1 - z) * n.
 * Inputs: the sequence (T, in), then optionally the initial states (h, and c for the LSTM) from
 * other nodes. Outputs: the sequence (T, u) or the last output (u), then with return_state the
 * final states (h, and c). Masking: where input 0 carries a step mask, a padded step carries
 * h (and c) through unchanged and outputs the carried h (Keras's default, not zeros).
 * go_backwards reads the input from the end and returns the outputs in that processing order.
 * dropout / recurrent_dropout draw one mask per sample for the whole sequence (Keras's
 * implementation 2). stateful: the final states of each batch row are kept and start the next
 * call (amuse_model_reset_states / _state_get / _state_set in model.h).
 *
 * Speed: the input projection of all steps is one GEMM (B*T rows); each step is one GEMM of the
 * whole batch against the recurrent kernel, accumulated straight into that step's rows of the
 * projection; the gate nonlinearities and the state update are one fused pass. Backward keeps
 * the per-step work to one GEMM too and does the kernel gradients as single GEMMs over all
 * steps. tests/test_rnn.c checks every kernel against a naive per-sample reference.
 * Not supported: unroll, time_major, implementation 1, reset_after=False, variable-length T. */
#include "nn/layer.h"

#include "core/blas.h"
#include "core/internal.h"
#include "nn/vexp.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum rnn_kind { RNN_LSTM, RNN_GRU };

/* LSTM's and GRU's settings (l->cfg), and the state kept between calls when stateful. */
struct rnn_config {
    enum rnn_kind kind;
    int units, use_bias, unit_forget_bias, return_sequences, return_state, go_backwards;
    int stateful;
    float dropout, recurrent_dropout;
    enum am__activation activation, recurrent_activation;
    struct am__init kernel_init, recurrent_init, bias_init;
    float *state; /* stateful: state_rows rows of n_states * units floats */
    int64_t state_rows;
};

static int n_gates(const struct rnn_config *r)
{
    return r->kind == RNN_LSTM ? 4 : 3;
}

static int n_states(const struct rnn_config *r)
{
    return r->kind == RNN_LSTM ? 2 : 1;
}

static int rnn_configure_kind(struct am__layer *l, const cJSON *cfg, enum rnn_kind kind)
{
    struct rnn_config *r = l->cfg;
    r->kind = kind;
    r->use_bias = 1;
    r->unit_forget_bias = kind == RNN_LSTM;
    r->activation = AM__ACT_TANH;
    r->recurrent_activation = AM__ACT_SIGMOID;
    r->kernel_init = (struct am__init){AM__INIT_GLOROT_UNIFORM, 0, 0};
    r->recurrent_init = (struct am__init){AM__INIT_ORTHOGONAL, 1.0f, 0};
    r->bias_init = (struct am__init){AM__INIT_ZEROS, 0, 0};
    int rc, reset_after = 1, unroll = 0, time_major = 0, implementation = 2;
    if ((rc = am__cfg_int(l, cfg, "units", 1, 1, 1 << 16, &r->units)) ||
        (rc = am__cfg_activation(l, cfg, "activation", &r->activation)) ||
        (rc = am__cfg_activation(l, cfg, "recurrent_activation", &r->recurrent_activation)) ||
        (rc = am__cfg_bool(l, cfg, "use_bias", &r->use_bias)) ||
        (rc = am__cfg_bool(l, cfg, "return_sequences", &r->return_sequences)) ||
        (rc = am__cfg_bool(l, cfg, "return_state", &r->return_state)) ||
        (rc = am__cfg_bool(l, cfg, "go_backwards", &r->go_backwards)) ||
        (rc = am__cfg_bool(l, cfg, "stateful", &r->stateful)) ||
        (rc = am__cfg_bool(l, cfg, "unroll", &unroll)) ||
        (rc = am__cfg_bool(l, cfg, "time_major", &time_major)) ||
        (rc = am__cfg_int(l, cfg, "implementation", 0, 1, 2, &implementation)) ||
        (rc = am__cfg_float(l, cfg, "dropout", 0.0, 0.999, &r->dropout)) ||
        (rc = am__cfg_float(l, cfg, "recurrent_dropout", 0.0, 0.999, &r->recurrent_dropout)) ||
        (rc = am__cfg_initializer(l, cfg, "kernel_initializer", &r->kernel_init)) ||
        (rc = am__cfg_initializer(l, cfg, "recurrent_initializer", &r->recurrent_init)) ||
        (rc = am__cfg_initializer(l, cfg, "bias_initializer", &r->bias_init)))
        return rc;
    if (kind == RNN_LSTM && (rc = am__cfg_bool(l, cfg, "unit_forget_bias", &r->unit_forget_bias)))
        return rc;
    if (kind == RNN_GRU && (rc = am__cfg_bool(l, cfg, "reset_after", &reset_after)))
        return rc;
    if (!reset_after)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "reset_after=false is not supported");
    if (time_major)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "time_major=true is not supported");
    if (r->activation == AM__ACT_SOFTMAX || r->recurrent_activation == AM__ACT_SOFTMAX)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "softmax cannot be a cell activation");
    (void)unroll; /* unrolling is a graph-building choice; the math is the same */
    /* Known before build: the graph's references to the state outputs are checked against it. */
    l->n_outputs = 1 + (r->return_state ? n_states(r) : 0);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, "seed");
    amuse_rng_seed(&l->rng, (cJSON_IsNumber(s) ? (uint64_t)s->valuedouble : 0) ^ 0x726e6eULL);
    return AMUSE_OK;
}

static int lstm_configure(struct am__layer *l, const cJSON *cfg)
{
    return rnn_configure_kind(l, cfg, RNN_LSTM);
}

static int gru_configure(struct am__layer *l, const cJSON *cfg)
{
    return rnn_configure_kind(l, cfg, RNN_GRU);
}

static int rnn_build(struct am__layer *l)
{
    struct rnn_config *r = l->cfg;
    const struct amuse_shape *in = &l->in_shape[0];
    int64_t u = r->units, g = n_gates(r) * u;
    if (in->ndim != 2)
        return am__layer_fail(l, AMUSE_ESHAPE, "input must be (timesteps, features), got %d axes",
                              in->ndim);
    if (l->in_dtype[0] != AMUSE_FLOAT32)
        return am__layer_fail(l, AMUSE_ESHAPE, "input must be float (put an Embedding first)");
    if (l->n_inputs != 1 && l->n_inputs != 1 + n_states(r))
        return am__layer_fail(l, AMUSE_ESHAPE,
                              "takes the sequence and %s initial state%s, got %d "
                              "inputs",
                              r->kind == RNN_LSTM ? "2" : "1",
                              r->kind == RNN_LSTM ? "s [h, c]" : " [h]", l->n_inputs);
    if (l->n_inputs > 1 && r->stateful)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED, "a stateful layer takes no initial_state");
    for (int k = 1; k < l->n_inputs; k++)
        if (l->in_shape[k].ndim != 1 || l->in_shape[k].dim[0] != u)
            return am__layer_fail(l, AMUSE_ESHAPE, "initial state %d must be (%lld,)", k - 1,
                                  (long long)u);
    int64_t in_dim = in->dim[1], t = in->dim[0];
    int64_t seq[2] = {t, u};
    if (r->return_sequences)
        amuse_shape_make(&l->out_shape[0], 2, seq);
    else
        amuse_shape_make(&l->out_shape[0], 1, &u);
    l->n_outputs = 1;
    if (r->return_state)
        for (int k = 0; k < n_states(r); k++)
            amuse_shape_make(&l->out_shape[l->n_outputs++], 1, &u);
    l->passes_mask = r->return_sequences; /* Keras: the sequence output keeps the input's mask */
    int64_t kdims[2] = {in_dim, g}, rdims[2] = {u, g};
    am__layer_add_weight(l, "kernel", 2, kdims, r->kernel_init, in_dim, g);
    am__layer_add_weight(l, "recurrent_kernel", 2, rdims, r->recurrent_init, u, g);
    if (r->use_bias) {
        struct am__init bi = r->bias_init;
        if (r->kind == RNN_LSTM && r->unit_forget_bias && bi.kind == AM__INIT_ZEROS)
            bi = (struct am__init){AM__INIT_UNIT_FORGET, (float)u, 0};
        if (r->kind == RNN_GRU) {
            int64_t bdims[2] = {2, g};
            am__layer_add_weight(l, "bias", 2, bdims, bi, in_dim, g);
        } else {
            am__layer_add_weight(l, "bias", 1, &g, bi, in_dim, g);
        }
    }
    return AMUSE_OK;
}

static void rnn_release(struct am__layer *l)
{
    struct rnn_config *r = l->cfg;
    if (r) {
        free(r->state);
        r->state = NULL;
        r->state_rows = 0;
    }
}

/* ---------------------------------------------------------------- workspace layout */

struct rnn_work {
    float *xd;      /* B*T*I dropped inputs (dropout > 0), else NULL */
    float *dmask;   /* B*I input dropout mask */
    float *rmask;   /* B*U recurrent dropout mask */
    float *gates;   /* B*T*G: the input projection, then the activated gates */
    float *rec;     /* GRU: B*T*G recurrent projection h R + rb (its h part is needed) */
    float *cs;      /* LSTM: B*T*U cell states after each step */
    float *tcs;     /* LSTM: B*T*U activation(c) */
    float *hs;      /* B*T*U h after each step (processing order) */
    float *hprev;   /* B*T*U h_{s-1} as the recurrent GEMM used it (recurrent dropout applied) */
    float *h0, *c0; /* B*U initial states */
    float *dz;      /* backward: B*T*G gate gradients (input side) */
    float *dzr;     /* GRU backward: B*T*G recurrent-side gradients */
    float *dh, *dc, *dtmp; /* backward: B*U */
};

static size_t rnn_layout(const struct am__layer *l, int64_t b, struct rnn_work *w, float *base)
{
    const struct rnn_config *r = l->cfg;
    int64_t t = l->in_shape[0].dim[0], in = l->in_shape[0].dim[1], u = r->units;
    int64_t g = n_gates(r) * u;
    size_t at = 0;
#define TAKE(field, n)                                                                             \
    do {                                                                                           \
        if (w)                                                                                     \
            w->field = (n) > 0 ? base + at : NULL;                                                 \
        at += ((size_t)(n) + 15) & ~(size_t)15;                                                    \
    } while (0)
    TAKE(xd, r->dropout > 0 ? b * t * in : 0);
    TAKE(dmask, r->dropout > 0 ? b * in : 0);
    TAKE(rmask, r->recurrent_dropout > 0 ? b * u : 0);
    TAKE(gates, b * t * g);
    TAKE(rec, r->kind == RNN_GRU ? b * t * g : 0);
    TAKE(cs, r->kind == RNN_LSTM ? b * t * u : 0);
    TAKE(tcs, r->kind == RNN_LSTM ? b * t * u : 0);
    TAKE(hs, b * t * u);
    TAKE(hprev, b * t * u);
    TAKE(h0, b * u);
    TAKE(c0, b * u);
    TAKE(dz, b * t * g);
    TAKE(dzr, r->kind == RNN_GRU ? b * t * g : 0);
    TAKE(dh, b * u);
    TAKE(dc, b * u);
    TAKE(dtmp, b * u);
#undef TAKE
    return at;
}

static size_t rnn_workspace(const struct am__layer *l, int64_t batch)
{
    return rnn_layout(l, batch, NULL, NULL) * sizeof(float);
}

/* ---------------------------------------------------------------- elementwise helpers */

/* y = f(y) on n contiguous floats, one vectorisable loop per activation. tanh(x) is computed as
 * 2 sigmoid(2x) - 1 (absolute error about 1e-7). */
static void act_span(enum am__activation a, float *y, int64_t n)
{
    switch (a) {
    case AM__ACT_RELU:
        for (int64_t j = 0; j < n; j++)
            y[j] = y[j] > 0.0f ? y[j] : 0.0f;
        break;
    case AM__ACT_SIGMOID:
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] = 1.0f / (1.0f + am__vexp(-y[j]));
        break;
    case AM__ACT_TANH:
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] = 2.0f / (1.0f + am__vexp(-2.0f * y[j])) - 1.0f;
        break;
    default:
        break;
    }
}

/* f'(x) from y = f(x). */
static inline float dact(enum am__activation a, float y)
{
    switch (a) {
    case AM__ACT_RELU:
        return y > 0.0f ? 1.0f : 0.0f;
    case AM__ACT_SIGMOID:
        return y * (1.0f - y);
    case AM__ACT_TANH:
        return 1.0f - y * y;
    default:
        return 1.0f;
    }
}

/* The input time step processed at step s. */
static inline int64_t input_step(const struct rnn_config *r, int64_t s, int64_t t)
{
    return r->go_backwards ? t - 1 - s : s;
}

/* Reverse the order of the t rows (of `width` floats) of each of b samples, in place. */
static void reverse_steps(float *rows, int64_t b, int64_t t, int64_t width)
{
    for (int64_t i = 0; i < b; i++)
        for (int64_t s = 0; s < t / 2; s++) {
            float *p = rows + (i * t + s) * width, *q = rows + (i * t + t - 1 - s) * width;
            for (int64_t j = 0; j < width; j++) {
                float tmp = p[j];
                p[j] = q[j];
                q[j] = tmp;
            }
        }
}

/* How many row chunks the step loop runs in parallel: one per thread, at least one row each. */
static int row_chunks(int64_t b)
{
    int threads = omp_get_max_threads();
    return threads > 1 && b > 1 ? (int)(b < threads ? b : threads) : 1;
}

/* ---------------------------------------------------------------- forward
 * x (B, T, I) -> gates = x W + b (one GEMM); per step s: gates_s += h_{s-1} R (one GEMM), then
 * one fused pass: activations, c and h updates, masking. */

static void rnn_forward(struct am__layer *l, struct am__call *c)
{
    struct rnn_config *r = l->cfg;
    int64_t b = c->batch, t = l->in_shape[0].dim[0], in = l->in_shape[0].dim[1];
    int64_t u = r->units, g = n_gates(r) * u, ns = n_states(r);
    int lstm = r->kind == RNN_LSTM;
    struct rnn_work w;
    rnn_layout(l, b, &w, c->work);
    const struct am__weight *kw = am__layer_weight(l, "kernel");
    const struct am__weight *rw = am__layer_weight(l, "recurrent_kernel");
    const struct am__weight *bw = am__layer_weight(l, "bias");
    const float *mask = c->mask_in[0];
    int training = c->training;

    /* Dropout masks: one per sample for the whole sequence. */
    const float *x = c->in[0];
    if (w.xd && training) {
        float keep = 1.0f - r->dropout, scale = 1.0f / keep;
        for (int64_t i = 0; i < b * in; i++)
            w.dmask[i] = amuse_rng_uniform(&l->rng) < keep ? scale : 0.0f;
        for (int64_t bt = 0; bt < b * t; bt++)
            for (int64_t j = 0; j < in; j++)
                w.xd[bt * in + j] = x[bt * in + j] * w.dmask[(bt / t) * in + j];
        x = w.xd;
    }
    if (w.rmask) {
        float keep = 1.0f - r->recurrent_dropout, scale = 1.0f / keep;
        for (int64_t i = 0; i < b * u; i++)
            w.rmask[i] = !training ? 1.0f : amuse_rng_uniform(&l->rng) < keep ? scale : 0.0f;
    }

    /* Initial states: inputs, the kept state (stateful), or zeros. */
    if (r->stateful && r->state_rows < b) {
        float *grown = calloc((size_t)(b * ns * u), sizeof(float));
        if (grown) { /* on failure the layer runs from zero states */
            if (r->state)
                memcpy(grown, r->state, (size_t)(r->state_rows * ns * u) * sizeof(float));
            free(r->state);
            r->state = grown;
            r->state_rows = b;
        }
    }
    for (int64_t i = 0; i < b; i++) {
        for (int64_t j = 0; j < u; j++) {
            float h = 0, cc = 0;
            if (l->n_inputs > 1) {
                h = c->in[1][i * u + j];
                cc = lstm ? c->in[2][i * u + j] : 0;
            } else if (r->stateful && r->state_rows >= b) {
                h = r->state[(i * ns) * u + j];
                cc = lstm ? r->state[(i * ns + 1) * u + j] : 0;
            }
            w.h0[i * u + j] = h;
            w.c0[i * u + j] = cc;
        }
    }

    /* The input projection of every step: one GEMM, rows in (b, input step) order. The gates
     * buffer is indexed by processing step, so go_backwards maps rows when adding. */
    float *proj = w.gates;
    am__sgemm_rows(c->row_products, (int)(b * t), (int)g, (int)in, 1.0f, x, (int)in, kw->value,
                   (int)g, 0.0f, proj, (int)g);
    if (r->go_backwards) /* row (b, s) becomes processing step s */
        reverse_steps(proj, b, t, g);
    const float *bias_in = bw ? bw->value : NULL;
    const float *bias_rec = bw && !lstm ? bw->value + g : NULL;
    if (bias_in)
        for (int64_t row = 0; row < b * t; row++)
            for (int64_t j = 0; j < g; j++)
                proj[row * g + j] += bias_in[j];

    /* Batch rows are independent through time: each thread runs a chunk of rows through every
     * step (one parallel region per call, single-threaded BLAS inside it), so the steps do not
     * synchronise the threads 2 * T times. */
    int chunks = row_chunks(b);
#pragma omp parallel for num_threads(chunks) schedule(static) if (chunks > 1)
    for (int k = 0; k < chunks; k++) {
        int64_t b0 = b * k / chunks, b1 = b * (k + 1) / chunks, nb = b1 - b0;
        for (int64_t s = 0; s < t; s++) {
            int64_t ti = input_step(r, s, t);
            /* h_{s-1} as used (after recurrent dropout), kept for backward's kernel gradient. */
            float *hp = w.hprev; /* row (i, s) */
            for (int64_t i = b0; i < b1; i++) {
                const float *prev = s == 0 ? w.h0 + i * u : w.hs + (i * t + s - 1) * u;
                float *dst = hp + (i * t + s) * u;
                for (int64_t j = 0; j < u; j++)
                    dst[j] = prev[j] * (w.rmask ? w.rmask[i * u + j] : 1.0f);
            }
            if (lstm) {
                /* gates_s += h_{s-1} R, straight into this step's rows (leading dimension T*G). */
                am__sgemm_rows(c->row_products, (int)nb, (int)g, (int)u, 1.0f,
                               hp + (b0 * t + s) * u, (int)(t * u), rw->value, (int)g, 1.0f,
                               proj + (b0 * t + s) * g, (int)(t * g));
            } else {
                am__sgemm_rows(c->row_products, (int)nb, (int)g, (int)u, 1.0f,
                               hp + (b0 * t + s) * u, (int)(t * u), rw->value, (int)g, 0.0f,
                               w.rec + (b0 * t + s) * g, (int)(t * g));
            }
            for (int64_t i = b0; i < b1; i++) {
                float *z = proj + (i * t + s) * g;
                const float *hprev = s == 0 ? w.h0 + i * u : w.hs + (i * t + s - 1) * u;
                float *h = w.hs + (i * t + s) * u;
                int live = !mask || mask[i * t + ti] != 0.0f;
                if (lstm) {
                    const float *cprev = s == 0 ? w.c0 + i * u : w.cs + (i * t + s - 1) * u;
                    float *cs = w.cs + (i * t + s) * u, *tc = w.tcs + (i * t + s) * u;
                    /* Gate blocks are contiguous: i and f, then c, then o. */
                    act_span(r->recurrent_activation, z, 2 * u);
                    act_span(r->activation, z + 2 * u, u);
                    act_span(r->recurrent_activation, z + 3 * u, u);
                    if (live) {
                        for (int64_t j = 0; j < u; j++)
                            tc[j] = cs[j] = z[u + j] * cprev[j] + z[j] * z[2 * u + j];
                        act_span(r->activation, tc, u);
                        for (int64_t j = 0; j < u; j++)
                            h[j] = z[3 * u + j] * tc[j];
                    } else {
                        for (int64_t j = 0; j < u; j++) {
                            cs[j] = cprev[j];
                            tc[j] = 0;
                            h[j] = hprev[j];
                        }
                    }
                } else {
                    float *rec = w.rec + (i * t + s) * g;
                    if (bias_rec)
                        for (int64_t j = 0; j < g; j++)
                            rec[j] += bias_rec[j];
                    for (int64_t j = 0; j < 2 * u; j++)
                        z[j] += rec[j];
                    act_span(r->recurrent_activation, z, 2 * u); /* z and r */
                    for (int64_t j = 0; j < u; j++)
                        z[2 * u + j] += z[u + j] * rec[2 * u + j];
                    act_span(r->activation, z + 2 * u, u);
                    for (int64_t j = 0; j < u; j++)
                        h[j] = live ? z[j] * hprev[j] + (1.0f - z[j]) * z[2 * u + j] : hprev[j];
                }
            }
        }
    }

    /* Outputs: the sequence (processing order) or the last step, then the final states. */
    float *out = c->out[0];
    for (int64_t i = 0; i < b; i++) {
        if (r->return_sequences)
            memcpy(out + i * t * u, w.hs + i * t * u, (size_t)(t * u) * sizeof(float));
        else
            memcpy(out + i * u, w.hs + (i * t + t - 1) * u, (size_t)u * sizeof(float));
    }
    const float *h_last = NULL, *c_last = NULL;
    for (int64_t i = 0; i < b; i++) {
        h_last = w.hs + (i * t + t - 1) * u;
        c_last = lstm ? w.cs + (i * t + t - 1) * u : NULL;
        if (r->return_state) {
            memcpy(c->out[1] + i * u, h_last, (size_t)u * sizeof(float));
            if (lstm)
                memcpy(c->out[2] + i * u, c_last, (size_t)u * sizeof(float));
        }
        if (r->stateful && r->state_rows >= b) {
            memcpy(r->state + (i * ns) * u, h_last, (size_t)u * sizeof(float));
            if (lstm)
                memcpy(r->state + (i * ns + 1) * u, c_last, (size_t)u * sizeof(float));
        }
    }
}

/* ---------------------------------------------------------------- backward
 * Per step, from the last: dh = carried + d(output); the fused pass turns (dh, dc) into the
 * step's gate gradients dz and the carried dc; one GEMM dz R^T carries dh to the step before.
 * Then dW = x^T dz, dR = hprev^T dz and dx = dz W^T are single GEMMs over all B*T rows. */

static void rnn_backward(struct am__layer *l, struct am__call *c)
{
    struct rnn_config *r = l->cfg;
    int64_t b = c->batch, t = l->in_shape[0].dim[0], in = l->in_shape[0].dim[1];
    int64_t u = r->units, g = n_gates(r) * u;
    int lstm = r->kind == RNN_LSTM;
    struct rnn_work w;
    rnn_layout(l, b, &w, c->work);
    struct am__weight *kw = am__layer_weight(l, "kernel");
    struct am__weight *rw = am__layer_weight(l, "recurrent_kernel");
    struct am__weight *bw = am__layer_weight(l, "bias");
    const float *mask = c->mask_in[0];
    int dropped = w.xd && l->forward_training;
    const float *x = dropped ? w.xd : c->in[0];

    memset(w.dh, 0, (size_t)(b * u) * sizeof(float));
    memset(w.dc, 0, (size_t)(b * u) * sizeof(float));
    /* The final states' gradients (return_state) and the last output's. */
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < u; j++) {
            float dh = 0;
            if (r->return_state) {
                dh += c->dout[1][i * u + j];
                if (lstm)
                    w.dc[i * u + j] = c->dout[2][i * u + j];
            }
            if (!r->return_sequences)
                dh += c->dout[0][i * u + j];
            w.dh[i * u + j] = dh;
        }

    int chunks = row_chunks(b);
#pragma omp parallel for num_threads(chunks) schedule(static) if (chunks > 1)
    for (int k = 0; k < chunks; k++) {
        int64_t b0 = b * k / chunks, b1 = b * (k + 1) / chunks, nb = b1 - b0;
        for (int64_t s = t - 1; s >= 0; s--) {
            int64_t ti = input_step(r, s, t);
            for (int64_t i = b0; i < b1; i++) {
                const float *z = w.gates + (i * t + s) * g;
                float *dz = w.dz + (i * t + s) * g;
                float *dh = w.dh + i * u, *dc = w.dc + i * u, *carry = w.dtmp + i * u;
                const float *hprev = s == 0 ? w.h0 + i * u : w.hs + (i * t + s - 1) * u;
                if (r->return_sequences)
                    for (int64_t j = 0; j < u; j++)
                        dh[j] += c->dout[0][(i * t + s) * u + j];
                int live = !mask || mask[i * t + ti] != 0.0f;
                if (!live) { /* the step carried the states through: pass the gradients on */
                    memset(dz, 0, (size_t)g * sizeof(float));
                    if (!lstm)
                        memset(w.dzr + (i * t + s) * g, 0, (size_t)g * sizeof(float));
                    memcpy(carry, dh, (size_t)u * sizeof(float));
                    continue;
                }
                if (lstm) {
                    const float *cprev = s == 0 ? w.c0 + i * u : w.cs + (i * t + s - 1) * u;
                    const float *tc = w.tcs + (i * t + s) * u;
                    for (int64_t j = 0; j < u; j++) {
                        float ig = z[j], fg = z[u + j], cg = z[2 * u + j], og = z[3 * u + j];
                        float dcj = dc[j] + dh[j] * og * dact(r->activation, tc[j]);
                        dz[j] = dcj * cg * dact(r->recurrent_activation, ig);
                        dz[u + j] = dcj * cprev[j] * dact(r->recurrent_activation, fg);
                        dz[2 * u + j] = dcj * ig * dact(r->activation, cg);
                        dz[3 * u + j] = dh[j] * tc[j] * dact(r->recurrent_activation, og);
                        dc[j] = dcj * fg;
                        carry[j] = 0;
                    }
                } else {
                    const float *rec = w.rec + (i * t + s) * g;
                    float *dzr = w.dzr + (i * t + s) * g;
                    for (int64_t j = 0; j < u; j++) {
                        float zg = z[j], rg = z[u + j], ng = z[2 * u + j];
                        float dn = dh[j] * (1.0f - zg) * dact(r->activation, ng);
                        float dzg = dh[j] * (hprev[j] - ng) * dact(r->recurrent_activation, zg);
                        float drg = dn * rec[2 * u + j] * dact(r->recurrent_activation, rg);
                        dz[j] = dzg;
                        dz[u + j] = drg;
                        dz[2 * u + j] = dn;
                        dzr[j] = dzg;
                        dzr[u + j] = drg;
                        dzr[2 * u + j] = dn * rg;
                        carry[j] = dh[j] * zg;
                    }
                }
            }
            /* dh_{s-1} = carry + (dz_rec R^T) * recurrent dropout mask */
            const float *dzrec = lstm ? w.dz : w.dzr;
            am__sgemm(0, 1, (int)nb, (int)u, (int)g, 1.0f, dzrec + (b0 * t + s) * g, (int)(t * g),
                      rw->value, (int)g, 0.0f, w.dh + b0 * u, (int)u);
            for (int64_t i = b0 * u; i < b1 * u; i++)
                w.dh[i] = w.dtmp[i] + w.dh[i] * (w.rmask ? w.rmask[i] : 1.0f);
        }
    }
    /* Gradients into the initial states. */
    if (l->n_inputs > 1) {
        if (c->din[1])
            for (int64_t i = 0; i < b * u; i++)
                c->din[1][i] += w.dh[i];
        if (lstm && c->din[2])
            for (int64_t i = 0; i < b * u; i++)
                c->din[2][i] += w.dc[i];
    }
    /* Kernel gradients: one GEMM each over all B*T rows. hprev and dz rows are in processing
     * order; the input rows are in input order, so for go_backwards dz is reversed per sample
     * before the input-side GEMMs. */
    const float *dzrec = lstm ? w.dz : w.dzr;
    am__sgemm(1, 0, (int)u, (int)g, (int)(b * t), 1.0f, w.hprev, (int)u, dzrec, (int)g, 1.0f,
              rw->grad, (int)g);
    if (bw) {
        for (int64_t row = 0; row < b * t; row++)
            for (int64_t j = 0; j < g; j++)
                bw->grad[j] += w.dz[row * g + j];
        if (!lstm)
            for (int64_t row = 0; row < b * t; row++)
                for (int64_t j = 0; j < g; j++)
                    bw->grad[g + j] += w.dzr[row * g + j];
    }
    if (r->go_backwards)
        reverse_steps(w.dz, b, t, g);
    am__sgemm(1, 0, (int)in, (int)g, (int)(b * t), 1.0f, x, (int)in, w.dz, (int)g, 1.0f, kw->grad,
              (int)g);
    if (c->din[0]) {
        if (!dropped) {
            am__sgemm(0, 1, (int)(b * t), (int)in, (int)g, 1.0f, w.dz, (int)g, kw->value, (int)g,
                      1.0f, c->din[0], (int)in);
        } else {
            am__sgemm(0, 1, (int)(b * t), (int)in, (int)g, 1.0f, w.dz, (int)g, kw->value, (int)g,
                      0.0f, w.xd, (int)in);
            for (int64_t bt = 0; bt < b * t; bt++)
                for (int64_t j = 0; j < in; j++)
                    c->din[0][bt * in + j] += w.xd[bt * in + j] * w.dmask[(bt / t) * in + j];
        }
    }
}

/* ---------------------------------------------------------------- kept state (model.c's API) */

static int64_t rnn_state_floats(const struct am__layer *l)
{
    const struct rnn_config *r = l->cfg;
    return r->stateful ? n_states(r) * (int64_t)r->units : 0;
}

/* Copy row `row`'s state out (get = 1) or in; a row beyond the kept rows reads as zeros and
 * grows the store on write. Returns AMUSE_ENOMEM if it cannot grow. */
static int rnn_state_access(struct am__layer *l, int64_t row, float *buf, int get)
{
    struct rnn_config *r = l->cfg;
    int64_t per = n_states(r) * (int64_t)r->units;
    if (row >= r->state_rows) {
        if (get) {
            memset(buf, 0, (size_t)per * sizeof(float));
            return AMUSE_OK;
        }
        float *grown = calloc((size_t)((row + 1) * per), sizeof(float));
        if (!grown)
            return am__fail(AMUSE_ENOMEM, "out of memory");
        if (r->state)
            memcpy(grown, r->state, (size_t)(r->state_rows * per) * sizeof(float));
        free(r->state);
        r->state = grown;
        r->state_rows = row + 1;
    }
    if (get)
        memcpy(buf, r->state + row * per, (size_t)per * sizeof(float));
    else
        memcpy(r->state + row * per, buf, (size_t)per * sizeof(float));
    return AMUSE_OK;
}

static int rnn_set_stateful(struct am__layer *l, int on)
{
    struct rnn_config *r = l->cfg;
    if (on && l->n_inputs > 1)
        return am__layer_fail(l, AMUSE_EUNSUPPORTED,
                              "takes its initial state from other layers, so it cannot keep one");
    if (!on)
        rnn_release(l);
    r->stateful = on;
    return AMUSE_OK;
}

const struct am__layer_type am__lstm_layer = {
    .class_name = "LSTM",
    .base_name = "lstm",
    .config_size = sizeof(struct rnn_config),
    .flags = AM__LAYER_HAS_STATE,
    .configure = lstm_configure,
    .build = rnn_build,
    .workspace = rnn_workspace,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .release = rnn_release,
    .state_floats = rnn_state_floats,
    .state_access = rnn_state_access,
    .set_stateful = rnn_set_stateful,
};

const struct am__layer_type am__gru_layer = {
    .class_name = "GRU",
    .base_name = "gru",
    .config_size = sizeof(struct rnn_config),
    .flags = AM__LAYER_HAS_STATE,
    .configure = gru_configure,
    .build = rnn_build,
    .workspace = rnn_workspace,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .release = rnn_release,
    .state_floats = rnn_state_floats,
    .state_access = rnn_state_access,
    .set_stateful = rnn_set_stateful,
};
