#!/usr/bin/python3
"""make_golden.py - produce the PyTorch reference fixtures for tests/test_golden.c.

Run once with Debian's Python (python3-torch), from the repository root:

    /usr/bin/python3 tests/golden/make_golden.py

It writes tests/fixtures/golden/{cnn,mlp,lstm,gru}.{json,safetensors}; those outputs are committed so that
CI never needs torch. What it does not do: it does not use torch.optim for the reference updates
(the optimizer rules are written out by hand, exactly as Keras (TF2) applies them), and it does not
use the `safetensors` package (a small writer below follows the spec).

Everything is computed in float64 and stored as float32. The models have Keras semantics and
Keras layouts: activations are channels-last (NHWC), a Conv2D kernel is (kh, kw, in, out), a Dense
kernel is (in, out), Flatten flattens NHWC in (h, w, c) order. The forward pass keeps the
parameters in Keras layout as the autograd leaves and converts to torch's NCHW / OIHW inside, so
the gradients come out in Keras layout too.

The sequence models (lstm, gru) are Embedding -> LSTM/GRU(return_sequences) -> Dense(softmax) on
token ids, with sparse targets per time step (the loss is the mean over batch * steps rows). They
run torch.nn.LSTM / torch.nn.GRU through functional_call with the Keras-layout leaves mapped onto
PyTorch's layout (see lstm_torch_params / gru_torch_params and docs/model-format.md), and are
checked against an independent numpy loop written from Keras's formulas.

Tensors in each .safetensors file:
  x, y (one-hot, cnn) or labels (F32 class indices, mlp; (batch, steps) for lstm/gru, whose x is
  (batch, steps) token ids stored as F32)
  <layer>/kernel, <layer>/bias            initial weights
  output                                  softmax probabilities (batch, classes), training=0
  loss                                    [1], mean over the batch of -sum y log(clip(p))
  grad/<layer>/kernel, grad/<layer>/bias  gradients of that mean loss
  <opt>/losses                            [3], loss before each of 3 updates, opt in adam/rmsprop/sgd
  <opt>/<layer>/kernel, <opt>/<layer>/bias  weights after the 3 updates
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "golden")

EPSILON_CLIP = 1e-7  # Keras backend epsilon, used to clip probabilities in cross-entropy
KINK_MARGIN = 1e-3   # no ReLU pre-activation may be this close to 0 (float32 vs float64 agreement)
POOL_MARGIN = 1e-4   # the max of each pooling window must beat the runner-up by this much

# Hyper-parameters of the optimizer checks; test_golden.c compiles the model with the same ones.
OPTIMIZERS = {
    "adam": {"class_name": "Adam",
             "config": {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}},
    "rmsprop": {"class_name": "RMSprop",
                "config": {"learning_rate": 0.01, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}},
    "sgd": {"class_name": "SGD",
            "config": {"learning_rate": 0.1, "momentum": 0.9, "nesterov": False}},
}
STEPS = 3


# ------------------------------------------------------------------------------ safetensors writer

def write_safetensors(path, tensors, metadata):
    """Write float32 tensors (name -> numpy array, in the given order) per the safetensors spec:
    u64 little-endian header length N, N bytes of JSON (padded with spaces to a multiple of 8),
    then the contiguous data buffer that the data_offsets index."""
    header = {}
    chunks = []
    offset = 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def read_safetensors(path):
    """Independent read-back used to check the writer (and the stored values) before committing."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and 8 + n <= len(raw)
    header = json.loads(raw[8:8 + n])
    buf = raw[8 + n:]
    out, end = {}, 0
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k)
                   for k, v in header.items() if k != "__metadata__")
    for b, e, name in spans:
        assert b == end, "hole or overlap at " + name
        info = header[name]
        assert info["dtype"] == "F32"
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert e - b == 4 * count
        out[name] = np.frombuffer(buf[b:e], dtype="<f4").reshape(info["shape"])
        end = e
    assert end == len(buf)
    return out, header["__metadata__"]


