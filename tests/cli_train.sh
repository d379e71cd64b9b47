#!/usr/bin/env bash
# cli_train.sh - the amuse command end to end on real Fashion-MNIST: train a tiny recipe, then
# summary, eval and predict on what it saved; --resume equal to an uninterrupted run; --help on
# every command; and each kind of bad input (a bad learning-rate schedule, a missing or
# mismatched training state, a missing or invalid config, unknown layer, corrupt gzip IDX, a
# non-image, a huge PNG, a truncated model.safetensors) exits non-zero with a message on stderr
# naming the file or field, leaving no temp files behind and (in the ASan build) no sanitizer
# report.
#
# usage: bash cli_train.sh <path to amuse> <fixtures dir>
# Needs the Debian package dataset-fashion-mnist and /usr/bin/python3 (stdlib only: gzip, zlib,
# struct) to turn a t10k image into a PNG. It does not check accuracy (bench/cnn.sh does).
set -u

AMUSE=$(realpath "$1")
DATA=/usr/share/datasets/fashion-mnist
PYTHON=/usr/bin/python3
passed=0
failed=0

ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-cli-train.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [ ! -f "$DATA/t10k-images-idx3-ubyte.gz" ] || [ ! -x "$PYTHON" ]; then
    echo "FAIL prerequisites: need $DATA (dataset-fashion-mnist) and $PYTHON"
    echo "0 passed, 1 failed"
    exit 1
fi

LABELS='"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"'

# write_recipe FILE LAYER-CLASS TRAIN-IMAGES: a tiny CNN recipe on the t10k files.
write_recipe() {
    cat >"$1" <<EOF
{
  "name": "tiny-cnn",
  "input": {"type": "image", "color": "grey", "invert": false},
  "labels": [$LABELS],
  "model": {"class_name": "Sequential", "config": {"name": "tiny_cnn", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 28, 28, 1]}},
    {"class_name": "$2", "config": {"filters": 4, "kernel_size": [3, 3], "activation": "relu"}},
    {"class_name": "MaxPooling2D", "config": {"pool_size": [2, 2]}},
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}
  ]}},
  "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.003}},
              "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
  "fit": {"batch_size": 64, "epochs": 3, "validation_split": 0.2, "seed": 1},
  "data": {"format": "idx",
           "train_images": "$3",
           "train_labels": "$DATA/t10k-labels-idx1-ubyte.gz",
           "test_images": "$DATA/t10k-images-idx3-ubyte.gz",
           "test_labels": "$DATA/t10k-labels-idx1-ubyte.gz"}
}
EOF
}

# no_temp_files: nothing named *.tmp.* anywhere under $TMP.
no_temp_files() {
    [ -z "$(find "$TMP" -name '*.tmp.*' -print -quit)" ]
}

# expect_failure NAME NEEDLE CMD...: CMD exits non-zero, stderr contains NEEDLE, no temp files.
expect_failure() {
    local name=$1 needle=$2
    shift 2
    "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
    local rc=$?
    if [ $rc -eq 0 ]; then
        bad "$name: exited 0"
    elif [ $rc -ge 128 ]; then
        bad "$name: killed by signal $((rc - 128))"
    elif grep -qE 'Sanitizer|runtime error:' "$TMP/err.txt"; then
        bad "$name: sanitizer report (leak or UB on the error path): $(grep -m1 -E 'Sanitizer|runtime error:' "$TMP/err.txt")"
    elif ! grep -qF -- "$needle" "$TMP/err.txt"; then
        bad "$name: stderr does not name '$needle': $(head -c 300 "$TMP/err.txt")"
    elif ! no_temp_files; then
        bad "$name: temp files left: $(find "$TMP" -name '*.tmp.*')"
    else
        ok "$name (exit $rc): $(head -n 1 "$TMP/err.txt" | head -c 160)"
    fi
}

# ---------------------------------------------------------------- train / summary / eval / predict

write_recipe "$TMP/recipe.json" Conv2D "$DATA/t10k-images-idx3-ubyte.gz"
MODEL="$TMP/model"
if "$AMUSE" train "$TMP/recipe.json" -o "$MODEL" --train-limit 512 --epochs 1 --threads 2 \
    --no-eval >"$TMP/train.out" 2>"$TMP/train.err"; then
    missing=""
    for f in config.json model.safetensors history.json training.svg; do
        [ -s "$MODEL/$f" ] || missing="$missing $f"
    done
    if [ -n "$missing" ]; then
        bad "train: missing$missing"
    elif ! grep -q '"train_samples": 409' "$MODEL/history.json"; then
        bad "train: history.json lacks train_samples 409 (floor(512 * 0.8)): $(cat "$MODEL/history.json")"
    elif ! no_temp_files; then
        bad "train: temp files left"
    else
        ok "train writes config.json, model.safetensors, history.json, training.svg"
    fi
else
    bad "train failed: $(tail -n 3 "$TMP/train.err")"
fi

