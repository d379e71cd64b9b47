/* nn/layer.h - the layer interface shared by the engine (internal, not installed).
 *
 * A layer is a node of the model graph: it reads n_inputs tensors produced by other nodes and
 * writes n_outputs tensors. Shapes here exclude the batch dimension. Every layer type is a
 * forward/backward pair plus a configure step (Keras config keys) and a build step (output shapes
 * and weight declarations from input shapes). Backward ACCUMULATES (+=) into weight gradients and
 * into input gradients; the engine zeroes them explicitly.
 */
#ifndef AMUSE_NN_LAYER_H
#define AMUSE_NN_LAYER_H

#include "amuse/data.h"
#include "amuse/rng.h"
#include "amuse/tensor.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define AM__MAX_IO AMUSE_MAX_INPUTS
#define AM__MAX_WEIGHTS 4

enum am__activation {
    AM__ACT_LINEAR,
    AM__ACT_RELU,
    AM__ACT_SIGMOID,
    AM__ACT_TANH,
    AM__ACT_SOFTMAX
};

enum am__init_kind {
    AM__INIT_ZEROS,
    AM__INIT_ONES,
    AM__INIT_GLOROT_UNIFORM,
    AM__INIT_HE_UNIFORM,
    AM__INIT_RANDOM_UNIFORM, /* uniform in [a, b) (Keras RandomUniform: minval, maxval) */
    AM__INIT_RANDOM_NORMAL,  /* normal, mean a, standard deviation b (Keras RandomNormal) */
    AM__INIT_ORTHOGONAL,     /* orthogonal rows or columns of the (fan, last axis) matrix, gain a */
    AM__INIT_UNIT_FORGET     /* zeros, except ones on [a, 2a): an LSTM bias with unit_forget_bias */
};

/* An initializer and its parameters, as read from a Keras config. */
struct am__init {
    enum am__init_kind kind;
    float a, b;
};

struct am__weight {
    char name[24]; /* "kernel", "bias", "recurrent_kernel", "embeddings" */
    struct amuse_shape shape;
    struct am__init init;
    int64_t fan_in, fan_out;
    int frozen;         /* 1: non-trainable (moving statistics): saved, never optimised */
    int64_t offset;     /* into the model's parameter and gradient blocks, in floats */
    float *value, *grad; /* set when the blocks are allocated */
};

struct am__node_ref {
    int node, slot;
};

/* What forward/backward see for one call. */
struct am__call {
    int64_t batch;
    int training;
    const float *in[AM__MAX_IO];
    float *out[AM__MAX_IO];
    const float *dout[AM__MAX_IO];
    float *din[AM__MAX_IO]; /* NULL where no gradient is needed (e.g. the model input) */
    /* Step masks (Keras masking): mask_in[k] is batch * rows(input k) floats, 1 for a real step
     * and 0 for padding, or NULL when input k carries no mask; mask_out is where a layer that
     * makes a mask (l->makes_mask) writes it for output 0. */
    const float *mask_in[AM__MAX_IO];
    float *mask_out;
    void *work;              /* workspace(batch) bytes, kept between forward and backward */
    int row_products;        /* forward products of at most this many rows: am__sgemm_rows */
    /* Forward only: a per-sample layer to run on each finished chunk of samples of output 0
     * while it is still in cache (Conv2D -> MaxPooling2D). NULL when nothing is fused. */
    const struct am__layer *epilogue;
    const struct am__call *epilogue_call;
    /* Inference only (AM__LAYER_FOLDS_BATCHNORM types): when set, forward uses these instead
     * of its kernel (w[0]) and bias: the engine has folded the BatchNormalization that alone
     * reads output 0 into them (am__batchnorm_fold), and out[0] is that layer's output.
     * fold_bias has one float per output channel and is always set with fold_kernel. */
    const float *fold_kernel, *fold_bias;
};

struct am__layer;