# ------------------------------------------------------------------------------ Keras-like layers

def same_padding(size, kernel, stride):
    """TensorFlow "same": output ceil(size/stride); the odd pixel of padding goes bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def activation(name, z, kinks):
    if name == "relu":
        kinks.append(z.detach().abs().min().item())
        return torch.relu(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "softmax":
        return torch.softmax(z, dim=-1)
    if name == "linear":
        return z
    raise ValueError(name)


def forward(layers, params, x, checks):
    """Run the model on x (Keras layout: NHWC images or (batch, features)). params maps
    "<layer>/kernel" and "<layer>/bias" to tensors in Keras layout. checks collects the smallest
    |ReLU pre-activation| and the smallest max-pool winning margin seen."""
    h = x
    for layer in layers:
        kind, cfg = layer["class_name"], layer["config"]
        name = cfg.get("name")
        if kind == "InputLayer":
            continue
        if kind == "Conv2D":
            kernel, bias = params[name + "/kernel"], params[name + "/bias"]
            kh, kw = cfg["kernel_size"]
            sh, sw = cfg["strides"]
            t = h.permute(0, 3, 1, 2)                      # NHWC -> NCHW
            if cfg["padding"] == "same":
                top, bottom = same_padding(t.shape[2], kh, sh)
                left, right = same_padding(t.shape[3], kw, sw)
                t = F.pad(t, (left, right, top, bottom))
            w = kernel.permute(3, 2, 0, 1)                 # (kh, kw, in, out) -> OIHW
            z = F.conv2d(t, w, bias, stride=(sh, sw))
            z = z.permute(0, 2, 3, 1)                      # back to NHWC
            h = activation(cfg["activation"], z, checks["relu"])
        elif kind == "MaxPooling2D":
            ph, pw = cfg["pool_size"]
            t = h.permute(0, 3, 1, 2)
            # Winning margin per window, so float32 rounding cannot change which input wins.
            win = F.unfold(t.reshape(-1, 1, t.shape[2], t.shape[3]), (ph, pw), stride=(ph, pw))
            top2 = win.detach().topk(2, dim=1).values
            positive = top2[:, 0] > 0
            if positive.any():
                checks["pool"].append((top2[:, 0] - top2[:, 1])[positive].min().item())
            h = F.max_pool2d(t, (ph, pw)).permute(0, 2, 3, 1)
        elif kind == "Flatten":
            h = h.reshape(h.shape[0], -1)                  # h is NHWC: (h, w, c) order, as Keras
        elif kind == "Dense":
            z = h @ params[name + "/kernel"] + params[name + "/bias"]
            h = activation(cfg["activation"], z, checks["relu"])
        else:
            raise ValueError(kind)
    return h


def cross_entropy(p, y):
    """Keras categorical cross-entropy on probabilities: mean_b -sum_c y log(clip(p, eps, 1-eps)).
    (Keras also divides p by its row sum first; for a softmax output that is 1, and the fused
    softmax gradient p - y is what both this and Keras produce while nothing is clipped.)"""
    assert p.detach().min().item() > EPSILON_CLIP and p.detach().max().item() < 1 - EPSILON_CLIP, \
        "a probability is clipped: the clip would zero its gradient here but not in a fused kernel"
    return -(y * torch.log(p.clamp(EPSILON_CLIP, 1 - EPSILON_CLIP))).sum(dim=1).mean()


def weight_names(layers):
    names = []
    for layer in layers:
        if layer["class_name"] in ("Conv2D", "Dense"):
            names += [layer["config"]["name"] + "/kernel", layer["config"]["name"] + "/bias"]
    return names


def init_params(layers, input_shape, gen):
    """Random normal * 0.5 for kernels and biases (nonzero biases, so bias gradients are tested)."""
    params = {}
    shape = list(input_shape)
    for layer in layers:
        kind, cfg = layer["class_name"], layer["config"]
        if kind == "Conv2D":
            kh, kw = cfg["kernel_size"]
            params[cfg["name"] + "/kernel"] = torch.randn(kh, kw, shape[-1], cfg["filters"],
                                                          generator=gen) * 0.5
            params[cfg["name"] + "/bias"] = torch.randn(cfg["filters"], generator=gen) * 0.5
            s = cfg["strides"]
            if cfg["padding"] == "same":
                shape = [-(-shape[0] // s[0]), -(-shape[1] // s[1]), cfg["filters"]]
            else:
                shape = [(shape[0] - kh) // s[0] + 1, (shape[1] - kw) // s[1] + 1, cfg["filters"]]
        elif kind == "MaxPooling2D":
            ph, pw = cfg["pool_size"]
            shape = [shape[0] // ph, shape[1] // pw, shape[2]]
        elif kind == "Flatten":
            shape = [int(np.prod(shape))]
        elif kind == "Dense":
            params[cfg["name"] + "/kernel"] = torch.randn(shape[0], cfg["units"],
                                                          generator=gen) * 0.5
            params[cfg["name"] + "/bias"] = torch.randn(cfg["units"], generator=gen) * 0.5
            shape = [cfg["units"]]
    return params


# ------------------------------------------------------------------------------ Keras optimizers
#
# These are the Keras (TF2) update rules, written out by hand. They differ from torch.optim:
#  - Adam: Keras folds the bias corrections into the step size, lr_t = lr*sqrt(1-b2^t)/(1-b1^t),
#    and adds epsilon to sqrt(v) *uncorrected*: w -= lr_t * m / (sqrt(v) + eps). torch.optim.Adam
#    adds eps to sqrt(v_hat) = sqrt(v)/sqrt(1-b2^t), so torch's eps equals Keras's
#    eps/sqrt(1-b2^t) - a different (step-dependent) constant. The two agree only up to that.
#  - RMSprop: w -= lr * g / (sqrt(ms) + eps) (Keras >= 2.11 / Keras 3 formulation; the older
#    fused TF kernel put eps inside the sqrt). torch's RMSprop has the same form as this one.
#  - SGD with momentum: Keras keeps v = momentum*v - lr*g; w += v. torch keeps
#    b = momentum*b + g; w -= lr*b, i.e. v = -lr*b: equivalent while lr is constant. The script
#    checks that equivalence against torch.optim.SGD below.

def keras_update(opt, params, grads, state, t):
    cfg = OPTIMIZERS[opt]["config"]
    for k in params:
        g, w = grads[k], params[k]
        if opt == "adam":
            b1, b2, lr, eps = cfg["beta_1"], cfg["beta_2"], cfg["learning_rate"], cfg["epsilon"]
            m = state.setdefault(k + "/m", torch.zeros_like(w))
            v = state.setdefault(k + "/v", torch.zeros_like(w))
            lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            w.sub_(lr_t * m / (v.sqrt() + eps))
        elif opt == "rmsprop":
            rho, lr, eps = cfg["rho"], cfg["learning_rate"], cfg["epsilon"]
            ms = state.setdefault(k + "/ms", torch.zeros_like(w))
            ms.mul_(rho).add_((1 - rho) * g * g)
            w.sub_(lr * g / (ms.sqrt() + eps))
        elif opt == "sgd":
            mom, lr = cfg["momentum"], cfg["learning_rate"]
            v = state.setdefault(k + "/velocity", torch.zeros_like(w))
            v.mul_(mom).sub_(lr * g)
            w.add_(v)
        else:
            raise ValueError(opt)


def loss_and_grads(layers, params, x, target, checks):
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    p = forward(layers, leaves, x, checks)
    loss = cross_entropy(p, target)
    loss.backward()
    return p.detach(), loss.detach(), {k: v.grad.detach().clone() for k, v in leaves.items()}


def train(layers, params, x, target, opt, checks):
    params = {k: v.clone() for k, v in params.items()}
    state, losses = {}, []
    for t in range(1, STEPS + 1):
        _, loss, grads = loss_and_grads(layers, params, x, target, checks)
        losses.append(loss.item())
        keras_update(opt, params, grads, state, t)
    return losses, params


def torch_sgd_cross_check(layers, params, x, target, expected):
    """torch.optim.SGD(momentum=0.9, dampening=0) must land on the same weights as Keras's SGD."""
    cfg = OPTIMIZERS["sgd"]["config"]
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    sgd = torch.optim.SGD(leaves.values(), lr=cfg["learning_rate"], momentum=cfg["momentum"],
                          dampening=0, nesterov=False)
    for _ in range(STEPS):
        sgd.zero_grad()
        cross_entropy(forward(layers, leaves, x, {"relu": [], "pool": []}), target).backward()
        sgd.step()
    for k in params:
        err = (leaves[k].detach() - expected[k]).abs().max().item()
        assert err < 1e-12, "torch.optim.SGD disagrees with the Keras SGD rule on %s: %g" % (k, err)


