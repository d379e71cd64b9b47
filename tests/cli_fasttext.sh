#!/usr/bin/env bash
# cli_fasttext.sh - fastText models through the command line: `amuse word2vec -subwords 1` writes a
# .bin and a .vec, `amuse words` reads gensim's and ours and composes unseen words (noted on
# stderr), and bad flags and files fail with a message and nothing left behind.
# usage: bash cli_fasttext.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
fixtures=$2/fasttext
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_fail <expected message part> <output file that must not exist> -- command...
expect_fail() {
  local want=$1 out=$2
  shift 3
  if "$@" >"$work/stdout" 2>"$work/stderr"; then
    fail "$* succeeded"
    return
  fi
  grep -qF -- "$want" "$work/stderr" || fail "$*: message lacks '$want': $(cat "$work/stderr")"
  [ -e "$out" ] && fail "$*: left $out behind"
  ls "$work" | grep -q '\.tmp\.' && fail "$*: left a temp file: $(ls "$work")"
  echo "ok   $(head -c 150 "$work/stderr" | tr '\n' ' ')"
}

train=(-train "$fixtures/corpus.txt" -subwords 1 -minn 3 -maxn 5 -bucket 1000 -size 8 -window 3
       -min-count 3 -negative 3 -iter 2 -threads 1 -seed 1 -debug 0)

# -subwords 1 implies skip-gram; .bin and .vec; one thread twice gives the same bytes.
for run in 1 2; do
  "$amuse" word2vec "${train[@]}" -output "$work/m$run.bin" || fail "training run $run"
done
cmp -s "$work/m1.bin" "$work/m2.bin" || fail "-threads 1 runs differ"
[ -s "$work/m1.vec" ] || fail "no .vec next to the .bin"
rows=$(head -1 "$work/m1.vec" | cut -d' ' -f1)
[ "$rows" -gt 50 ] || fail ".vec header: '$(head -1 "$work/m1.vec")'"

# The .vec holds the composed vectors: in-vocabulary answers agree between the two files.
a=$("$amuse" words similarity "$work/m1.bin" playing walked) || fail "similarity on the .bin"
b=$("$amuse" words similarity "$work/m1.vec" playing walked) || fail "similarity on the .vec"
[ "$a" = "$b" ] || fail "the .bin says $a, the .vec says $b"

# An unseen word: the .bin composes it (noted on stderr), the .vec cannot.
"$amuse" words similar "$work/m1.bin" unplayable -k 3 >"$work/out" 2>"$work/err" ||
  fail "similar with an unseen word: $(cat "$work/err")"
[ "$(wc -l <"$work/out")" -eq 3 ] || fail "similar gave: $(cat "$work/out")"
grep -qF "'unplayable' is not in the vocabulary: composed from its character n-grams" "$work/err" ||
  fail "no note about the composed word: $(cat "$work/err")"
expect_fail "not in the vocabulary" "$work/none" -- "$amuse" words similar "$work/m1.vec" unplayable

# gensim's file, and an explicit --format fasttext.
"$amuse" words analogy "$fixtures/gensim.bin" play playing walk -k 2 --format fasttext >"$work/out" \
  2>/dev/null || fail "analogy on gensim's model"
[ "$(wc -l <"$work/out")" -eq 2 ] || fail "analogy gave: $(cat "$work/out")"

# Bad flags and files.
expect_fail "-cbow 1 is not supported" "$work/x.bin" -- \
  "$amuse" word2vec "${train[@]}" -cbow 1 -output "$work/x.bin"
expect_fail "-hs 1 is not supported" "$work/x.bin" -- \
  "$amuse" word2vec "${train[@]}" -hs 1 -output "$work/x.bin"
expect_fail "-minn 6 is larger than -maxn 5" "$work/x.bin" -- \
  "$amuse" word2vec "${train[@]}" -minn 6 -output "$work/x.bin"
expect_fail "-bucket" "$work/x.bin" -- "$amuse" word2vec "${train[@]}" -bucket 0 -output "$work/x.bin"
head -c 2000 "$fixtures/gensim.bin" >"$work/cut.bin"
expect_fail "cut.bin: byte" "$work/none" -- "$amuse" words similar "$work/cut.bin" cat
expect_fail "not fastText's" "$work/none" -- "$amuse" words similar "$work/m1.vec" cat --format fasttext

[ "$failures" -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
