/* test_layers.c - each fast layer kernel against a slow, obviously correct reference written
 * here: Conv2D forward (direct 7-loop convolution with TensorFlow's "same" padding) and backward
 * (direct loops for the kernel, bias and input gradients), MaxPooling2D forward and backward,
 * and Dense against a naive matrix product. Also the summary table and parameter counts of the
 * two default recipes in models/.
 *
 * The layers are called through the internal interface (nn/layer.h) on a model built from JSON,
 * with batch > 1 and several channels. References accumulate in double. Tolerance: a value that
 * sums n products may differ from the double reference by float rounding, bounded here by
 * 4e-6 * (1 + sum of |terms|): loose enough for any summation order, tight enough that one wrong
 * or missing term (|term| >= 1e-3 of the sum) fails. Finite-difference checks of the same layers
 * are in test_gradcheck.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "amuse/error.h"
#include "amuse/model.h"
#include "amuse/rng.h"
#include "nn/model_internal.h"
#include "test.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>

#define TOL_SCALE 4e-6

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        TEST_FAIL("out of memory");
    return p;
}

static void fill_uniform(struct amuse_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * amuse_rng_uniform(r);
}

/* A reference value with the sum of the absolute values of its terms (for the tolerance). */
struct ref {
    double value, abs_sum;
};

static void expect_close(const float *got, const struct ref *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = TOL_SCALE * (1.0 + want[i].abs_sum);
        if (!(fabs((double)got[i] - want[i].value) <= tol))
            TEST_FAIL("%s[%lld]: got %.9g, reference %.9g (tolerance %.3g)", what, (long long)i,
                      (double)got[i], want[i].value, tol);
    }
}

/* One layer of a built model, called directly with our buffers. */
struct layer_io {
    struct amuse_model *m;
    struct am__layer *l;
    struct am__call call;
    float *x, *y, *dy, *dx;
    int64_t in_n, out_n;
};

static void layer_io_open(struct layer_io *io, const char *json, int64_t batch, uint64_t seed)
{
    memset(io, 0, sizeof *io);
    ASSERT_OK(amuse_model_from_json(&io->m, json, strlen(json), "test_layers"));
    io->l = &io->m->layers[1];
    struct am__layer *l = io->l;
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed);
    for (int k = 0; k < l->n_weights; k++)
        fill_uniform(&rng, l->w[k].value, amuse_shape_size(&l->w[k].shape), -1.0f, 1.0f);
    io->in_n = batch * amuse_shape_size(&l->in_shape[0]);
    io->out_n = batch * amuse_shape_size(&l->out_shape[0]);
    io->x = xcalloc((size_t)io->in_n, sizeof(float));
    io->dx = xcalloc((size_t)io->in_n, sizeof(float));
    io->y = xcalloc((size_t)io->out_n, sizeof(float));
    io->dy = xcalloc((size_t)io->out_n, sizeof(float));
    fill_uniform(&rng, io->x, io->in_n, -1.0f, 1.0f);
    fill_uniform(&rng, io->dy, io->out_n, -1.0f, 1.0f);
    io->call.batch = batch;
    io->call.training = 1;
    io->call.in[0] = io->x;
    io->call.out[0] = io->y;
    io->call.dout[0] = io->dy;
    io->call.din[0] = io->dx;
    io->call.work = xcalloc(l->type->workspace(l, batch) + 64, 1);
}

static void layer_io_close(struct layer_io *io)
{
    free(io->x);
    free(io->dx);
    free(io->y);
    free(io->dy);
    free(io->call.work);
    amuse_model_free(io->m);
}

static const char *single(const char *input_shape, const char *layer)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, %s]}},"
             "%s]}}}",
             input_shape, layer);
    return buf;
}

/* ---------------------------------------------------------------- Conv2D reference */

struct geometry {
    int64_t batch, h, w, c, f, kh, kw, sh, sw, oh, ow, pad_top, pad_left;
};