# ------------------------------------------------------------------------------ the two models

def cnn_layers():
    return [
        {"class_name": "InputLayer",
         "config": {"name": "input_1", "batch_input_shape": [None, 8, 8, 2]}},
        {"class_name": "Conv2D",
         "config": {"name": "conv2d", "filters": 4, "kernel_size": [3, 3], "strides": [1, 1],
                    "padding": "same", "activation": "relu"}},
        {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "pool_size": [2, 2]}},
        {"class_name": "Conv2D",
         "config": {"name": "conv2d_1", "filters": 3, "kernel_size": [3, 3], "strides": [2, 2],
                    "padding": "same", "activation": "sigmoid"}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 6, "activation": "tanh"}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 5, "activation": "softmax"}},
    ]


def mlp_layers():
    return [
        {"class_name": "InputLayer", "config": {"name": "input_1", "batch_input_shape": [None, 10]}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 8, "activation": "relu"}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 6, "activation": "sigmoid"}},
        {"class_name": "Dense", "config": {"name": "dense_2", "units": 3, "activation": "softmax"}},
    ]


MODELS = {
    "cnn": {"title": "golden-cnn", "keras_name": "golden_cnn", "layers": cnn_layers,
            "input": (4, 8, 8, 2), "classes": 5, "loss": "categorical_crossentropy"},
    "mlp": {"title": "golden-mlp", "keras_name": "golden_mlp", "layers": mlp_layers,
            "input": (4, 10), "classes": 3, "loss": "sparse_categorical_crossentropy"},
}


