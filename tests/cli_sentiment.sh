#!/usr/bin/env bash
# cli_sentiment.sh - `amuse sentiment` through the command line: split, train, score (arguments,
# stdin, --json), eval (model and --scores), the same model bytes from the same seed, and bad
# input (corrupt model, invalid UTF-8, empty text, bad data lines) giving a non-zero exit and a
# message that names what and where, with no model directory left half-written.
# usage: bash cli_sentiment.sh <amuse binary> <fixtures dir>
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

# Made-up reviews: positive ones say wonderful/charming, negative ones awful/boring.
mkdir -p "$work/data"
for i in $(seq 1 120); do
  printf '%s\t%s\t%s\n' "p$i" 3 "a wonderful charming film number $i, loved it"
  printf '%s\t%s\t%s\n' "n$i" -3 "an awful boring film number $i, hated it"
  printf '%s\t%s\t%s\n' "z$i" 0 "the film number $i runs two hours"
done > "$work/data/made.tsv"

"$amuse" sentiment split --data "$work/data" --output "$work/split" > "$work/split.txt" || fail "split"
grep -q "^made: " "$work/split.txt" || fail "split summary: $(cat "$work/split.txt")"
total=$(cat "$work/split/made.train.tsv" "$work/split/made.valid.tsv" "$work/split/made.test.tsv" | wc -l)
[ "$total" = 360 ] || fail "split parts hold $total lines, not 360"

for run in 1 2; do
  "$amuse" sentiment train --data "$work/data" --output "$work/m$run" --hash-bits 12 --seed 1 \
    > "$work/train$run.txt" 2>&1 || fail "train run $run: $(cat "$work/train$run.txt")"
done
cmp -s "$work/m1/model.safetensors" "$work/m2/model.safetensors" || fail "same seed, different weights"
grep -q '"type":[[:space:]]*"sentiment"' "$work/m1/config.json" || fail "config.json: $(cat "$work/m1/config.json")"
echo "ok   training is deterministic"

out=$("$amuse" sentiment "$work/m1" "wonderful and charming" "boring and awful") || fail "score"
echo "$out" | head -1 | grep -q "^positive	" || fail "first text not positive: $out"
echo "$out" | tail -1 | grep -q "^negative	" || fail "second text not negative: $out"
json=$(printf 'loved it\n\nhated it\n' | "$amuse" sentiment "$work/m1" --json) || fail "stdin --json"
echo "$json" | grep -q '^{"data": \[{"index": 0, "label": "positive", "score": 0\.[0-9]*}, {"index": 1, "label": "negative", "score": -0\.[0-9]*}\]}$' ||
  fail "stdin --json: $json"
echo "ok   scoring: $json"

"$amuse" sentiment eval "$work/m1" "$work/split/made.test.tsv" > "$work/eval.txt" || fail "eval"
grep -q "binary accuracy (.*)     1.0000" "$work/eval.txt" || fail "eval: $(cat "$work/eval.txt")"
grep -q "^gold \\\\ predicted" "$work/eval.txt" || fail "no confusion table: $(cat "$work/eval.txt")"
# A peer's scores through the same figures: all +0.5 is right on exactly the positive snippets.
n=$(wc -l < "$work/split/made.test.tsv")
for i in $(seq 1 "$n"); do echo 0.5; done > "$work/peer.txt"
"$amuse" sentiment eval - "$work/split/made.test.tsv" --scores "$work/peer.txt" --json > "$work/peer.json" ||
  fail "eval --scores"
pos=$(grep -c '^p' "$work/split/made.test.tsv") neg=$(grep -c '^n' "$work/split/made.test.tsv")
want=$(awk -v p="$pos" -v q="$neg" 'BEGIN { printf "%.4f", p / (p + q) }')
grep -q "\"binary_accuracy\": $want" "$work/peer.json" || fail "peer accuracy not $want: $(cat "$work/peer.json")"
echo "ok   eval --scores: binary accuracy $want"

# Bad input.
expect_fail "text 0: byte 4: invalid UTF-8" -- "$amuse" sentiment "$work/m1" $'good\xff'
expect_fail "text 0: empty text" -- "$amuse" sentiment "$work/m1" ""
expect_fail "config.json" -- "$amuse" sentiment "$work/no-model" "good"
cp -r "$work/m1" "$work/bad"
head -c 64 "$work/m1/model.safetensors" > "$work/bad/model.safetensors"
expect_fail "model.safetensors" -- "$amuse" sentiment "$work/bad" "good"
printf '1\t9\tway out of range\n' > "$work/bad.tsv"
expect_fail "bad.tsv: line 1: rating '9'" -- "$amuse" sentiment train --data "$work/bad.tsv" --output "$work/m3"
[ -e "$work/m3" ] && fail "a failed training left $work/m3"
expect_fail "more scores" -- "$amuse" sentiment eval - "$work/split/made.valid.tsv" --scores "$work/peer.txt"
expect_fail "unknown option" -- "$amuse" sentiment train --bogus 1

[ "$failures" = 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