/* TensorFlow's padding rule, written out independently of conv2d.c. */
static struct geometry make_geometry(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t f,
                                     int64_t kh, int64_t kw, int64_t sh, int64_t sw, int same)
{
    struct geometry g = {batch, h, w, c, f, kh, kw, sh, sw, 0, 0, 0, 0};
    if (same) {
        g.oh = (h + sh - 1) / sh; /* ceil(h / s) */
        g.ow = (w + sw - 1) / sw;
        int64_t total_h = (g.oh - 1) * sh + kh - h, total_w = (g.ow - 1) * sw + kw - w;
        if (total_h < 0)
            total_h = 0;
        if (total_w < 0)
            total_w = 0;
        g.pad_top = total_h / 2; /* the extra odd row goes to the bottom */
        g.pad_left = total_w / 2;
    } else {
        g.oh = (h - kh) / sh + 1;
        g.ow = (w - kw) / sw + 1;
    }
    return g;
}

/* Input pixel (b, iy, ix, ci), or -1 if it is padding. */
static int64_t input_index(const struct geometry *g, int64_t b, int64_t iy, int64_t ix, int64_t ci)
{
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return ((b * g->h + iy) * g->w + ix) * g->c + ci;
}

/* y[b, oy, ox, fo] = bias[fo] + sum_{ky, kx, ci} x[b, oy*sh - top + ky, ox*sw - left + kx, ci]
 *                                               * kernel[ky, kx, ci, fo] */
static void conv_reference_forward(const struct geometry *g, const float *x, const float *kernel,
                                   const float *bias, struct ref *y)
{
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++)
                for (int64_t fo = 0; fo < g->f; fo++) {
                    struct ref r = {bias[fo], fabs(bias[fo])};
                    for (int64_t ky = 0; ky < g->kh; ky++)
                        for (int64_t kx = 0; kx < g->kw; kx++)
                            for (int64_t ci = 0; ci < g->c; ci++) {
                                int64_t i = input_index(g, b, oy * g->sh - g->pad_top + ky,
                                                        ox * g->sw - g->pad_left + kx, ci);
                                if (i < 0)
                                    continue;
                                double t = (double)x[i] *
                                           kernel[((ky * g->kw + kx) * g->c + ci) * g->f + fo];
                                r.value += t;
                                r.abs_sum += fabs(t);
                            }
                    y[((b * g->oh + oy) * g->ow + ox) * g->f + fo] = r;
                }
}

/* With dy = d(loss)/d(y) (linear activation): dkernel, dbias and dx by the same loops. */
static void conv_reference_backward(const struct geometry *g, const float *x, const float *kernel,
                                    const float *dy, struct ref *dkernel, struct ref *dbias,
                                    struct ref *dx)
{
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++)
                for (int64_t fo = 0; fo < g->f; fo++) {
                    double d = dy[((b * g->oh + oy) * g->ow + ox) * g->f + fo];
                    dbias[fo].value += d;
                    dbias[fo].abs_sum += fabs(d);
                    for (int64_t ky = 0; ky < g->kh; ky++)
                        for (int64_t kx = 0; kx < g->kw; kx++)
                            for (int64_t ci = 0; ci < g->c; ci++) {
                                int64_t i = input_index(g, b, oy * g->sh - g->pad_top + ky,
                                                        ox * g->sw - g->pad_left + kx, ci);
                                if (i < 0)
                                    continue;
                                int64_t k = ((ky * g->kw + kx) * g->c + ci) * g->f + fo;
                                double tk = d * x[i], tx = d * kernel[k];
                                dkernel[k].value += tk;
                                dkernel[k].abs_sum += fabs(tk);
                                dx[i].value += tx;
                                dx[i].abs_sum += fabs(tx);
                            }
                }
}

struct conv_case {
    int64_t batch, h, w, c, f, kh, kw, sh, sw;
    int same;
};

