#!/usr/bin/python3
"""make_voice_layers.py - PyTorch reference for the voice-model layers (tests/test_golden.c).

Run once with Debian's Python (python3-torch), from the repository root:

    /usr/bin/python3 tests/golden/make_voice_layers.py

It writes tests/fixtures/golden/voice.{json,safetensors} (committed; CI never needs torch). The
model is Input(6, 5, 3) -> DepthwiseConv2D(3x3, same, depth_multiplier 2, tanh) ->
BatchNormalization(momentum 0.9, epsilon 1e-3) -> AveragePooling2D(2, same) ->
GlobalAveragePooling2D -> Dense(4, softmax), in Keras layouts (channels-last, depthwise kernel
(kh, kw, in, multiplier)); torch computes in NCHW inside, in float64. What it does not do: train,
or use the `safetensors` package (make_golden.py's writer is reused).

Tensors: x, labels (F32 class indices), the initial weights (moving statistics drawn away from
their defaults), output_inference (training=0, the moving statistics), output (training=1, the
batch statistics), loss (training=1, sparse categorical cross-entropy, mean over the batch),
grad/<weight> for the trainable weights, after/<layer>/moving_{mean,variance} after that one
training forward (Bessel-corrected variance in the moving update, as torch and TF's fused kernel).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import write_safetensors, read_safetensors  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "golden")
H, W, C, M, CLASSES, BATCH = 6, 5, 3, 2, 4, 5

LAYERS = [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, H, W, C]}},
    {"class_name": "DepthwiseConv2D", "config": {"name": "dw", "kernel_size": [3, 3],
                                                  "padding": "same", "depth_multiplier": M,
                                                  "activation": "tanh"}},
    {"class_name": "BatchNormalization", "config": {"name": "bn", "momentum": 0.9,
                                                     "epsilon": 0.001}},
    {"class_name": "AveragePooling2D", "config": {"name": "pool", "pool_size": [2, 2],
                                                   "padding": "same"}},
    {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}},
    {"class_name": "Dense", "config": {"name": "head", "units": CLASSES,
                                       "activation": "softmax"}},
]


def forward(p, x, training, running):
    h = x.permute(0, 3, 1, 2)  # NCHW
    k = p["dw/depthwise_kernel"]  # (3, 3, C, M) -> (C*M, 1, 3, 3)
    weight = k.permute(2, 3, 0, 1).reshape(C * M, 1, 3, 3)
    h = torch.tanh(F.conv2d(h, weight, p["dw/bias"], padding=1, groups=C))
    h = F.batch_norm(h, running[0], running[1], p["bn/gamma"], p["bn/beta"], training=training,
                     momentum=0.1, eps=0.001)  # torch's momentum is 1 - Keras's
    # TensorFlow "same" for 6x5, pool 2 stride 2: no rows added, one column at the right; the
    # average counts only cells inside the input.
    padded = F.pad(h, (0, 1, 0, 0))
    ones = F.pad(torch.ones_like(h[:1, :1]), (0, 1, 0, 0))
    h = F.avg_pool2d(padded, 2) / F.avg_pool2d(ones, 2)
    h = h.mean(dim=(2, 3))
    return torch.softmax(h @ p["head/kernel"] + p["head/bias"], dim=1)


def main():
    gen = torch.Generator().manual_seed(77)
    x = torch.randn(BATCH, H, W, C, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    p = {"dw/depthwise_kernel": torch.randn(3, 3, C, M, generator=gen, dtype=torch.float64) * 0.5,
         "dw/bias": torch.randn(C * M, generator=gen, dtype=torch.float64) * 0.2,
         "bn/gamma": 1 + 0.3 * torch.randn(C * M, generator=gen, dtype=torch.float64),
         "bn/beta": 0.3 * torch.randn(C * M, generator=gen, dtype=torch.float64),
         "head/kernel": torch.randn(C * M, CLASSES, generator=gen, dtype=torch.float64),
         "head/bias": 0.2 * torch.randn(CLASSES, generator=gen, dtype=torch.float64)}
    moving_mean = 0.2 * torch.randn(C * M, generator=gen, dtype=torch.float64)
    moving_var = 0.5 + torch.rand(C * M, generator=gen, dtype=torch.float64)
    for v in p.values():
        v.requires_grad_(True)
    with torch.no_grad():
        out_inf = forward(p, x, False, (moving_mean.clone(), moving_var.clone()))
    running = (moving_mean.clone(), moving_var.clone())
    out = forward(p, x, True, running)
    loss = -torch.log(out[torch.arange(BATCH), labels]).mean()
    loss.backward()

    tensors = {"x": x, "labels": labels.to(torch.float64), "output_inference": out_inf,
               "output": out, "loss": loss.reshape(1),
               "bn/moving_mean": moving_mean, "bn/moving_variance": moving_var,
               "after/bn/moving_mean": running[0], "after/bn/moving_variance": running[1]}
    for k, v in p.items():
        tensors[k] = v
        tensors["grad/" + k] = v.grad
    arrays = {k: v.detach().numpy().astype(np.float32) for k, v in tensors.items()}
    metadata = {"generator": "tests/golden/make_voice_layers.py", "torch": torch.__version__,
                "seed": 77}
    os.makedirs(OUT_DIR, exist_ok=True)
    config = {"name": "voice-layers",
              "model": {"class_name": "Sequential", "config": {"name": "voice_layers",
                                                               "layers": LAYERS}},
              "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"}}
    import json
    with open(os.path.join(OUT_DIR, "voice.json"), "w") as f:
        f.write(json.dumps(config, indent=1) + "\n")
    path = os.path.join(OUT_DIR, "voice.safetensors")
    write_safetensors(path, arrays, metadata)
    back, _ = read_safetensors(path)
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)
    print("voice: loss %.6f, %d tensors, %d bytes" % (loss.item(), len(arrays),
                                                      os.path.getsize(path)))


if __name__ == "__main__":
    main()
