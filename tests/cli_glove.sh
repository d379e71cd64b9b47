#!/usr/bin/env bash
# cli_glove.sh - `amuse glove` through the command line: the four stages piped as the reference
# tool's programs are (stdin/stdout, the same files), the one-command pipeline, the -model and
# -binary outputs read back by `amuse words`, and bad input: an unknown or misplaced flag, a
# vocabulary with a repeated word, invalid UTF-8, -memory too small, a truncated co-occurrence
# file. Each failure exits non-zero with a message naming the place and leaves no output file or
# temporary file behind.
# usage: bash cli_glove.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
fixtures=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }

expect_fail() { # expect_fail <message part> <file that must not exist> -- command... (stdin: $in)
  local want=$1 out=$2
  shift 3
  if "$@" < "${in:-/dev/null}" > "$work/stdout" 2> "$work/stderr"; then
    fail "$* succeeded"
    return
  fi
  grep -qF -- "$want" "$work/stderr" || fail "$*: message lacks '$want': $(cat "$work/stderr")"
  [ -e "$out" ] && fail "$*: left $out behind"
  ls "$work/tmp" | grep -q . && fail "$*: left temporary files: $(ls "$work/tmp")"
  ok "$(head -c 160 "$work/stderr" | tr '\n' ' ')"
}
mkdir "$work/tmp"
export TMPDIR=$work/tmp

# Two topics; a line has mostly words of one, sometimes one of the other (GloVe learns only from
# pairs that occur, so it needs to see that cross-topic pairs are rare).
awk 'BEGIN { srand(5); split("cat dog mouse pet fur paw", a, " "); split("car road wheel engine drive fuel", b, " ");
  for (i = 0; i < 1200; i++) { t = i % 2; line = "";
    for (j = 0; j < 8; j++) { o = (rand() < 0.1) ? 1 - t : t; w = int(rand() * 6) + 1;
      line = line (j ? " " : "") (o ? b[w] : a[w]) }
    print line } }' > "$work/corpus.txt"

# The stages, piped as the reference's vocab_count | cooccur | shuffle | glove.
"$amuse" glove vocab -min-count 5 -verbose 0 < "$work/corpus.txt" > "$work/vocab.txt" || fail "vocab"
[ "$(wc -l < "$work/vocab.txt")" -eq 12 ] || fail "vocab: $(wc -l < "$work/vocab.txt") words"
"$amuse" glove cooccur -vocab-file "$work/vocab.txt" -window-size 5 -memory 0.1 -verbose 0 \
  < "$work/corpus.txt" > "$work/cooc.bin" || fail "cooccur"
size=$(stat -c %s "$work/cooc.bin")
[ $((size % 16)) -eq 0 ] && [ "$size" -gt 0 ] || fail "cooccur: $size bytes"
"$amuse" glove shuffle -memory 0.1 -seed 3 -vocab-file "$work/vocab.txt" < "$work/cooc.bin" \
  > "$work/cooc.shuf.bin" || fail "shuffle"
[ "$(stat -c %s "$work/cooc.shuf.bin")" -eq "$size" ] || fail "shuffle changed the size"
cmp -s "$work/cooc.bin" "$work/cooc.shuf.bin" && fail "shuffle left the order"
[ "$(od -An -v -tx1 -w16 "$work/cooc.bin" | sort | md5sum)" = \
  "$(od -An -v -tx1 -w16 "$work/cooc.shuf.bin" | sort | md5sum)" ] || fail "shuffle is not a permutation"
"$amuse" glove train -input-file "$work/cooc.shuf.bin" -vocab-file "$work/vocab.txt" \
  -save-file "$work/vectors" -binary 2 -vector-size 10 -iter 50 -threads 1 -x-max 10 -verbose 0 ||
  fail "train"
[ -s "$work/vectors.txt" ] && [ -s "$work/vectors.bin" ] || fail "-binary 2 did not write both"
[ "$(head -1 "$work/vectors.txt")" = "12 10" ] || fail "header $(head -1 "$work/vectors.txt")"
near=$("$amuse" words similar "$work/vectors.bin" dog -k 4 | cut -f1 | tr '\n' ' ')
case "$near" in *car*|*road*|*wheel*|*engine*|*drive*|*fuel*) fail "stages: dog's neighbours: $near";;
  *) ok "stages: dog is near $near";; esac
ls "$work/tmp" | grep -q . && fail "stages left temporary files"

# The reference tool's own files (tests/fixtures/glove/make_fixtures.sh): the same vocabulary,
# byte for byte, and the same co-occurrence records (in another order; sums to 1e-12).
ref=$fixtures/glove
"$amuse" glove vocab -min-count 1 -verbose 0 < "$ref/corpus.txt" > "$work/rv.txt" || fail "vocab (fixture)"
cmp -s "$work/rv.txt" "$ref/vocab.txt" && ok "vocab equals the reference's" ||
  fail "vocab differs from the reference's: $(diff "$work/rv.txt" "$ref/vocab.txt" | head -3)"
