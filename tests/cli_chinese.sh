#!/usr/bin/env bash
# cli_chinese.sh - Chinese embeddings end to end with `-chars 1` on the fortunes-zh corpus
# (data/make_chinese.sh: Tang and Song poems and quotes, about 720k characters): word2vec and
# GloVe vectors, `amuse words similar` and `analogy`. Each check could fail: the neighbours of
# 江 (river) must hold other water words, GloVe's 月 (moon) must have 明 (bright, as in 明月)
# among its neighbours, and 东:西 :: 南:? must find 北. One thread and a fixed seed make the
# word2vec run reproducible.
# usage: bash cli_chinese.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$here/data/make_chinese.sh" "$work" || { echo "FAIL: data/make_chinese.sh"; exit 1; }
corpus=$work/chinese.txt
[ "$(wc -l < "$corpus")" -gt 20000 ] || fail "corpus too small: $(wc -l < "$corpus") lines"
grep -q $'\x1b' "$corpus" && fail "ANSI escapes left in the corpus"
grep -qx '%' "$corpus" && fail "% separator lines left in the corpus"

# top <file> <k> <command...>: the first column of the answer as one line
top() { local f=$1 k=$2; shift 2; "$amuse" words "$1" "$f" "${@:2}" -k "$k" | cut -f1 | tr -d '\n'; }
has() { # has <what> <list> <chars...>: at least one of chars in list
  local what=$1 list=$2; shift 2
  for c in "$@"; do case "$list" in *"$c"*) echo "ok   $what: $list"; return;; esac; done
  fail "$what: none of $* in '$list'"
}

"$amuse" word2vec -train "$corpus" -output "$work/w2v.bin" -binary 1 -chars 1 -size 50 -window 5 \
  -min-count 5 -iter 5 -threads 1 -seed 1 -debug 0 || fail "word2vec -chars 1"
has "word2vec similar 江" "$(top "$work/w2v.bin" 10 similar 江)" 湖 河 海
has "word2vec similar 山" "$(top "$work/w2v.bin" 10 similar 山)" 峰 岩 崖
has "word2vec analogy 东:西 :: 南:?" "$(top "$work/w2v.bin" 5 analogy 东 西 南)" 北

"$amuse" glove -train "$corpus" -output "$work/glove.txt" -chars 1 -min-count 5 -vector-size 50 \
  -window-size 8 -iter 25 -x-max 10 -threads 2 -memory 0.5 -verbose 0 || fail "glove -chars 1"
has "glove similar 月" "$(top "$work/glove.txt" 10 similar 月)" 明
has "glove similar 江" "$(top "$work/glove.txt" 10 similar 江)" 湖 河 水 海
has "glove analogy 东:西 :: 南:?" "$(top "$work/glove.txt" 5 analogy 东 西 南)" 北

[ $failures -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