# ---------------------------------------------------------------- --resume
# One epoch, then --resume to two, gives the same weights byte for byte as two epochs in one go
# (one thread); the resumed run starts at epoch 2 and its history covers both epochs.
if "$AMUSE" train "$TMP/recipe.json" -o "$TMP/whole" --train-limit 512 --epochs 2 --threads 1 \
    --no-eval -q >"$TMP/whole.out" 2>&1 &&
    "$AMUSE" train "$TMP/recipe.json" -o "$TMP/part" --train-limit 512 --epochs 1 --threads 1 \
        --no-eval -q >"$TMP/part.out" 2>&1 &&
    "$AMUSE" train "$TMP/recipe.json" -o "$TMP/part" --resume "$TMP/part" --train-limit 512 \
        --epochs 2 --threads 1 --no-eval >"$TMP/resume.out" 2>&1; then
    if ! cmp -s "$TMP/whole/model.safetensors" "$TMP/part/model.safetensors"; then
        bad "train --resume: weights differ from an uninterrupted run"
    elif ! grep -q "^Resuming from $TMP/part/training_state.safetensors: 1 epochs done" \
        "$TMP/resume.out" || grep -q "^Epoch 1/2" "$TMP/resume.out" ||
        ! grep -q "^Epoch 2/2" "$TMP/resume.out"; then
        bad "train --resume: output: $(head -c 600 "$TMP/resume.out")"
    elif [ "$(grep -c '"epoch"' "$TMP/part/history.json")" != 2 ] ||
        [ ! -s "$TMP/part/training_state.safetensors" ]; then
        bad "train --resume: history.json or state: $(cat "$TMP/part/history.json")"
    elif ! no_temp_files; then
        bad "train --resume: temp files left"
    else
        ok "train 1 epoch + --resume to 2 == 2 epochs, byte for byte"
    fi
else
    bad "train --resume failed: $(tail -n 3 "$TMP/whole.out" "$TMP/part.out" "$TMP/resume.out")"
fi

if "$AMUSE" summary "$MODEL" >"$TMP/summary.out" 2>&1 &&
    grep -q 'Total params: 6,810' "$TMP/summary.out"; then
    # 3*3*1*4 + 4 = 40; 13*13*4 = 676 -> 676*10 + 10 = 6770; 40 + 6770 = 6810
    ok "summary prints the total (6,810)"
else
    bad "summary: $(cat "$TMP/summary.out")"
fi

if "$AMUSE" eval "$MODEL" --json --limit 500 >"$TMP/eval.out" 2>"$TMP/eval.err" &&
    "$PYTHON" -c 'import json, sys
r = json.load(open(sys.argv[1]))
assert r["samples"] == 500 and 0.0 <= r["accuracy"] <= 1.0 and len(r["class_accuracy"]) == 10, r
' "$TMP/eval.out" 2>"$TMP/eval.py.err"; then
    ok "eval --json --limit 500 prints JSON with accuracy: $(head -c 120 "$TMP/eval.out")"
else
    bad "eval: $(cat "$TMP/eval.out" "$TMP/eval.err" "$TMP/eval.py.err" | head -c 400)"
fi

# A real t10k image as a PNG, written with the stdlib only; plus a PNG that declares 100000 x
# 100000 pixels (an image bomb) and a file that is not an image at all.
"$PYTHON" - "$DATA/t10k-images-idx3-ubyte.gz" "$TMP" <<'EOF'
import gzip, struct, sys, zlib
images, out = sys.argv[1], sys.argv[2]
with gzip.open(images, "rb") as f:
    magic, n, h, w = struct.unpack(">IIII", f.read(16))
    assert magic == 0x803 and (h, w) == (28, 28)
    pixels = f.read(h * w)

def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)

def png(width, height, rows):
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))

rows = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))
open(out + "/img.png", "wb").write(png(w, h, rows))
open(out + "/huge.png", "wb").write(png(100000, 100000, b"\x00" * 64))
open(out + "/not-an-image.png", "wb").write(b"This is a text file, not a picture.\n" * 4)
EOF

if "$AMUSE" predict "$MODEL" "$TMP/img.png" >"$TMP/predict.out" 2>"$TMP/predict.err"; then
    # "<path>: <label> <probability>, ..." - the first label must be a Fashion-MNIST class.
    first=$(sed -e "s|^$TMP/img.png: ||" -e 's/ [0-9.]*\(,.*\)\{0,1\}$//' "$TMP/predict.out")
    case "$first" in
    "T-shirt/top" | Trouser | Pullover | Dress | Coat | Sandal | Shirt | Sneaker | Bag | "Ankle boot")
        ok "predict prints a Fashion-MNIST label: $(head -c 120 "$TMP/predict.out")" ;;
    *) bad "predict: first label '$first' not in the list: $(cat "$TMP/predict.out")" ;;
    esac
else
    bad "predict failed: $(cat "$TMP/predict.err")"
fi

# ---------------------------------------------------------------- --help

help_failures=""
for cmd in "" train summary eval predict; do
    # shellcheck disable=SC2086
    if ! "$AMUSE" $cmd --help >"$TMP/help.out" 2>&1 || ! grep -qi usage "$TMP/help.out"; then
        help_failures="$help_failures '${cmd:-amuse}'"
    fi