same_records() { # same_records <ours> <reference> <what>
  python3 - "$1" "$2" <<'PY' && ok "$3 equals the reference's" || fail "$3 differs from the reference's"
import struct, sys
def load(p):
    d = open(p, "rb").read()
    return sorted(struct.unpack_from("<iid", d, i) for i in range(0, len(d), 16))
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = len(a) != len(b) or any(x[:2] != y[:2] or abs(x[2] - y[2]) > 1e-12 * y[2] for x, y in zip(a, b))
if bad: print("records: %d vs %d" % (len(a), len(b)))
sys.exit(1 if bad else 0)
PY
}
"$amuse" glove cooccur -vocab-file "$ref/vocab.txt" -window-size 5 -memory 0.1 -verbose 0 \
  < "$ref/corpus.txt" > "$work/rc.bin" || fail "cooccur (fixture)"
same_records "$work/rc.bin" "$ref/cooccurrence.bin" "cooccur -window-size 5"
"$amuse" glove cooccur -vocab-file "$ref/vocab.txt" -window-size 3 -symmetric 0 \
  -distance-weighting 0 -memory 0.1 -verbose 0 < "$ref/corpus.txt" > "$work/rcl.bin" ||
  fail "cooccur -symmetric 0 (fixture)"
same_records "$work/rcl.bin" "$ref/cooccurrence_left.bin" "cooccur -symmetric 0 -distance-weighting 0"
"$amuse" glove shuffle < "$ref/cooccurrence.bin" > "$work/rs.bin" &&
  "$amuse" glove train -input-file "$work/rs.bin" -vocab-file "$ref/vocab.txt" -output "$work/rvec.txt" \
    -vector-size 5 -iter 3 -threads 1 -verbose 0 && [ "$(head -1 "$work/rvec.txt")" = "105 5" ] &&
  ok "the reference's records shuffle and train" || fail "training on the reference's records"

# The pipeline, -model 0 (W, bias, W~, bias~) and 1 (W).
"$amuse" glove -train "$work/corpus.txt" -output "$work/p.txt" -min-count 5 -window-size 5 \
  -vector-size 10 -iter 50 -threads 2 -x-max 10 -memory 0.1 -save-vocab "$work/pv.txt" \
  -verbose 1 2> "$work/log" || fail "pipeline"
grep -q "stage cooccur:" "$work/log" && grep -q "stage train:" "$work/log" || fail "no stage times"
cmp -s "$work/pv.txt" "$work/vocab.txt" || fail "the pipeline's vocabulary differs from the stage's"
near=$("$amuse" words similar "$work/p.txt" road -k 4 | cut -f1 | tr '\n' ' ')
case "$near" in *cat*|*dog*|*mouse*|*pet*|*fur*|*paw*) fail "pipeline: road's neighbours: $near";;
  *) ok "pipeline: road is near $near";; esac
for m in 0 1; do
  "$amuse" glove -train "$work/corpus.txt" -output "$work/m$m.txt" -min-count 5 -vector-size 10 \
    -iter 2 -model $m -memory 0.1 -verbose 0 || fail "-model $m"
done
[ "$(head -1 "$work/m0.txt")" = "12 22" ] || fail "-model 0 header $(head -1 "$work/m0.txt")"
[ "$(head -1 "$work/m1.txt")" = "12 10" ] || fail "-model 1 header $(head -1 "$work/m1.txt")"

# Bad input.
in=$work/corpus.txt
expect_fail "unknown option '-bogus'" "$work/x" -- "$amuse" glove vocab -bogus 1
expect_fail "-iter does not apply to this stage" "$work/x" -- "$amuse" glove vocab -iter 3
printf 'cat 5\ndog 4\ncat 2\n' > "$work/dup.txt"
expect_fail "line 3: word 'cat' appears twice" "$work/x" -- \
  "$amuse" glove cooccur -vocab-file "$work/dup.txt"
printf 'good words\nbad \xff here\n' > "$work/bad.txt"
in=$work/bad.txt
expect_fail "byte 15: invalid UTF-8" "$work/x" -- "$amuse" glove vocab
expect_fail "byte 15: invalid UTF-8" "$work/x.txt" -- "$amuse" glove -train "$work/bad.txt" -output "$work/x.txt"
in=$work/corpus.txt
expect_fail "-memory 0.001 GB is too small to hold one run" "$work/x" -- \
  "$amuse" glove cooccur -vocab-file "$work/vocab.txt" -memory 0.001 -threads 2
expect_fail "is too small to hold one run" "$work/x.txt" -- \
  "$amuse" glove -train "$work/corpus.txt" -output "$work/x.txt" -memory 0.001
head -c $((size - 3)) "$work/cooc.shuf.bin" > "$work/trunc.bin"
expect_fail "byte $((size - 16)): truncated record" "$work/t.txt" -- "$amuse" glove train \
  -input-file "$work/trunc.bin" -vocab-file "$work/vocab.txt" -output "$work/t.txt"
in=$work/trunc.bin
expect_fail "standard input: byte $((size - 16)): truncated record" "$work/x" -- \
  "$amuse" glove shuffle
head -3 "$work/vocab.txt" > "$work/short.txt"
expect_fail "names a word outside the vocabulary of 3 words" "$work/t.txt" -- "$amuse" glove train \
  -input-file "$work/cooc.bin" -vocab-file "$work/short.txt" -output "$work/t.txt"

[ $failures -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
