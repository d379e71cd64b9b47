#!/usr/bin/env bash
# The main job on embedded defaults: install what amuse needs, build it, train the default image
# model (the seed CNN on Fashion-MNIST) with a live progress bar, and evaluate it on the test set.
# The trained model lands in out/fashion-cnn (config.json, model.safetensors, history.json,
# training.svg). Set AMUSE_EPOCHS to train for fewer epochs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

epochs=()
[ -n "${AMUSE_EPOCHS:-}" ] && epochs=(--epochs "$AMUSE_EPOCHS")
build/amuse train models/fashion-cnn.json --output out/fashion-cnn "${epochs[@]}"
build/amuse eval out/fashion-cnn