static void check_conv(const struct conv_case *cc, const char *activation)
{
    char layer[512], shape[64], what[160];
    snprintf(layer, sizeof layer,
             "{\"class_name\": \"Conv2D\", \"config\": {\"filters\": %lld, \"kernel_size\": "
             "[%lld, %lld], \"strides\": [%lld, %lld], \"padding\": \"%s\", \"activation\": "
             "\"%s\"}}",
             (long long)cc->f, (long long)cc->kh, (long long)cc->kw, (long long)cc->sh,
             (long long)cc->sw, cc->same ? "same" : "valid", activation);
    snprintf(shape, sizeof shape, "%lld, %lld, %lld", (long long)cc->h, (long long)cc->w,
             (long long)cc->c);
    snprintf(what, sizeof what, "Conv2D %lldx%lldx%lld k%lldx%lld s%lldx%lld %s %s",
             (long long)cc->h, (long long)cc->w, (long long)cc->c, (long long)cc->kh,
             (long long)cc->kw, (long long)cc->sh, (long long)cc->sw,
             cc->same ? "same" : "valid", activation);
    struct geometry g = make_geometry(cc->batch, cc->h, cc->w, cc->c, cc->f, cc->kh, cc->kw,
                                      cc->sh, cc->sw, cc->same);
    struct layer_io io;
    layer_io_open(&io, single(shape, layer), cc->batch, 7 + (uint64_t)cc->h * 31 + (uint64_t)cc->sh);
    /* The layer's own output shape must agree with the reference geometry. */
    ASSERT_EQ_INT(io.l->out_shape[0].dim[0], g.oh);
    ASSERT_EQ_INT(io.l->out_shape[0].dim[1], g.ow);
    ASSERT_EQ_INT(io.l->out_shape[0].dim[2], g.f);
    const float *kernel = io.l->w[0].value, *bias = io.l->w[1].value;
    struct ref *y = xcalloc((size_t)io.out_n, sizeof *y);
    conv_reference_forward(&g, io.x, kernel, bias, y);
    int relu = strcmp(activation, "relu") == 0;
    if (relu)
        for (int64_t i = 0; i < io.out_n; i++)
            if (y[i].value < 0)
                y[i].value = 0;
    io.l->type->forward(io.l, &io.call);
    char label[200];
    snprintf(label, sizeof label, "%s: forward", what);
    expect_close(io.y, y, io.out_n, label);

    if (!relu) {
        int64_t kn = g.kh * g.kw * g.c * g.f;
        struct ref *dk = xcalloc((size_t)kn, sizeof *dk), *db = xcalloc((size_t)g.f, sizeof *db);
        struct ref *dx = xcalloc((size_t)io.in_n, sizeof *dx);
        conv_reference_backward(&g, io.x, kernel, io.dy, dk, db, dx);
        amuse_model_zero_grad(io.m);
        io.l->type->backward(io.l, &io.call);
        snprintf(label, sizeof label, "%s: d kernel", what);
        expect_close(io.l->w[0].grad, dk, kn, label);
        snprintf(label, sizeof label, "%s: d bias", what);
        expect_close(io.l->w[1].grad, db, g.f, label);
        snprintf(label, sizeof label, "%s: d input", what);
        expect_close(io.dx, dx, io.in_n, label);
        free(dk);
        free(db);
        free(dx);
    }
    free(y);
    layer_io_close(&io);
}

static const struct conv_case conv_cases[] = {
    /* batch, h, w, c, f, kh, kw, sh, sw, same */
    {3, 8, 7, 3, 4, 3, 3, 1, 1, 0},   /* valid, stride 1, non-square input */
    {2, 8, 7, 3, 4, 3, 3, 1, 1, 1},   /* same, stride 1: one pixel of padding all round */
    {2, 9, 9, 2, 3, 3, 3, 2, 2, 0},   /* valid, stride 2 */
    {2, 8, 8, 2, 3, 3, 3, 2, 2, 1},   /* same, stride 2, even input: pad 0 top, 1 bottom */
    {2, 7, 8, 2, 3, 4, 4, 2, 2, 1},   /* same, stride 2, even kernel: asymmetric both ways */
    {2, 10, 9, 3, 2, 5, 3, 3, 2, 1},  /* same, strides 3x2, rectangular kernel */
    {2, 10, 9, 3, 2, 2, 5, 3, 1, 0},  /* valid, strides 3x1 */
    {2, 6, 6, 1, 5, 1, 1, 1, 1, 0},   /* 1x1 kernel */
    {2, 28, 28, 1, 8, 3, 3, 1, 1, 0}, /* the seed CNN's first layer, fewer filters */
};