# Tolerances of tests/test_golden.c; float32 torch must meet them, or they are not fair to amuse.
TOL_OUTPUT, TOL_LOSS, TOL_GRAD_ABS, TOL_GRAD_REL, TOL_WEIGHTS = 1e-5, 1e-5, 1e-4, 1e-3, 1e-4


def float32_check(layers, params, x, y, output, loss, grads, trained):
    """Redo everything in float32 (what amuse computes in) and require the test's tolerances."""
    p32 = {k: v.float() for k, v in params.items()}
    x32, y32 = x.float(), y.float()
    unused = {"relu": [], "pool": []}
    out32, loss32, grads32 = loss_and_grads(layers, p32, x32, y32, unused)
    worst = {"output": (out32.double() - output).abs().max().item(),
             "loss": abs(loss32.item() - loss.item()), "grad": 0.0, "steps": 0.0}
    for k in grads:
        err = (grads32[k].double() - grads[k]).abs()
        worst["grad"] = max(worst["grad"], err.max().item())
        assert (err <= TOL_GRAD_ABS + TOL_GRAD_REL * grads[k].abs()).all(), k
    for opt, (losses, weights) in trained.items():
        losses32, weights32 = train(layers, p32, x32, y32, opt, unused)
        worst["steps"] = max([worst["steps"]] + [abs(a - b) for a, b in zip(losses32, losses)] +
                             [(weights32[k].double() - weights[k]).abs().max().item()
                              for k in weights])
    print("  float32 torch vs float64 reference: " +
          ", ".join("%s %.2g" % kv for kv in worst.items()))
    assert worst["output"] <= TOL_OUTPUT and worst["loss"] <= TOL_LOSS
    assert worst["steps"] <= min(TOL_WEIGHTS, TOL_LOSS)


