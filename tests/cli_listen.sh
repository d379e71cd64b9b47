#!/usr/bin/env bash
# cli_listen.sh - `amuse listen` end to end:
#  - the shipped DS-CNN (models/default/voice-dscnn/1) on tests/fixtures/audio/commands.wav
#    (three commands by a voice the training never heard, made by make_commands.sh) prints
#    exactly those words, each within 100 ms of its known start (commands.txt);
#  - the same recording as a WAV on standard input and as raw 16-bit PCM streamed on standard
#    input prints the same lines;
#  - a tiny model trained here, on clips data/make_voice.sh synthesises here (40 per class,
#    training clips over babble, music or noise; about a minute), separates two words ("yes"
#    and "stop") on the held-out voices (12 clips; at most one wrong);
#  - bad input exits non-zero with a message: not audio, a model that is not a voice model, a
#    bad option, raw input at another rate.
#
# usage: bash cli_listen.sh <path to amuse> <fixtures dir>
# The training part needs espeak-ng and sox (scripts/test.sh installs them).
set -u

AMUSE=$(realpath "$1")
FIX=$(realpath "$2")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=$ROOT/models/default/voice-dscnn/1
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-cli-listen.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- the shipped model
"$AMUSE" listen "$MODEL" "$FIX/audio/commands.wav" >"$TMP/file.out" 2>"$TMP/err" ||
    bad "listen on commands.wav: $(cat "$TMP/err")"
# Each expected "time word" must match one printed event: same word, |dt| <= 0.1 s; no extras.
if awk 'NR == FNR { t[NR] = $1; w[NR] = $2; n = NR; next }
        { got++; if (got > n || $3 != w[got] || ($1 - t[got]) > 0.1 || (t[got] - $1) > 0.1) bad = 1 }
        END { exit (bad || got != n) }' "$FIX/audio/commands.txt" "$TMP/file.out"; then
    ok "three commands at their times (+-100 ms): $(tr -s ' \n' ' ' <"$TMP/file.out")"
else
    bad "expected $(tr '\n' ' ' <"$FIX/audio/commands.txt"), got: $(cat "$TMP/file.out")"
fi

"$AMUSE" listen "$MODEL" - <"$FIX/audio/commands.wav" >"$TMP/stdin.out" 2>"$TMP/err"
if cmp -s "$TMP/file.out" "$TMP/stdin.out"; then ok "a WAV on stdin: the same events"; else
    bad "WAV on stdin differs: $(cat "$TMP/stdin.out" "$TMP/err")"; fi

# The fixture is 16 kHz 16-bit mono: its data chunk is the raw stream.
if command -v sox >/dev/null; then
    sox "$FIX/audio/commands.wav" -t raw -e signed -b 16 -c 1 -r 16000 "$TMP/commands.raw"
    "$AMUSE" listen "$MODEL" - <"$TMP/commands.raw" >"$TMP/raw.out" 2>"$TMP/err"
    if cmp -s "$TMP/file.out" "$TMP/raw.out"; then ok "raw PCM streamed on stdin: the same events"
    else bad "raw PCM differs: $(cat "$TMP/raw.out" "$TMP/err")"; fi
    "$AMUSE" listen "$MODEL" - --json <"$TMP/commands.raw" >"$TMP/json.out" 2>"$TMP/err"
    if [ "$(wc -l <"$TMP/json.out")" -eq "$(wc -l <"$TMP/file.out")" ] &&
        grep -q '^{"start": [0-9.]*, "detected": [0-9.]*, "word": "[a-z]*", "score": [0-9.]*}$' "$TMP/json.out"; then
        ok "--json: one object per event"
    else bad "--json: $(cat "$TMP/json.out" "$TMP/err")"; fi
    "$AMUSE" listen "$MODEL" - --raw 8000 <"$TMP/commands.raw" >/dev/null 2>"$TMP/err"
    if [ $? -eq 1 ] && grep -q "8000 Hz" "$TMP/err"; then ok "raw input at another rate: refused"
    else bad "raw 8 kHz: $(cat "$TMP/err")"; fi