TEST(conv2d_forward_backward_vs_direct_loops)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        check_conv(&conv_cases[i], "linear");
}

TEST(conv2d_relu_forward_vs_direct_loops)
{
    check_conv(&conv_cases[1], "relu");
    check_conv(&conv_cases[4], "relu");
}

/* Same padding's geometry on its own: Keras's output sizes for the seed-like shapes. */
TEST(conv2d_same_padding_output_shapes)
{
    static const struct {
        int h, k, s, out;
    } cases[] = {{28, 3, 1, 28}, {28, 3, 2, 14}, {27, 3, 2, 14}, {5, 4, 2, 3}, {1, 3, 1, 1}};
    for (int i = 0; i < 5; i++) {
        char layer[256], shape[32];
        snprintf(layer, sizeof layer,
                 "{\"class_name\": \"Conv2D\", \"config\": {\"filters\": 2, \"kernel_size\": %d, "
                 "\"strides\": %d, \"padding\": \"same\"}}",
                 cases[i].k, cases[i].s);
        snprintf(shape, sizeof shape, "%d, %d, 1", cases[i].h, cases[i].h);
        struct amuse_model *m;
        const char *json = single(shape, layer);
        ASSERT_OK(amuse_model_from_json(&m, json, strlen(json), "same"));
        ASSERT_EQ_INT(amuse_model_output_shape(m)->dim[0], cases[i].out);
        ASSERT_EQ_INT(amuse_model_output_shape(m)->dim[1], cases[i].out);
        amuse_model_free(m);
    }
}

/* ---------------------------------------------------------------- MaxPooling2D reference */

static void check_pool(int64_t batch, int64_t h, int64_t w, int64_t c, int64_t ph, int64_t pw,
                       int64_t sh, int64_t sw, int same)
{
    char layer[256], shape[64], what[400];
    snprintf(layer, sizeof layer,
             "{\"class_name\": \"MaxPooling2D\", \"config\": {\"pool_size\": [%lld, %lld], "
             "\"strides\": [%lld, %lld], \"padding\": \"%s\"}}",
             (long long)ph, (long long)pw, (long long)sh, (long long)sw, same ? "same" : "valid");
    snprintf(shape, sizeof shape, "%lld, %lld, %lld", (long long)h, (long long)w, (long long)c);
    snprintf(what, sizeof what, "MaxPooling2D %s in %s", layer, shape);
    struct geometry g = make_geometry(batch, h, w, c, c, ph, pw, sh, sw, same);
    struct layer_io io;
    layer_io_open(&io, single(shape, layer), batch, 99 + (uint64_t)h);
    ASSERT_EQ_INT(io.l->out_shape[0].dim[0], g.oh);
    ASSERT_EQ_INT(io.l->out_shape[0].dim[1], g.ow);
    io.l->type->forward(io.l, &io.call);
    amuse_model_zero_grad(io.m);
    io.l->type->backward(io.l, &io.call);

    float *dx = xcalloc((size_t)io.in_n, sizeof(float));
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++)
                for (int64_t ci = 0; ci < c; ci++) {
                    float best = -FLT_MAX;
                    int64_t where = -1;
                    for (int64_t ky = 0; ky < ph; ky++)
                        for (int64_t kx = 0; kx < pw; kx++) {
                            int64_t i = input_index(&g, b, oy * sh - g.pad_top + ky,
                                                    ox * sw - g.pad_left + kx, ci);
                            if (i >= 0 && (where < 0 || io.x[i] > best)) {
                                best = io.x[i];
                                where = i;
                            }
                        }
                    ASSERT_TRUE(where >= 0); /* every window holds at least one real pixel */
                    int64_t o = ((b * g.oh + oy) * g.ow + ox) * c + ci;
                    if (io.y[o] != best)
                        TEST_FAIL("%s: output %lld is %g, reference %g", what, (long long)o,
                                  io.y[o], best);
                    dx[where] += io.dy[o];
                }
    /* Exact: the gradient is routed, not computed (sums of at most a few values in the same
     * order as the reference, which scans outputs in memory order too). */
    for (int64_t i = 0; i < io.in_n; i++)
        if (!(fabs(io.dx[i] - dx[i]) <= 1e-6))
            TEST_FAIL("%s: d input %lld is %g, reference %g", what, (long long)i, io.dx[i],
                      dx[i]);
    free(dx);
    layer_io_close(&io);
}