done
if [ -z "$help_failures" ]; then
    ok "--help exits 0 with usage for amuse, train, summary, eval, predict"
else
    bad "--help failed for:$help_failures"
fi

# ---------------------------------------------------------------- errors

expect_failure "train: missing config file" "$TMP/no-such-recipe.json" \
    "$AMUSE" train "$TMP/no-such-recipe.json" -o "$TMP/out-missing" -q

printf '{"name": "broken", "model": {"class_name": "Sequential",, }' >"$TMP/invalid.json"
expect_failure "train: invalid JSON config" "invalid JSON at byte" \
    "$AMUSE" train "$TMP/invalid.json" -o "$TMP/out-invalid" -q

expect_failure "train --resume: no state in the directory" \
    "$TMP/out-missing/training_state.safetensors: cannot open" \
    "$AMUSE" train "$TMP/recipe.json" -o "$TMP/out-resume" --resume "$TMP/out-missing" -q \
    --train-limit 64 --epochs 2 --no-eval
expect_failure "train --resume: epochs already reached" "the run already reached epoch 2" \
    "$AMUSE" train "$TMP/recipe.json" -o "$TMP/out-resume" --resume "$TMP/part" -q \
    --train-limit 512 --epochs 2 --no-eval
expect_failure "train --resume: other training data" \
    "metadata 'train_samples' is 409, but this run trains on 51 samples" \
    "$AMUSE" train "$TMP/recipe.json" -o "$TMP/out-resume" --resume "$TMP/part" -q \
    --train-limit 64 --epochs 3 --no-eval
sed -e 's|"learning_rate": 0.003|"learning_rate": {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.003, "decay_steps": 0, "decay_rate": 0.5}}|' \
    "$TMP/recipe.json" >"$TMP/bad-schedule.json"
expect_failure "train: bad learning-rate schedule" \
    "compile.optimizer.config.learning_rate.config.decay_steps must be > 0" \
    "$AMUSE" train "$TMP/bad-schedule.json" -o "$TMP/out-schedule" -q

write_recipe "$TMP/unknown-layer.json" Conv3D "$DATA/t10k-images-idx3-ubyte.gz"
expect_failure "train: unknown layer" "Conv3D" \
    "$AMUSE" train "$TMP/unknown-layer.json" -o "$TMP/out-unknown" -q

# A gzip stream cut short and with flipped bytes: named in the data section.
head -c 40000 "$DATA/t10k-images-idx3-ubyte.gz" >"$TMP/corrupt-images.gz"
printf '\xff\xff\xff\xff' | dd of="$TMP/corrupt-images.gz" bs=1 seek=20000 conv=notrunc 2>/dev/null
write_recipe "$TMP/corrupt.json" Conv2D "$TMP/corrupt-images.gz"
expect_failure "train: corrupt gzip IDX" "corrupt-images.gz" \
    "$AMUSE" train "$TMP/corrupt.json" -o "$TMP/out-corrupt" -q --train-limit 64 --epochs 1
# Full length, but with bytes in the middle of the deflate stream overwritten.
cp "$DATA/t10k-images-idx3-ubyte.gz" "$TMP/flipped-images.gz"
chmod u+w "$TMP/flipped-images.gz"
printf '\x00\xff\x00\xff\x00\xff\x00\xff' |
    dd of="$TMP/flipped-images.gz" bs=1 seek=300000 conv=notrunc 2>/dev/null
write_recipe "$TMP/flipped.json" Conv2D "$TMP/flipped-images.gz"
expect_failure "train: gzip IDX with damaged bytes" "flipped-images.gz" \
    "$AMUSE" train "$TMP/flipped.json" -o "$TMP/out-corrupt" -q --train-limit 64 --epochs 1
if [ -e "$TMP/out-corrupt/model.safetensors" ]; then
    bad "train: corrupt data still wrote a model"
fi

expect_failure "predict: not an image" "not-an-image.png" \
    "$AMUSE" predict "$MODEL" "$TMP/not-an-image.png"
expect_failure "predict: huge declared dimensions" "huge.png" \
    "$AMUSE" predict "$MODEL" "$TMP/huge.png"
expect_failure "predict: missing image" "no-such.png" \
    "$AMUSE" predict "$MODEL" "$TMP/no-such.png"

cp -r "$MODEL" "$TMP/truncated"
size=$(stat -c %s "$TMP/truncated/model.safetensors")
truncate -s $((size - 100)) "$TMP/truncated/model.safetensors"
expect_failure "eval: truncated model.safetensors" "model.safetensors" \
    "$AMUSE" eval "$TMP/truncated" --limit 10
expect_failure "predict: truncated model.safetensors" "model.safetensors" \
    "$AMUSE" predict "$TMP/truncated" "$TMP/img.png"

expect_failure "summary: not a model directory" "$TMP/nowhere" \
    "$AMUSE" summary "$TMP/nowhere"
expect_failure "unknown command" "frobnicate" "$AMUSE" frobnicate

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