def naive_forward(layers, params, x):
    """Slow, loop-by-loop Keras semantics in numpy (NHWC, HWIO, TF "same" padding), written
    independently of forward() so that a layout slip in the torch conversion cannot go unseen."""
    h = np.array(x, dtype=np.float64)
    acts = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "tanh": np.tanh, "linear": lambda z: z,
            "softmax": lambda z: np.exp(z - z.max(-1, keepdims=True))
            / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)}
    for layer in layers:
        kind, cfg = layer["class_name"], layer["config"]
        if kind == "Conv2D":
            k = params[cfg["name"] + "/kernel"].numpy()
            b = params[cfg["name"] + "/bias"].numpy()
            kh, kw, cin, cout = k.shape
            sh, sw = cfg["strides"]
            n, hi, wi, _ = h.shape
            if cfg["padding"] == "same":
                ho, wo = -(-hi // sh), -(-wi // sw)
                top = max((ho - 1) * sh + kh - hi, 0) // 2
                left = max((wo - 1) * sw + kw - wi, 0) // 2
            else:
                ho, wo, top, left = (hi - kh) // sh + 1, (wi - kw) // sw + 1, 0, 0
            z = np.zeros((n, ho, wo, cout))
            for i in range(ho):
                for j in range(wo):
                    for di in range(kh):
                        for dj in range(kw):
                            r, c = i * sh + di - top, j * sw + dj - left
                            if 0 <= r < hi and 0 <= c < wi:
                                z[:, i, j, :] += h[:, r, c, :] @ k[di, dj]
            h = acts[cfg["activation"]](z + b)
        elif kind == "MaxPooling2D":
            ph, pw = cfg["pool_size"]
            n, hi, wi, c = h.shape
            h = h[:, :hi // ph * ph, :wi // pw * pw, :].reshape(n, hi // ph, ph, wi // pw, pw, c)
            h = h.max(axis=(2, 4))
        elif kind == "Flatten":
            h = h.reshape(h.shape[0], -1)
        elif kind == "Dense":
            z = h @ params[cfg["name"] + "/kernel"].numpy() + params[cfg["name"] + "/bias"].numpy()
            h = acts[cfg["activation"]](z)
    return h


def config_document(spec, layers):
    return {
        "name": spec["title"],
        "model": {"class_name": "Sequential",
                  "config": {"name": spec["keras_name"], "layers": layers}},
        "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                    "loss": spec["loss"], "metrics": ["accuracy"]},
    }


def build(key, seed):
    """One attempt at a fixture; returns None when the draw lands near a ReLU kink or a max-pool
    tie (at the start or during any optimizer step), so that the caller tries the next seed."""
    spec = MODELS[key]
    layers = spec["layers"]()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*spec["input"], generator=gen)
    batch, classes = spec["input"][0], spec["classes"]
    labels = torch.randint(0, classes, (batch,), generator=gen)
    y = F.one_hot(labels, classes).to(torch.float64)
    params = init_params(layers, spec["input"][1:], gen)

    checks = {"relu": [], "pool": []}
    output, loss, grads = loss_and_grads(layers, params, x, y, checks)
    trained = {opt: train(layers, params, x, y, opt, checks) for opt in OPTIMIZERS}
    if min(checks["relu"], default=1) < KINK_MARGIN or min(checks["pool"], default=1) < POOL_MARGIN:
        return None
    torch_sgd_cross_check(layers, params, x, y, trained["sgd"][1])
    naive = naive_forward(layers, params, x.numpy())
    assert np.abs(naive - output.numpy()).max() < 1e-12, "naive NHWC forward disagrees"

    float32_check(layers, params, x, y, output, loss, grads, trained)

    tensors = {"x": x}
    if spec["loss"] == "categorical_crossentropy":
        tensors["y"] = y
    else:
        tensors["labels"] = labels.to(torch.float64)
    names = weight_names(layers)
    for k in names:
        tensors[k] = params[k]
    tensors["output"] = output
    tensors["loss"] = loss.reshape(1)
    for k in names:
        tensors["grad/" + k] = grads[k]
    for opt, (losses, weights) in trained.items():
        tensors[opt + "/losses"] = torch.tensor(losses)
        for k in names:
            tensors[opt + "/" + k] = weights[k]
    arrays = {k: v.detach().numpy().astype(np.float32) for k, v in tensors.items()}
    metadata = {
        "generator": "tests/golden/make_golden.py",
        "torch": torch.__version__,
        "seed": seed,
        "optimizers": json.dumps(OPTIMIZERS, sort_keys=True),
        "min_relu_margin": "%.6g" % min(checks["relu"], default=float("inf")),
        "min_pool_margin": "%.6g" % min(checks["pool"], default=float("inf")),
    }
    return config_document(spec, layers), arrays, metadata


# ------------------------------------------------------------------------------ sequence models

SEQ_MODELS = {
    "lstm": {"title": "golden-lstm", "cell": "LSTM", "batch": 3, "steps": 5, "vocab": 7,
             "embed": 4, "units": 5},
    "gru": {"title": "golden-gru", "cell": "GRU", "batch": 3, "steps": 5, "vocab": 7,
            "embed": 4, "units": 5},
}


def seq_layers(spec):
    cell = spec["cell"]
    return [
        {"class_name": "InputLayer",
         "config": {"name": "input_1", "batch_input_shape": [None, spec["steps"]],
                    "dtype": "int32"}},
        {"class_name": "Embedding",
         "config": {"name": "embedding", "input_dim": spec["vocab"], "output_dim": spec["embed"]}},
        {"class_name": cell,
         "config": {"name": cell.lower(), "units": spec["units"], "return_sequences": True}},
        {"class_name": "Dense",
         "config": {"name": "dense", "units": spec["vocab"], "activation": "softmax"}},
    ]


def lstm_torch_params(kernel, recurrent, bias):
    """Keras LSTM -> torch.nn.LSTM. Both order the gates i, f, c(=g), o, so the mapping is a
    transpose: weight_ih = kernel^T (4u, in), weight_hh = recurrent_kernel^T (4u, u). Keras has
    one bias, torch two that are simply added: bias_ih = bias, bias_hh = 0 (any split with
    bias_ih + bias_hh = bias is the same model; importing torch weights: bias = b_ih + b_hh)."""
    return {"weight_ih_l0": kernel.t(), "weight_hh_l0": recurrent.t(),
            "bias_ih_l0": bias, "bias_hh_l0": torch.zeros_like(bias)}


def gru_keras_to_torch_order(w, units):
    """Keras GRU gate blocks (z, r, h) along the last axis -> torch's (r, z, n)."""
    z, r, h = w.split(units, dim=-1)
    return torch.cat([r, z, h], dim=-1)


def gru_torch_params(kernel, recurrent, bias, units):
    """Keras GRU (reset_after=True) -> torch.nn.GRU. torch computes
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): exactly reset_after with Keras's bias (2, 3u),
    row 0 the input bias and row 1 the recurrent bias. Gates reorder (z, r, h) -> (r, z, n) and
    transpose; torch's h' = (1 - z) * n + z * h is Keras's too."""
    order = lambda w: gru_keras_to_torch_order(w, units)
    return {"weight_ih_l0": order(kernel).t(), "weight_hh_l0": order(recurrent).t(),
            "bias_ih_l0": order(bias[0]), "bias_hh_l0": order(bias[1])}


def seq_forward(spec, params, ids):
    """Probabilities (batch, steps, vocab) through torch's own LSTM / GRU kernels (the ones
    nn.LSTM / nn.GRU call, given the flat weight list directly so autograd reaches the
    Keras-layout leaves)."""
    units, cell = spec["units"], spec["cell"]
    emb = params["embedding/embeddings"][ids]
    name = cell.lower()
    h0 = torch.zeros(1, emb.shape[0], units, dtype=emb.dtype)
    if cell == "LSTM":
        w = lstm_torch_params(params[name + "/kernel"], params[name + "/recurrent_kernel"],
                              params[name + "/bias"])
        flat = [w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]]
        out = torch._VF.lstm(emb, (h0, h0.clone()), flat, True, 1, 0.0, False, False, True)[0]
    else:
        w = gru_torch_params(params[name + "/kernel"], params[name + "/recurrent_kernel"],
                             params[name + "/bias"], units)
        flat = [w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]]
        out = torch._VF.gru(emb, h0, flat, True, 1, 0.0, False, False, True)[0]
    return torch.softmax(out @ params["dense/kernel"] + params["dense/bias"], dim=-1)


