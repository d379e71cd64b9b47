#!/usr/bin/env bash
# install_check.sh - `cmake --install` into a temporary prefix, then build examples/predict.c
# and examples/generate.c
# against the installed headers, library and amuse.pc with pkg-config, and run it on a model the
# installed `amuse` trains. Proves the install rules and the .pc file work for a real program.
#   usage: install_check.sh <cmake> <build dir> <source dir> [extra cflags]
set -u
cmake=$1 build=$2 src=$3 extra=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if [ "$1" = 0 ]; then echo "ok   $2"; pass=$((pass+1)); else echo "FAIL $2"; fail=$((fail+1)); fi; }

"$cmake" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1
check $? "cmake --install"
for f in bin/amuse include/amuse/model.h include/amuse/safetensors.h share/amuse/web/index.html \
    share/amuse/web/app.js share/amuse/web/style.css; do
  [ -e "$tmp/prefix/$f" ]; check $? "installed $f"
done
"$tmp/prefix/bin/amuse" serve --help | grep -qF "(default $(realpath "$tmp")/prefix/share/amuse/web)"
check $? "the installed amuse serve finds the playground in <prefix>/share/amuse/web"
pc=$(find "$tmp/prefix" -name amuse.pc | head -1)
[ -n "$pc" ]; check $? "installed amuse.pc"
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs amuse)
check $? "pkg-config --cflags --libs amuse"
libdir=$(pkg-config --variable=libdir amuse)
cc $extra "$src/examples/predict.c" $flags -Wl,-rpath,"$libdir" -o "$tmp/predict" 2>"$tmp/cc.log"
check $? "examples/predict.c builds against the installed library"
cc $extra "$src/examples/listen.c" $flags -Wl,-rpath,"$libdir" -o "$tmp/listen" 2>"$tmp/cc.log"
check $? "examples/listen.c builds against the installed library (amuse/voice.h installed)"

# A tiny model, trained by the installed command on 256 real samples, so predict has weights.
cat > "$tmp/tiny.json" <<JSON
{"name": "tiny", "labels": ["0","1","2","3","4","5","6","7","8","9"],
 "model": {"class_name": "Sequential", "config": {"layers": [
   {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 28, 28, 1]}},
   {"class_name": "Flatten", "config": {}},
   {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}},
 "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
 "fit": {"batch_size": 64, "epochs": 1},
 "data": {"train_images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
          "train_labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"}}
JSON
"$tmp/prefix/bin/amuse" train "$tmp/tiny.json" --output "$tmp/model" --train-limit 256 -q \
  >"$tmp/train.log" 2>&1
check $? "installed amuse trains a model"
# A 1x1 grey PNG is a valid image of any model input size after resizing.
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00\x3a\x7e\x9b\x55\x00\x00\x00\x0aIDATx\x9cc\x60\x00\x00\x00\x02\x00\x01\xe2\x21\xbc\x33\x00\x00\x00\x00IEND\xaeB`\x82' >"$tmp/dot.png"
out=$("$tmp/predict" "$tmp/model" "$tmp/dot.png" 2>&1)
echo "$out" | grep -Eq '^[0-9] [01]\.[0-9]{4}$'; check $? "the example labels an image ($out)"

# examples/generate.c: a tiny character model trained by the installed command on a text recipe.
cc $extra "$src/examples/generate.c" $flags -Wl,-rpath,"$libdir" -o "$tmp/generate" 2>"$tmp/cc2.log"
check $? "examples/generate.c builds against the installed library"
for i in 1 2 3 4 5 6 7 8; do echo "la la land, la la la."; done >"$tmp/la.txt"
cat > "$tmp/la.json" <<JSON
{"name": "la", "model": {"class_name": "Sequential", "config": {"layers": [
   {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 8], "dtype": "int32"}},
   {"class_name": "Embedding", "config": {"input_dim": 4, "output_dim": 4}},
   {"class_name": "LSTM", "config": {"units": 8, "return_sequences": true}},
   {"class_name": "Dense", "config": {"units": 4, "activation": "softmax"}}]}},
 "data": {"text": "$tmp/la.txt", "task": "lm", "seq_length": 8},
 "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
 "fit": {"batch_size": 8, "epochs": 1}}
JSON
"$tmp/prefix/bin/amuse" train "$tmp/la.json" --output "$tmp/la" -q >"$tmp/train2.log" 2>&1
check $? "installed amuse trains a text recipe"
out=$("$tmp/generate" "$tmp/la" "la " "land" 2>&1)
[ "$(echo "$out" | grep -c '^\[[12]\] (\(length\|stop\), ')" = 2 ]
check $? "the example runs two streams to their end ($(echo "$out" | head -c 120 | tr '\n' ' '))"
# examples/listen.c: the in-process detector on the shipped voice model prints the same commands,
# at the same times, as the installed `amuse listen`.
if [ -d "$src/models/default/voice-dscnn/1" ]; then
    "$tmp/listen" "$src/models/default/voice-dscnn/1" "$src/tests/fixtures/audio/commands.wav" \
        >"$tmp/listen.out" 2>&1
    rc=$?
    "$tmp/prefix/bin/amuse" listen "$src/models/default/voice-dscnn/1" \
        "$src/tests/fixtures/audio/commands.wav" 2>&1 | awk '{ print $1, $3, $4 }' >"$tmp/cli.out"
    [ $rc = 0 ] && [ -s "$tmp/listen.out" ] && cmp -s "$tmp/listen.out" "$tmp/cli.out"
    check $? "examples/listen.c hears what amuse listen hears ($(tr '\n' ' ' <"$tmp/listen.out"))"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
