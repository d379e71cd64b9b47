#!/usr/bin/env bash
# cli_recommend.sh - `amuse recommend` through the command line: train writes a model directory
# that `for` reads back (with titles, a tag filter, explanations and fold-in of a new user), eval
# prints every algorithm side by side, and bad input gives a non-zero exit and a message naming
# the file and line, with no model directory left behind.
# usage: bash cli_recommend.sh <amuse binary> <fixtures dir>
set -u
amuse=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
export AMUSE_NO_REEXEC=1

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_fail <expected message part> <path that must not exist> -- command...
expect_fail() {
  local want=$1 out=$2
  shift 3
  if "$@" >"$work/stdout" 2>"$work/stderr"; then
    fail "$* succeeded"
    return
  fi
  grep -qF -- "$want" "$work/stderr" || fail "$*: message lacks '$want': $(cat "$work/stderr")"
  [ -e "$out" ] && fail "$*: left $out behind"
  echo "ok   $(head -c 150 "$work/stderr" | tr '\n' ' ')"
}

# Two taste groups: users a<u> rate films A0..A5 except A<u>, users b<u> likewise B0..B5.
for g in a b; do
  G=$(echo $g | tr ab AB)
  for u in 0 1 2 3 4 5; do
    for i in 0 1 2 3 4 5; do
      [ $i = $u ] || printf '%s%s\t%s%s\t%s\t%s\n' $g $u $G $i $(( (u + i) % 5 + 1 )) $((1000 + u * 10 + i))
    done
  done
done > "$work/events.tsv"
{
  for i in 0 1 2 3 4 5; do printf 'A%s\tAction film %s\tAction|Space\n' $i $i; done
  for i in 0 1 2 3 4 5; do printf 'B%s\tQuiet drama %s\tDrama\n' $i $i; done
} > "$work/items.tsv"

for algo in als bpr itemknn pop; do
  "$amuse" recommend train --data "$work/events.tsv" --algo $algo --items "$work/items.tsv" \
    --factors 4 --threads 1 --output "$work/$algo" > "$work/train.out" 2>&1 || fail "train $algo: $(cat "$work/train.out")"
  for f in config.json model.safetensors users.txt items.txt item_meta.tsv; do
    [ -f "$work/$algo/$f" ] || fail "train $algo: no $f"
  done
done
python3 - "$work/als/eval.json" <<'PY' || fail "train: eval.json is not the held-out evaluation: $(cat "$work/als/eval.json")"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["split"] == "random" and e["fraction"] == 0.75 and e["k"] == 10 and e["users"] == 12, e
assert all(0 <= e[k] <= 1 for k in ("precision", "recall", "ndcg", "map", "coverage", "gini", "aplt")), e
assert e["arp"] > 0 and e["novelty"] > 0, e
PY
"$amuse" recommend train --data "$work/events.tsv" --algo pop --no-eval --output "$work/noeval" > "$work/noeval.out" 2>&1 ||
  fail "train --no-eval: $(cat "$work/noeval.out")"
[ -e "$work/noeval/eval.json" ] && fail "train --no-eval wrote eval.json"
grep -q "held out" "$work/noeval.out" && fail "train --no-eval printed held-out figures"
echo "ok   train: eval.json holds the held-out figures (--no-eval: none)"
for algo in als bpr itemknn; do
  "$amuse" recommend for "$work/$algo" --user a2 -k 3 > "$work/for.out" 2>&1 || fail "for $algo: $(cat "$work/for.out")"
  sed -n 2p "$work/for.out" | grep -q $'^ 1\tA2\t.*Action film 2\tbecause you liked Action film' ||
    fail "for $algo: first recommendation is not A2 with an explanation: $(cat "$work/for.out")"
done
echo "ok   for: A2 first for user a2 (als, bpr, itemknn), with 'because you liked'"
"$amuse" recommend for "$work/als" --user b1 -k 5 --tag action > "$work/tag.out" 2>&1 || fail "tag: $(cat "$work/tag.out")"
grep -q $'\tB' "$work/tag.out" && fail "tag filter let a Drama through: $(cat "$work/tag.out")"
grep -q $'\tA' "$work/tag.out" || fail "tag filter left nothing: $(cat "$work/tag.out")"
"$amuse" recommend for "$work/als" --liked B0,B2,B3 -k 1 > "$work/new.out" 2>&1 || fail "fold-in: $(cat "$work/new.out")"
grep -q $'^ 1\tB[145]\t' "$work/new.out" || fail "fold-in of a new B fan: $(cat "$work/new.out")"
echo "ok   for: tag filter, fold-in of a new user"
"$amuse" recommend similar "$work/itemknn" --item B3 -k 5 > "$work/sim.out" 2>&1 || fail "similar: $(cat "$work/sim.out")"
[ "$(grep -c $'\tB[0-5]\t' "$work/sim.out")" = 5 ] || fail "similar B3: not the five other B items: $(cat "$work/sim.out")"
expect_fail "item 'Q' is not in the model" "$work/none" -- "$amuse" recommend similar "$work/als" --item Q
echo "ok   similar: the other B items for B3"

"$amuse" recommend eval --data "$work/events.tsv" --split time --threads 1 --factors 4 \
  --json "$work/eval.json" > "$work/eval.out" 2>&1 || fail "eval: $(cat "$work/eval.out")"
for algo in pop itemknn als bpr; do
  grep -q "^$algo " "$work/eval.out" || fail "eval: no $algo row: $(cat "$work/eval.out")"
done
grep -q '"debias"' "$work/eval.json" || fail "eval: no debias table in the JSON"
echo "ok   eval: four algorithms side by side, JSON written"

printf 'a0\tA1\t4\t1\na0\tA2\t9\t2\n' > "$work/range.tsv"
expect_fail "range.tsv:2: value 9 is outside [0.5, 5]" "$work/out1" -- \
  "$amuse" recommend train --data "$work/range.tsv" --algo als --min-value 0.5 --max-value 5 --output "$work/out1"
printf 'a0\tA1\t4\t1\na0 A2 4 2\n' > "$work/bad.tsv"
expect_fail "bad.tsv:2: expected user" "$work/out2" -- \
  "$amuse" recommend train --data "$work/bad.tsv" --algo als --output "$work/out2"
expect_fail "user 'nobody' is not in the model" "$work/none" -- \
  "$amuse" recommend for "$work/als" --user nobody
expect_fail "--liked: item 'Z9' is not in the model" "$work/none" -- \
  "$amuse" recommend for "$work/als" --liked A1,Z9
expect_fail "-k: 0 is outside" "$work/none" -- "$amuse" recommend for "$work/als" --user a1 -k 0
expect_fail "-k: 100000000 is outside" "$work/none" -- "$amuse" recommend for "$work/als" --user a1 -k 100000000
expect_fail "--split: 'sideways'" "$work/out4" -- \
  "$amuse" recommend train --data "$work/events.tsv" --algo pop --split sideways --output "$work/out4"
expect_fail "--algo: 'svd'" "$work/out3" -- \
  "$amuse" recommend train --data "$work/events.tsv" --algo svd --output "$work/out3"
mkdir "$work/words" && echo '{"type": "word2vec"}' > "$work/words/config.json"
expect_fail "not a recommender config" "$work/none" -- "$amuse" recommend for "$work/words" --user a1

[ $failures -eq 0 ] && echo "all passed" || echo "$failures failed"
exit $((failures > 0))