def seq_naive_forward(spec, params, ids):
    """Keras's formulas, step by step in numpy, independent of the torch mapping above."""
    p = {k: v.detach().numpy() for k, v in params.items()}
    units, name = spec["units"], spec["cell"].lower()
    k, r, b = p[name + "/kernel"], p[name + "/recurrent_kernel"], p[name + "/bias"]
    sig = lambda v: 1 / (1 + np.exp(-v))
    x = p["embedding/embeddings"][ids.numpy()]
    batch, steps = ids.shape
    out = np.zeros((batch, steps, units))
    for i in range(batch):
        h, c = np.zeros(units), np.zeros(units)
        for t in range(steps):
            if spec["cell"] == "LSTM":
                z = x[i, t] @ k + h @ r + b
                ig, fg = sig(z[:units]), sig(z[units:2 * units])
                cg, og = np.tanh(z[2 * units:3 * units]), sig(z[3 * units:])
                c = fg * c + ig * cg
                h = og * np.tanh(c)
            else:
                xz, hz = x[i, t] @ k + b[0], h @ r + b[1]
                zg = sig(xz[:units] + hz[:units])
                rg = sig(xz[units:2 * units] + hz[units:2 * units])
                ng = np.tanh(xz[2 * units:] + rg * hz[2 * units:])
                h = zg * h + (1 - zg) * ng
            out[i, t] = h
    z = out @ p["dense/kernel"] + p["dense/bias"]
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def seq_loss(p, labels):
    """Sparse categorical cross-entropy, mean over batch * steps rows."""
    assert p.detach().min().item() > EPSILON_CLIP
    picked = p.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return -torch.log(picked.clamp(EPSILON_CLIP, 1 - EPSILON_CLIP)).mean()


