#!/usr/bin/env bash
# cli_word2vec.sh - `amuse word2vec` and `amuse words` through the command line: word2vec.c flags,
# byte-identical output with -threads 1, and every bad input of issue 3 giving a non-zero exit, a
# message naming the file and place, and no output file (or temp file) left behind.
# usage: bash cli_word2vec.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
fixtures=$2
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

# A small corpus: two topics that never share a line.
for i in $(seq 1 400); do
  echo "cat dog mouse pet fur cat dog paw"
  echo "car road wheel engine car drive road fuel"
done > "$work/corpus.txt"

# word2vec.c's command line, verbatim, with -seed; twice with one thread gives the same bytes.
for run in 1 2; do
  "$amuse" word2vec -train "$work/corpus.txt" -output "$work/v$run.bin" -cbow 0 -size 20 -window 3 \
    -negative 5 -hs 0 -sample 1e-3 -threads 1 -iter 3 -min-count 2 -alpha 0.025 -binary 1 \
    -save-vocab "$work/vocab$run.txt" -debug 0 -seed 7 || fail "training run $run"
done
cmp -s "$work/v1.bin" "$work/v2.bin" || fail "-threads 1 -seed 7 is not byte-identical"
cmp -s "$work/vocab1.txt" "$work/vocab2.txt" || fail "vocabularies differ"
head -1 "$work/v1.bin" | grep -qx "12 20" || fail "header is not '12 20': $(head -1 "$work/v1.bin")"
grep -qx "car 800" "$work/vocab1.txt" || fail "vocab lacks 'car 800'"
# -read-vocab, CBOW + hierarchical softmax, text output.
"$amuse" word2vec -train "$work/corpus.txt" -output "$work/v.txt" -read-vocab "$work/vocab1.txt" \
  -cbow 1 -hs 1 -negative 0 -size 10 -threads 2 -iter 1 -debug 0 || fail "cbow hs text"
head -1 "$work/v.txt" | grep -qx "12 10" || fail "text header"
# The queries.
"$amuse" words similar "$work/v1.bin" cat -k 3 > "$work/sim.txt" || fail "words similar"
[ "$(wc -l < "$work/sim.txt")" -eq 3 ] || fail "similar -k 3 printed $(wc -l < "$work/sim.txt") lines"
# Help: the general one describes both evaluation file formats; a subcommand's is its own.
"$amuse" words --help > "$work/help.txt" || fail "words --help"
grep -q 'questions file: UTF-8 text' "$work/help.txt" && grep -q 'word1<TAB>word2<TAB>score' "$work/help.txt" ||
  fail "words --help does not describe the file formats"
"$amuse" words eval-pairs --help > "$work/help-pairs.txt" || fail "words eval-pairs --help"
head -1 "$work/help-pairs.txt" | grep -q '^usage: amuse words eval-pairs <vectors> <pairs file>' &&
  grep -q 'word1<TAB>word2<TAB>score' "$work/help-pairs.txt" && ! grep -q 'doesnt-match' "$work/help-pairs.txt" ||
  fail "words eval-pairs --help is not its own help: $(head -3 "$work/help-pairs.txt")"
# One case rule (as written, else lower-cased), as the server's routes: Cat finds cat.
"$amuse" words similar "$work/v1.bin" Cat -k 3 > "$work/sim-cap.txt" || fail "words similar Cat"
cmp -s "$work/sim.txt" "$work/sim-cap.txt" || fail "similar Cat differs from similar cat"
"$amuse" words doesnt-match "$work/v1.bin" cat dog mouse car > "$work/odd.txt" || fail "doesnt-match"
"$amuse" words similarity "$work/v1.bin" cat dog > /dev/null || fail "similarity"
"$amuse" words analogy "$fixtures/word2vec/gensim_written.bin" man woman king -k 2 > /dev/null ||
  fail "analogy on gensim's binary file"

# Bad inputs.
out="$work/out.bin"
: > "$work/empty.txt"
expect_fail "empty.txt: empty corpus" "$out" -- "$amuse" word2vec -train "$work/empty.txt" -output "$out"
echo "one two three" > "$work/rare.txt"
expect_fail "no word occurs at least min-count 5 times" "$out" -- \
  "$amuse" word2vec -train "$work/rare.txt" -output "$out"
expect_fail "binary file" "$out" -- "$amuse" word2vec -train "$amuse" -output "$out" -debug 0
printf 'caf\xe9 au lait\n' > "$work/latin1.txt"
expect_fail "latin1.txt: byte 3: invalid UTF-8" "$out" -- \
  "$amuse" word2vec -train "$work/latin1.txt" -output "$out"
expect_fail "missing.txt: cannot open" "$out" -- \
  "$amuse" word2vec -train "$work/missing.txt" -output "$out"
expect_fail "unknown option '-frobnicate'" "$out" -- \
  "$amuse" word2vec -train "$work/corpus.txt" -output "$out" -frobnicate 1
expect_fail "-size: 0 is outside" "$out" -- "$amuse" word2vec -train "$work/corpus.txt" -output "$out" -size 0
printf '3 2\na 1 2\nb 3 4\n' > "$work/rows.txt"
expect_fail "ends after 2 rows" "$out" -- "$amuse" words similar "$work/rows.txt" a
printf '2 3\na 1 2\nb 3 4\n' > "$work/cols.txt"
expect_fail "line 2 ('a'): 2 values, the header promises 3" "$out" -- "$amuse" words similar "$work/cols.txt" a
head -c $(( $(wc -c < "$work/v1.bin") - 10 )) "$work/v1.bin" > "$work/trunc.bin"
expect_fail "is truncated" "$out" -- "$amuse" words similar "$work/trunc.bin" cat --format binary
printf '2 2\na 1 2\nb NaN 4\n' > "$work/nan.txt"
expect_fail "line 3 ('b'): value 1, 'NaN', is not a finite number" "$out" -- \
  "$amuse" words similar "$work/nan.txt" a
expect_fail "'unicorn' is not in the vocabulary" "$out" -- "$amuse" words similar "$work/v1.bin" unicorn
# An output directory that does not exist: nothing is trained, nothing is written.
expect_fail "cannot write in that directory" "$work/no/dir/v.bin" -- \
  "$amuse" word2vec -train "$work/corpus.txt" -output "$work/no/dir/v.bin"

[ "$failures" -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
