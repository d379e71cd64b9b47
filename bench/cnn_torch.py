#!/usr/bin/python3
"""cnn_torch.py - the PyTorch peer of bench/cnn.sh: the seed CNN (or DNN) on Fashion-MNIST.

Runs the same recipe as amuse's models/fashion-{cnn,dnn}.json, the Keras way:
  - the first --train-limit samples of the training file, scaled to [0, 1];
  - validation_split 0.2: the LAST 20% held out before shuffling, the rest shuffled every epoch;
  - glorot-uniform kernels and zero biases (Keras defaults); Adam(lr 1e-3, eps 1e-7);
    categorical cross-entropy on the softmax output (fused with the softmax here, as Keras does);
  - batch 128, the last partial batch included.
It measures throughput with the same definitions as `amuse train` / `amuse eval`:
  train_img_s = training samples seen / seconds spent in training steps (batch gather, forward,
                loss, backward, update; validation excluded), over all epochs;
  infer_img_s = t10k samples / seconds of inference + loss at batch 128 (torch.inference_mode).
Torch runs NCHW, its fastest CPU layout (oneDNN); the architecture and data are the same.

Not a Keras clone in every detail: Flatten here flattens NCHW (c, h, w) rather than NHWC; for a
model trained from scratch that is only a permutation of the Dense kernel's rows.

  /usr/bin/python3 bench/cnn_torch.py --quick --threads 2 --json out.json
"""

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (gzip): magic 0x00 0x00 dtype ndim, ndim big-endian u32 dims, then the data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        sys.exit("%s: not an unsigned-byte IDX file" % path)
    ndim = raw[3]
    dims = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    count = int(np.prod(dims))
    data = np.frombuffer(raw, dtype=np.uint8, count=count, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load(data_dir, split, limit=None):
    images = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % split))
    labels = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % split))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (n, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def build(kind, classes=10):
    if kind == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 12 * 12, 128), nn.ReLU(),
            nn.Linear(128, classes))
    elif kind == "dnn":
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 64), nn.ReLU(),
            nn.Linear(64, classes))
    else:
        raise ValueError(kind)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            # Keras glorot_uniform: fan_in = in*kh*kw, fan_out = out*kh*kw, as torch computes them.
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def evaluate(model, x, y, batch):
    """Mean loss, accuracy, per-class accuracy and the seconds spent in inference + loss."""
    model.eval()
    total_loss, correct, seconds = 0.0, 0, 0.0
    classes = 10
    hit = np.zeros(classes, dtype=np.int64)
    seen = np.zeros(classes, dtype=np.int64)
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            start = time.perf_counter()
            xb, yb = x[i:i + batch], y[i:i + batch]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, reduction="sum")
            seconds += time.perf_counter() - start
            pred = logits.argmax(1)
            total_loss += loss.item()
            ok = (pred == yb).numpy()
            correct += int(ok.sum())
            np.add.at(hit, yb.numpy(), ok)
            np.add.at(seen, yb.numpy(), 1)
    n = len(x)
    return {"loss": total_loss / n, "accuracy": correct / n, "seconds": seconds,
            "class_accuracy": (hit / np.maximum(seen, 1)).round(4).tolist()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["cnn", "dnn"], default="cnn")
    ap.add_argument("--quick", action="store_true",
                    help="1 epoch on the first 12800 samples (throughput only)")
    ap.add_argument("--epochs", type=int, help="default 10 (1 with --quick)")
    ap.add_argument("--train-limit", type=int,
                    help="use the first N training samples (default all; 12800 with --quick)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--validation-split", type=float, default=0.2)
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    epochs = args.epochs or (1 if args.quick else 10)
    limit = args.train_limit or (12800 if args.quick else None)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    x, y = load(args.data_dir, "train", limit)
    split = int(len(x) * (1 - args.validation_split))  # Keras: the last fraction is held out
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    x_test, y_test = load(args.data_dir, "t10k")

    model = build(args.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    batch = args.batch_size
    history = []
    print("torch %s: %s, %d train / %d validation samples, %d epochs, batch %d, %d threads" % (
        torch.__version__, args.model, len(x_train), len(x_val), epochs, batch, args.threads),
        flush=True)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(x_train)))
        seconds, loss_sum, correct = 0.0, 0.0, 0
        for i in range(0, len(x_train), batch):
            start = time.perf_counter()
            idx = order[i:i + batch]
            xb, yb = x_train[idx], y_train[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - start
            loss_sum += loss.item() * len(idx)
            correct += int((logits.detach().argmax(1) == yb).sum())
        val = evaluate(model, x_val, y_val, batch) if len(x_val) else None
        entry = {"epoch": epoch, "loss": loss_sum / len(x_train), "accuracy": correct / len(x_train),
                 "val_loss": val["loss"] if val else None,
                 "val_accuracy": val["accuracy"] if val else None,
                 "train_seconds": seconds, "val_seconds": val["seconds"] if val else 0.0,
                 "train_samples": len(x_train)}
        history.append(entry)
        print("epoch %d/%d - %.1fs train (%.0f img/s) - loss: %.4f - accuracy: %.4f%s" % (
            epoch, epochs, seconds, len(x_train) / seconds, entry["loss"], entry["accuracy"],
            " - val_loss: %.4f - val_accuracy: %.4f" % (val["loss"], val["accuracy"]) if val else ""),
            flush=True)

    test = evaluate(model, x_test, y_test, batch)
    train_seconds = sum(h["train_seconds"] for h in history)
    train_samples = sum(h["train_samples"] for h in history)
    result = {
        "framework": "torch", "torch_version": torch.__version__, "model": args.model,
        "mode": "quick" if args.quick else "full", "epochs": epochs, "threads": args.threads,
        "batch": batch, "seed": args.seed, "train_limit": limit, "train_samples": len(x_train),
        "val_samples": len(x_val), "train_seconds": train_seconds,
        "train_img_s": train_samples / train_seconds,
        "test_samples": len(x_test), "infer_seconds": test["seconds"],
        "infer_img_s": len(x_test) / test["seconds"], "test_loss": test["loss"],
        "test_acc": test["accuracy"], "class_accuracy": test["class_accuracy"],
        "mkldnn": torch.backends.mkldnn.is_available(), "machine": platform.machine(),
        "history": history,
    }
    print("torch %s: train %.0f img/s, inference %.0f img/s, test accuracy %.4f, loss %.4f" % (
        args.model, result["train_img_s"], result["infer_img_s"], test["accuracy"], test["loss"]))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