def seq_loss_and_grads(spec, params, ids, labels):
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    p = seq_forward(spec, leaves, ids)
    loss = seq_loss(p, labels)
    loss.backward()
    return p.detach(), loss.detach(), {k: v.grad.detach().clone() for k, v in leaves.items()}


def seq_train(spec, params, ids, labels, opt):
    params = {k: v.clone() for k, v in params.items()}
    state, losses = {}, []
    for t in range(1, STEPS + 1):
        _, loss, grads = seq_loss_and_grads(spec, params, ids, labels)
        losses.append(loss.item())
        keras_update(opt, params, grads, state, t)
    return losses, params


def build_seq(key, seed):
    spec = SEQ_MODELS[key]
    layers = seq_layers(spec)
    gen = torch.Generator().manual_seed(seed)
    b, t, v, e, u = spec["batch"], spec["steps"], spec["vocab"], spec["embed"], spec["units"]
    gates = (4 if spec["cell"] == "LSTM" else 3) * u
    name = spec["cell"].lower()
    ids = torch.randint(0, v, (b, t), generator=gen)
    labels = torch.randint(0, v, (b, t), generator=gen)
    params = {"embedding/embeddings": torch.randn(v, e, generator=gen) * 0.5,
              name + "/kernel": torch.randn(e, gates, generator=gen) * 0.5,
              name + "/recurrent_kernel": torch.randn(u, gates, generator=gen) * 0.5,
              name + "/bias": torch.randn(*((gates,) if spec["cell"] == "LSTM" else (2, gates)),
                                          generator=gen) * 0.5,
              "dense/kernel": torch.randn(u, v, generator=gen) * 0.5,
              "dense/bias": torch.randn(v, generator=gen) * 0.5}
    output, loss, grads = seq_loss_and_grads(spec, params, ids, labels)
    naive = seq_naive_forward(spec, params, ids)
    assert np.abs(naive - output.numpy()).max() < 1e-12, "Keras formulas disagree with torch"
    trained = {opt: seq_train(spec, params, ids, labels, opt) for opt in OPTIMIZERS}
    # float32 torch must meet the test's tolerances, or they are not fair to amuse.
    p32 = {k: w.float() for k, w in params.items()}
    out32, loss32, grads32 = seq_loss_and_grads(spec, p32, ids, labels)
    assert (out32.double() - output).abs().max().item() <= TOL_OUTPUT
    assert abs(loss32.item() - loss.item()) <= TOL_LOSS
    for k in grads:
        assert ((grads32[k].double() - grads[k]).abs() <=
                TOL_GRAD_ABS + TOL_GRAD_REL * grads[k].abs()).all(), k
    names = list(params)
    tensors = {"x": ids.to(torch.float64), "labels": labels.to(torch.float64)}
    for k in names:
        tensors[k] = params[k]
    tensors["output"] = output
    tensors["loss"] = loss.reshape(1)
    for k in names:
        tensors["grad/" + k] = grads[k]
    for opt, (losses, weights) in trained.items():
        tensors[opt + "/losses"] = torch.tensor(losses)
        for k in names:
            tensors[opt + "/" + k] = weights[k]
    arrays = {k: w.detach().numpy().astype(np.float32) for k, w in tensors.items()}
    metadata = {"generator": "tests/golden/make_golden.py", "torch": torch.__version__,
                "seed": seed, "optimizers": json.dumps(OPTIMIZERS, sort_keys=True)}
    config = {"name": spec["title"],
              "model": {"class_name": "Sequential",
                        "config": {"name": spec["title"].replace("-", "_"), "layers": layers}},
              "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                          "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}}
    return config, arrays, metadata