/* Facts about a layer type (flags in its table entry). */
enum {
    /* With a softmax activation on output 0, the loss may hand this layer d(loss)/d(pre-softmax)
     * directly (softmax + cross-entropy fused); the layer then skips its activation's backward. */
    AM__LAYER_FUSES_SOFTMAX_LOSS = 1 << 0,
    /* Output 0 carries input 0's step mask on (Dense, Dropout, Activation on sequences). */
    AM__LAYER_PASSES_MASK = 1 << 1,
    /* The layer can keep state between calls (recurrent layers: stateful=true). */
    AM__LAYER_HAS_STATE = 1 << 2,
    /* The layer reads int32 token ids (Embedding); every other type needs float inputs. */
    AM__LAYER_TAKES_IDS = 1 << 3,
    /* A following BatchNormalization can be folded into this layer at inference: w[0] is the
     * kernel with the output channel on its last axis, "bias" (optional) has one value per
     * output channel, and forward honours call->fold_kernel / fold_bias. The engine folds only
     * when the layer's activation is linear. */
    AM__LAYER_FOLDS_BATCHNORM = 1 << 4
};

struct am__layer_type {
    const char *class_name; /* Keras class name */
    const char *base_name;  /* Keras default layer-name prefix, "conv2d" */
    /* Bytes of the type's own settings struct; the engine allocates it zeroed as l->cfg before
     * configure and frees it with the model. 0: the type has no settings. */
    size_t config_size;
    unsigned flags; /* AM__LAYER_* */
    int (*configure)(struct am__layer *l, const cJSON *config);
    int (*build)(struct am__layer *l);
    size_t (*workspace)(const struct am__layer *l, int64_t batch);
    void (*forward)(struct am__layer *l, struct am__call *c);
    void (*backward)(struct am__layer *l, struct am__call *c);
    /* 1: output 0 is input 0's memory, values and gradients alike (a pure reshape such as
     * Flatten); forward and backward then have nothing to move. */
    int alias_input;
    /* 1: one input, and samples are independent: forward may run on any range of samples, with
     * inputs, outputs and workspace(batch) all proportional to the number of samples. */
    int per_sample;
    /* 1: forward runs call->epilogue on each chunk it finishes (see struct am__call). */
    int runs_epilogue;
    /* Validate the inputs of a call before forward (token ids in range); NULL if nothing. */
    int (*check)(const struct am__layer *l, const struct am__call *c);
    /* Free what the layer allocated itself (kept state); NULL if nothing. */
    void (*release)(struct am__layer *l);
    /* AM__LAYER_HAS_STATE types: floats of kept state per batch row (0 when not kept, e.g. a
     * recurrent layer without stateful=true), and copying row `row`'s state out (get = 1) or
     * in (growing the store; AMUSE_ENOMEM). */
    int64_t (*state_floats)(const struct am__layer *l);
    int (*state_access)(struct am__layer *l, int64_t row, float *buf, int get);
    /* Turn keeping state on or off (Keras's stateful); off frees the kept state. */
    int (*set_stateful)(struct am__layer *l, int on);
    /* The activation applied to output 0 (NULL: linear), for the loss fusion. */
    enum am__activation (*output_activation)(const struct am__layer *l);
};

/* Run c->epilogue on samples [b0, b0 + nb) of the producer's output 0 (producer_out). */
void am__run_epilogue(const struct am__call *c, const float *producer_out, int64_t b0,
                      int64_t nb);

struct am__layer {
    const struct am__layer_type *type;
    char name[64];
    void *cfg; /* the type's own settings struct (type->config_size bytes), or NULL */
    int n_inputs, n_outputs;
    struct am__node_ref input[AM__MAX_IO];
    struct amuse_shape in_shape[AM__MAX_IO], out_shape[AM__MAX_IO];
    /* Element types: int32 outputs hold token ids in the (4-byte) activation buffers and have
     * no gradient. Build sets out_dtype (default float32); the engine copies in_dtype. */
    enum amuse_dtype in_dtype[AM__MAX_IO], out_dtype[AM__MAX_IO];
    /* Masks, set by build: makes_mask = output 0 has a step mask this layer computes (Embedding
     * with mask_zero); passes_mask = output 0 carries input 0's mask (besides the type flag). */
    int makes_mask, passes_mask;
    int n_weights;
    struct am__weight w[AM__MAX_WEIGHTS];
    /* The loss hands this layer d(loss)/d(pre-activation) directly (softmax + cross-entropy). */
    int fused_loss_grad;
    /* The training flag of the last forward pass (set by the engine). */
    int forward_training;
    struct amuse_rng rng; /* Dropout masks */
};

/* Registry: the type for a Keras class name, or NULL. */
const struct am__layer_type *am__layer_type_find(const char *class_name);
/* The registry's class names, ", "-separated, into buf (for "unknown layer" messages). */
const char *am__layer_type_names(char *buf, size_t len);