TEST(maxpool_forward_backward_vs_direct_loops)
{
    check_pool(3, 6, 6, 3, 2, 2, 2, 2, 0);  /* the seed's 2x2 */
    check_pool(2, 7, 5, 2, 2, 2, 2, 2, 0);  /* valid drops the odd row/column */
    check_pool(2, 7, 5, 2, 2, 2, 2, 2, 1);  /* same pads them */
    check_pool(2, 8, 8, 2, 3, 3, 2, 2, 1);  /* overlapping windows, same */
    check_pool(2, 8, 7, 2, 3, 3, 1, 1, 0);  /* stride 1, overlapping: gradients add up */
    check_pool(2, 9, 9, 1, 3, 2, 3, 2, 1);  /* rectangular pool, strides 3x2 */
    check_pool(2, 24, 24, 4, 2, 2, 2, 2, 0); /* the seed CNN's pooling shape */
}

TEST(maxpool_ties_take_the_first_maximum)
{
    struct layer_io io;
    layer_io_open(&io,
                  single("2, 2, 1", "{\"class_name\": \"MaxPooling2D\", \"config\": "
                                    "{\"pool_size\": [2, 2]}}"),
                  1, 1);
    for (int i = 0; i < 4; i++)
        io.x[i] = 0.5f;
    io.dy[0] = 3.0f;
    io.l->type->forward(io.l, &io.call);
    io.l->type->backward(io.l, &io.call);
    ASSERT_NEAR(io.y[0], 0.5, 0);
    ASSERT_NEAR(io.dx[0], 3.0, 0);
    ASSERT_NEAR(io.dx[1] + io.dx[2] + io.dx[3], 0.0, 0);
    layer_io_close(&io);
}

/* ---------------------------------------------------------------- Dense reference */

static void check_dense(int64_t batch, const char *input_shape, int64_t in, int64_t units)
{
    char layer[256], what[96];
    snprintf(layer, sizeof layer, "{\"class_name\": \"Dense\", \"config\": {\"units\": %lld}}",
             (long long)units);
    snprintf(what, sizeof what, "Dense %lld -> %lld on (%s)", (long long)in, (long long)units,
             input_shape);
    struct layer_io io;
    layer_io_open(&io, single(input_shape, layer), batch, 5 + (uint64_t)units);
    int64_t rows = io.in_n / in;
    const float *k = io.l->w[0].value, *bias = io.l->w[1].value;
    struct ref *y = xcalloc((size_t)(rows * units), sizeof *y);
    struct ref *dk = xcalloc((size_t)(in * units), sizeof *dk);
    struct ref *db = xcalloc((size_t)units, sizeof *db);
    struct ref *dx = xcalloc((size_t)(rows * in), sizeof *dx);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < units; j++) {
            struct ref v = {bias[j], fabs(bias[j])};
            double d = io.dy[r * units + j];
            db[j].value += d;
            db[j].abs_sum += fabs(d);
            for (int64_t i = 0; i < in; i++) {
                double t = (double)io.x[r * in + i] * k[i * units + j];
                v.value += t;
                v.abs_sum += fabs(t);
                double tk = d * io.x[r * in + i], tx = d * k[i * units + j];
                dk[i * units + j].value += tk;
                dk[i * units + j].abs_sum += fabs(tk);
                dx[r * in + i].value += tx;
                dx[r * in + i].abs_sum += fabs(tx);
            }
            y[r * units + j] = v;
        }
    io.l->type->forward(io.l, &io.call);
    amuse_model_zero_grad(io.m);
    io.l->type->backward(io.l, &io.call);
    char label[160];
    snprintf(label, sizeof label, "%s: forward", what);
    expect_close(io.y, y, rows * units, label);
    snprintf(label, sizeof label, "%s: d kernel", what);
    expect_close(io.l->w[0].grad, dk, in * units, label);
    snprintf(label, sizeof label, "%s: d bias", what);
    expect_close(io.l->w[1].grad, db, units, label);
    snprintf(label, sizeof label, "%s: d input", what);
    expect_close(io.dx, dx, rows * in, label);
    free(y);
    free(dk);
    free(db);
    free(dx);
    layer_io_close(&io);
}