def format_config(config):
    """The config as JSON with one layer per line (readable, and diffs stay small)."""
    layers = config["model"]["config"]["layers"]
    lines = ",\n".join("      " + json.dumps(l) for l in layers)
    return ('{"name": %s,\n "model": {"class_name": "Sequential", "config": {"name": %s, "layers": [\n'
            '%s\n ]}},\n "compile": %s}\n') % (
        json.dumps(config["name"]), json.dumps(config["model"]["config"]["name"]), lines,
        json.dumps(config["compile"]))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for i, key in enumerate(list(MODELS) + list(SEQ_MODELS)):
        if key in SEQ_MODELS:
            result = build_seq(key, 2000 + i)  # smooth activations: no kinks or ties to avoid
        else:
            for seed in range(1000 + 100 * i, 1100 + 100 * i):
                result = build(key, seed)
                if result is not None:
                    break
            else:
                sys.exit("no seed gave a fixture clear of ReLU kinks and pooling ties")
        config, arrays, metadata = result
        json_path = os.path.join(OUT_DIR, key + ".json")
        st_path = os.path.join(OUT_DIR, key + ".safetensors")
        with open(json_path, "w") as f:
            f.write(format_config(config))
        write_safetensors(st_path, arrays, metadata)
        back, meta = read_safetensors(st_path)
        assert set(back) == set(arrays) and meta == {k: str(v) for k, v in metadata.items()}
        for k in arrays:
            assert np.array_equal(back[k], arrays[k]), k
        print("%s: seed %d, loss %.6f, %d tensors, %d bytes; losses adam %s rmsprop %s sgd %s" % (
            key, metadata["seed"], arrays["loss"][0], len(arrays), os.path.getsize(st_path),
            np.round(arrays["adam/losses"], 5), np.round(arrays["rmsprop/losses"], 5),
            np.round(arrays["sgd/losses"], 5)))


if __name__ == "__main__":
    main()
