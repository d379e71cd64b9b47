#!/usr/bin/env bash
# cli_generate.sh - `amuse train` on a text recipe and `amuse generate` through the command line:
# the trained model carries its vocabulary, a fixed seed prints the same text twice, --json ends
# with the finish reason and usage, a stop string cuts the text, and bad input (a prompt outside
# the vocabulary, max tokens above the cap, temperature < 0, top-p outside (0, 1], invalid UTF-8,
# a model that is not a generator, a malformed corpus) fails with a message naming what and where.
# usage: bash cli_generate.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_fail <expected message part> -- command...
expect_fail() {
  local want=$1
  shift 2
  if "$@" >"$work/stdout" 2>"$work/stderr"; then
    fail "$* succeeded"
    return
  fi
  grep -qF -- "$want" "$work/stderr" || fail "$*: message lacks '$want': $(cat "$work/stderr")"
  echo "ok   $(head -c 150 "$work/stderr" | tr '\n' ' ')"
}

for i in $(seq 1 40); do echo "the cat sat on the mat, the dog sat on the log."; done > "$work/corpus.txt"
cat > "$work/lm.json" <<JSON
{"name": "tiny", "model": {"class_name": "Sequential", "config": {"layers": [
  {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 16], "dtype": "int32"}},
  {"class_name": "Embedding", "config": {"name": "embedding", "input_dim": 4, "output_dim": 8}},
  {"class_name": "LSTM", "config": {"name": "lstm", "units": 32, "return_sequences": true}},
  {"class_name": "LSTM", "config": {"name": "lstm_1", "units": 32, "return_sequences": true}},
  {"class_name": "Dense", "config": {"name": "dense", "units": 4, "activation": "softmax"}}]}},
 "data": {"text": "$work/corpus.txt", "task": "lm", "seq_length": 16, "stride": 4},
 "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.02}},
             "loss": "sparse_categorical_crossentropy"},
 "fit": {"batch_size": 32, "epochs": 8}, "generation": {"max_tokens": 100}}
JSON
"$amuse" train "$work/lm.json" -o "$work/tiny" -q -t 1 > "$work/train.txt" 2>&1 || fail "train: $(cat "$work/train.txt")"
grep -q '"vocabulary"' "$work/tiny/config.json" || fail "no vocabulary saved"

a=$("$amuse" generate "$work/tiny" --prompt "the " --seed 5 -n 40 -t 1) || fail "generate"
b=$("$amuse" generate "$work/tiny" --prompt "the " --seed 5 -n 40 -t 1) || fail "generate again"
[ "$a" = "$b" ] || fail "same seed, different text: '$a' vs '$b'"
case "$a" in "the "*) ;; *) fail "the prompt is not printed first: '$a'" ;; esac
[ "${#a}" = 44 ] || fail "40 characters after a 4-character prompt, got ${#a}: '$a'"
echo "ok   seed 5: $a"

"$amuse" generate "$work/tiny" --prompt "the c" --temperature 0 -n 30 --json -t 1 > "$work/out.json" || fail "json"
tail -1 "$work/out.json" | grep -q '"finish_reason": "length", "usage": {"prompt_tokens": 5, "completion_tokens": 30' \
  || fail "json end: $(tail -1 "$work/out.json")"
s=$("$amuse" generate "$work/tiny" --prompt "the c" --temperature 0 -n 30 --stop "mat" -t 1)
case "$s" in *mat*) fail "stop string printed: '$s'" ;; esac
echo "ok   stop: $s"

expect_fail "none of its 3 characters" -- "$amuse" generate "$work/tiny" --prompt "QXZ"
expect_fail "above the model's cap of 100" -- "$amuse" generate "$work/tiny" --prompt "the" -n 101
expect_fail "--temperature" -- "$amuse" generate "$work/tiny" --prompt "the" --temperature -1
expect_fail "--top-p" -- "$amuse" generate "$work/tiny" --prompt "the" --top-p 1.5
expect_fail "--top-p" -- "$amuse" generate "$work/tiny" --prompt "the" --top-p 0
expect_fail "invalid UTF-8" -- "$amuse" generate "$work/tiny" --prompt $'the \xff'
expect_fail "prompt: empty" -- "$amuse" generate "$work/tiny" --prompt ""

# not a generator: the image classifier that ships with amuse (no vocabulary)
repo=$(cd "$(dirname "$0")/.." && pwd)
expect_fail "is not a generator" -- "$amuse" generate "$repo/models/default/fashion-dnn/1" --prompt "x"

printf 'good line\nbad \xc3\x28 line\n' > "$work/bad.txt"
sed "s#$work/corpus.txt#$work/bad.txt#" "$work/lm.json" > "$work/bad.json"
expect_fail "bad.txt: byte 14: invalid UTF-8" -- "$amuse" train "$work/bad.json" -o "$work/bad" -q
[ -e "$work/bad" ] && fail "a model directory was left after a failed training"

[ "$failures" = 0 ] && echo "all passed" || { echo "$failures failed"; exit 1; }