TEST(dense_vs_naive_matmul)
{
    check_dense(5, "7", 7, 3);
    check_dense(1, "4", 4, 1);
    check_dense(33, "130", 130, 65); /* odd sizes past typical GEMM block edges */
    check_dense(3, "4, 6", 6, 5);    /* rank-3 input: Dense on the last axis */
}

/* ---------------------------------------------------------------- summary and parameter counts */

static struct amuse_model *load_recipe(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s", AMUSE_SOURCE_DIR, name);
    struct amuse_model *m = NULL;
    int rc = amuse_model_from_file(&m, path);
    if (rc)
        TEST_FAIL("%s: %s", path, amuse_last_error());
    return m;
}

static char *summary_text(struct amuse_model *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ASSERT_TRUE(f != NULL);
    amuse_model_summary(m, f);
    fclose(f);
    return text;
}

/* The line of the summary that names a layer must also show its shape and parameter count. */
static void expect_row(const char *text, const char *layer, const char *shape, const char *params)
{
    const char *at = strstr(text, layer);
    if (!at)
        TEST_FAIL("summary has no row for %s:\n%s", layer, text);
    const char *end = strchr(at, '\n');
    char line[256];
    size_t n = end ? (size_t)(end - at) : strlen(at);
    snprintf(line, sizeof line, "%.*s", (int)n, at);
    ASSERT_CONTAINS(line, shape);
    char padded[32];
    snprintf(padded, sizeof padded, " %s ", params);
    char with_space[260];
    snprintf(with_space, sizeof with_space, "%s ", line);
    ASSERT_CONTAINS(with_space, padded);
}

TEST(summary_of_the_seed_cnn)
{
    struct amuse_model *m = load_recipe("fashion-cnn.json");
    /* Keras: 320 + 18,496 + 0 + 0 + 1,179,776 + 1,290 */
    ASSERT_EQ_INT(amuse_model_param_count(m), 1199882);
    char *text = summary_text(m);
    ASSERT_CONTAINS(text, "Total params: 1,199,882");
    ASSERT_CONTAINS(text, "Trainable params: 1,199,882");
    expect_row(text, "conv2d (Conv2D)", "(None, 26, 26, 32)", "320");
    expect_row(text, "conv2d_1 (Conv2D)", "(None, 24, 24, 64)", "18496");
    expect_row(text, "max_pooling2d (MaxPooling2D)", "(None, 12, 12, 64)", "0");
    expect_row(text, "flatten (Flatten)", "(None, 9216)", "0");
    expect_row(text, "dense (Dense)", "(None, 128)", "1179776");
    expect_row(text, "dense_1 (Dense)", "(None, 10)", "1290");
    free(text);
    amuse_model_free(m);
}

TEST(summary_of_the_seed_dnn)
{
    struct amuse_model *m = load_recipe("fashion-dnn.json");
    int64_t expected = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10;
    ASSERT_EQ_INT(expected, 242762);
    ASSERT_EQ_INT(amuse_model_param_count(m), expected);
    char *text = summary_text(m);
    ASSERT_CONTAINS(text, "Total params: 242,762");
    expect_row(text, "flatten (Flatten)", "(None, 784)", "0");
    expect_row(text, "dense (Dense)", "(None, 256)", "200960");
    expect_row(text, "dense_3 (Dense)", "(None, 10)", "650");
    free(text);
    amuse_model_free(m);
}

int main(void)
{
    RUN(conv2d_forward_backward_vs_direct_loops);
    RUN(conv2d_relu_forward_vs_direct_loops);
    RUN(conv2d_same_padding_output_shapes);
    RUN(maxpool_forward_backward_vs_direct_loops);
    RUN(maxpool_ties_take_the_first_maximum);
    RUN(dense_vs_naive_matmul);
    RUN(summary_of_the_seed_cnn);
    RUN(summary_of_the_seed_dnn);
    return test_summary();
}