fi

# ---------------------------------------------------------------- bad input
printf 'not a sound file at all\n' >"$TMP/notaudio.wav"
"$AMUSE" listen "$MODEL" "$TMP/notaudio.wav" >/dev/null 2>"$TMP/err"
if [ $? -eq 1 ] && grep -q "notaudio.wav" "$TMP/err"; then ok "not audio: error names the file"
else bad "not audio: $(cat "$TMP/err")"; fi
"$AMUSE" listen "$ROOT/models/default/fashion-dnn/1" "$FIX/audio/commands.wav" >/dev/null 2>"$TMP/err"
if [ $? -eq 1 ] && grep -q "not a voice model" "$TMP/err"; then ok "an image model: not a voice model"
else bad "image model: $(cat "$TMP/err")"; fi
"$AMUSE" listen "$MODEL" "$FIX/audio/commands.wav" --threshold 2 >/dev/null 2>"$TMP/err"
if [ $? -eq 1 ] && grep -q "threshold" "$TMP/err"; then ok "--threshold 2: refused"
else bad "--threshold 2: $(cat "$TMP/err")"; fi
"$AMUSE" listen "$MODEL" "$FIX/audio/commands.wav" --bogus >/dev/null 2>"$TMP/err"
if [ $? -eq 2 ]; then ok "unknown option: usage error"; else bad "unknown option accepted"; fi

# ---------------------------------------------------------------- a tiny model, trained here
if command -v espeak-ng >/dev/null && command -v sox >/dev/null; then
    "$ROOT/data/make_voice.sh" --per-class 40 --jobs 2 --seed 3 --out "$TMP/voice" 2>"$TMP/mv.log" ||
        bad "make_voice.sh: $(tail -3 "$TMP/mv.log")"
    awk -F, 'NR == 1 || $2 == "yes" || $2 == "stop"' \
        "$TMP/voice/manifest.csv" >"$TMP/voice/two.csv"
    cat >"$TMP/two.json" <<JSON
{"name": "two-words", "input": {"type": "audio", "clip_ms": 1000},
 "features": {"type": "mfcc", "window_ms": 40, "stride_ms": 20, "mfcc": 20, "upper_hz": 7600},
 "labels": ["yes", "stop"],
 "model": {"class_name": "Sequential", "config": {"layers": [
   {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 49, 20]}},
   {"class_name": "Flatten", "config": {}},
   {"class_name": "BatchNormalization", "config": {"momentum": 0.8}},
   {"class_name": "Dense", "config": {"units": 64, "activation": "relu"}},
   {"class_name": "Dense", "config": {"units": 2, "activation": "softmax"}}]}},
 "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
 "fit": {"batch_size": 8, "epochs": 40, "shuffle": true, "seed": 1},
 "data": {"format": "voice", "manifest": "$TMP/voice/two.csv", "train_split": "train,validation",
          "test_split": "test"}}
JSON
    "$AMUSE" train "$TMP/two.json" -q -o "$TMP/two" -t 1 >"$TMP/train.out" 2>&1 ||
        bad "training the tiny model: $(tail -3 "$TMP/train.out")"
    acc=$(sed -n 's/^Test: \([0-9]*\) samples .* accuracy: \([0-9.]*\)$/\2/p' "$TMP/train.out")
    n=$(sed -n 's/^Test: \([0-9]*\) samples .*/\1/p' "$TMP/train.out")
    if [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a >= 0.85) }'; then
        ok "a tiny model trained here separates yes and stop on held-out voices ($acc of $n)"
    else
        bad "tiny model: test accuracy '$acc' ($(tail -3 "$TMP/train.out"))"
    fi
else
    echo "skip the tiny trained model: needs espeak-ng and sox"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