/* Declare a weight during build. */
struct am__weight *am__layer_add_weight(struct am__layer *l, const char *name, int ndim,
                                        const int64_t *dims, struct am__init init, int64_t fan_in,
                                        int64_t fan_out);
/* A declared weight by name ("kernel"), or NULL (e.g. "bias" with use_bias false). */
struct am__weight *am__layer_weight(struct am__layer *l, const char *name);
/* Fill a weight from its initializer (the rng is advanced). */
void am__weight_init(struct am__weight *w, struct amuse_rng *rng);

/* Config readers: each reports "layer 'name' (Class): key 'k': ..." on error. A missing key keeps
 * *out unchanged (the caller set the default) unless required. */
int am__cfg_int(const struct am__layer *l, const cJSON *cfg, const char *key, int required,
                int lo, int hi, int *out);
int am__cfg_pair(const struct am__layer *l, const cJSON *cfg, const char *key, int required,
                 int out[2]);
int am__cfg_float(const struct am__layer *l, const cJSON *cfg, const char *key, double lo, double hi,
                  float *out);
int am__cfg_bool(const struct am__layer *l, const cJSON *cfg, const char *key, int *out);
int am__cfg_activation(const struct am__layer *l, const cJSON *cfg, const char *key,
                       enum am__activation *out);
int am__cfg_padding(const struct am__layer *l, const cJSON *cfg, int *same);
int am__cfg_initializer(const struct am__layer *l, const cJSON *cfg, const char *key,
                        struct am__init *out);
/* Fail if a key is present with a value other than the one supported (e.g. data_format). */
int am__cfg_require_string(const struct am__layer *l, const cJSON *cfg, const char *key,
                           const char *supported);
int am__layer_fail(const struct am__layer *l, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A 2-D sliding window over a (h, w, c) input (Conv2D, MaxPooling2D): kernel kh x kw, strides
 * sh x sw, output oh x ow x oc, and the padding before the first row and column, by TensorFlow's
 * rule. "valid": no padding, out = (in - k) / stride + 1 (0 if the window does not fit). "same":
 * out = ceil(in / stride), total padding max((out - 1) * stride + k - in, 0), the odd one at the
 * end. Reads l->in_shape[0]. */
struct am__window2d {
    int64_t h, w, c, kh, kw, sh, sw, oh, ow, oc, pad_top, pad_left;
};
struct am__window2d am__window2d_of(const struct am__layer *l, const int kernel[2],
                                    const int strides[2], int padding_same, int64_t out_channels);

/* Activations, in place on n rows of `width` values (softmax is per row). */
void am__activation_forward(enum am__activation a, float *y, int64_t rows, int64_t width);
/* dz = dy * f'(z), written from the activation's output y. */
void am__activation_backward(enum am__activation a, const float *y, const float *dy, float *dz,
                             int64_t rows, int64_t width);
/* The same without OpenMP, for callers already inside a parallel region. */
void am__activation_forward_serial(enum am__activation a, float *y, int64_t rows, int64_t width);
void am__activation_backward_serial(enum am__activation a, const float *y, const float *dy,
                                    float *dz, int64_t rows, int64_t width);
const char *am__activation_name(enum am__activation a);

/* BatchNormalization folded into the layer before it (inference): with the moving statistics,
 * y = gamma (x - mean) / sqrt(var + epsilon) + beta is y = scale x + shift per channel, so a
 * kernel of kernel_size floats whose last axis is the channel (bias: NULL for none) becomes
 * fold_kernel = kernel * scale and fold_bias = bias * scale + shift. bn must be a
 * BatchNormalization over `channels` channels. */
void am__batchnorm_fold(struct am__layer *bn, const float *kernel, const float *bias,
                        int64_t kernel_size, int64_t channels, float *fold_kernel,
                        float *fold_bias);

/* The layer types. */
extern const struct am__layer_type am__input_layer, am__dense_layer, am__conv2d_layer,
    am__maxpool2d_layer, am__flatten_layer, am__dropout_layer, am__activation_layer,
    am__concatenate_layer, am__add_layer, am__embedding_layer, am__lstm_layer, am__gru_layer,
    am__time_distributed_layer, am__depthwise_conv2d_layer, am__batchnorm_layer,
    am__avgpool2d_layer, am__global_avgpool2d_layer;

#endif
