#!/usr/bin/env bash
# recsys.sh - amuse's recommenders on MovieLens (r-cran-dslabs: 100,004 ratings, 671 users), in
# one invocation:
#  1. every algorithm (pop, item-kNN, ALS, BPR) on the per-user random 75/25 split (seed 1),
#     each tuned on a validation split of the training part (--tune), with accuracy and bias
#     figures, the debias re-ranking trade-off table and ALS with inverse-propensity weights;
#  2. the same on the per-user 75/25 time split;
#  3. amuse's ALS against the reference ALS (NumPy/SciPy, exact solves, PEERS/als_reference.py)
#     on the same train/test files with the same factors (64), reg (0.1), alpha (10) and
#     iterations, both on 2 threads: seconds per iteration ratio, P@10 and nDCG@10 side by side;
#     and amuse's fold-in time per user.
# Writes bench/results/recsys.json (--quick: recsys-quick.json); the last line is a summary.
#
#   bench/recsys.sh [--quick] [--peers DIR]
#      --quick    under 5 minutes: no tuning runs (pop, item-kNN and ALS take the settings the
#                 full run's validation tuning picked: item-kNN 20 neighbours, shrink 50; ALS
#                 reg 50, alpha 1), BPR is left out (it was never the best), and the reference
#                 runs 2 iterations instead of 15
#      --peers    where als_reference.py lives (default ../shared/peers)
#
# The machines are shared with other work: absolute seconds move from run to run, the ratio less.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
peers=../shared/peers
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --peers) peers=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "recsys.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -f "$peers/als_reference.py" ] || peers=/work/shared/peers
iters=15
out=bench/results/recsys.json
settings=(--tune)
if [ $quick = 1 ]; then
  iters=2; out=bench/results/recsys-quick.json
  settings=(--algos pop,itemknn,als --neighbours 20 --shrink 50 --reg 50 --alpha 1)
fi
threads=2

need=()
/usr/bin/python3 -c 'import numpy, scipy' 2>/dev/null || need+=(python3-numpy python3-scipy)
Rscript -e 'library(dslabs)' >/dev/null 2>&1 || need+=(r-cran-dslabs)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
[ -f data/movielens/ratings.tsv ] || data/make_movielens.sh data/movielens
if [ ! -x build/amuse ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j2 >/dev/null
fi
data=data/movielens/ratings.tsv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Run a copy, so that a rebuild during the run does not change the program under test.
mkdir "$tmp/bin" && cp -P build/amuse build/libamuse.so* "$tmp/bin/"
export LD_LIBRARY_PATH="$tmp/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
amuse=$tmp/bin/amuse
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

start_s=$(date +%s)
echo "== random split, every algorithm ${settings[*]}" >&2
"$amuse" recommend eval --data "$data" --split random --seed 1 "${settings[@]}" --threads $threads \
  --ipw 0.25,0.5,1 --write-split "$tmp/random" --json "$tmp/random.json" | tee "$tmp/random.txt" >&2
echo "== time split, every algorithm ${settings[*]}" >&2
"$amuse" recommend eval --data "$data" --split time "${settings[@]}" --threads $threads \
  --json "$tmp/time.json" | tee "$tmp/time.txt" >&2

echo "== ALS: amuse vs reference, factors 64, reg 0.1, alpha 10, $iters iterations, $threads threads" >&2
"$amuse" recommend eval --data "$data" --split random --seed 1 --algos als --factors 64 \
  --reg 0.1 --alpha 10 --iters $iters --threads $threads --debias 0 \
  --json "$tmp/als.json" | tee "$tmp/als.txt" >&2
OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
  /usr/bin/python3 "$peers/als_reference.py" --train "$tmp/random/train.tsv" \
  --test "$tmp/random/test.tsv" --factors 64 --reg 0.1 --alpha 10 --iters $iters --seed 0 \
  > "$tmp/reference.json"
cat "$tmp/reference.json" >&2
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
wall_s=$(( $(date +%s) - start_s ))

mkdir -p bench/results
/usr/bin/python3 - "$tmp" "$out" "$quick" "$load_before" "$load_after" "$wall_s" <<'EOF'
import json, sys
tmp, out, quick, lb, la, wall = sys.argv[1:]
r = json.load(open(f"{tmp}/random.json")); t = json.load(open(f"{tmp}/time.json"))
a = json.load(open(f"{tmp}/als.json")); ref = json.load(open(f"{tmp}/reference.json"))
def best(d): return d["algorithms"][d["best"]]
pop, b = r["algorithms"]["pop"], best(r)
popt, bt = t["algorithms"]["pop"], best(t)
als = a["algorithms"]["als"]
# the debias trade-off: the largest coverage gain whose nDCG loss stays within 10%
base = r["debias"][0]["metrics"] if r["debias"] else b
trade = [{"penalty": x["penalty"], "precision": x["metrics"]["precision"],
          "ndcg": x["metrics"]["ndcg"], "coverage": x["metrics"]["coverage"],
          "aplt": x["metrics"]["aplt"], "gini": x["metrics"]["gini"],
          "ndcg_loss": 1 - x["metrics"]["ndcg"] / base["ndcg"],
          "coverage_gain": x["metrics"]["coverage"] / base["coverage"]} for x in r["debias"]]
ok = [x for x in trade if x["ndcg_loss"] <= 0.10]
als_base = r["algorithms"].get("als")
ipw = [{"ipw": x["ipw"], "precision": x["metrics"]["precision"], "ndcg": x["metrics"]["ndcg"],
        "coverage": x["metrics"]["coverage"], "aplt": x["metrics"]["aplt"],
        "ndcg_loss": 1 - x["metrics"]["ndcg"] / als_base["ndcg"],
        "coverage_gain": x["metrics"]["coverage"] / als_base["coverage"]} for x in r.get("ipw", [])]
dok = [x for x in trade if x["coverage_gain"] >= 2]
res = {
  "quick": quick == "1", "threads": r["threads"],
  "p10_pop": pop["precision"], "p10_best": b["precision"], "best": r["best"],
  "p10_best_over_pop": b["precision"] / pop["precision"],
  "p10_pop_time": popt["precision"], "p10_best_time": bt["precision"], "best_time": t["best"],
  "p10_best_over_pop_time": bt["precision"] / popt["precision"],
  "coverage_pop": pop["coverage"], "coverage_best": b["coverage"],
  "coverage_best_over_pop": b["coverage"] / pop["coverage"],
  "debias_coverage_gain_within_10pct_ndcg": max(x["coverage_gain"] for x in ok) if ok else None,
  "debias_ndcg_loss_at_2x_coverage": min(x["ndcg_loss"] for x in dok) if dok else None,
  "coverage_best_debiased": max((x["coverage"] for x in ok), default=None),
  "als_speed_ratio": ref["seconds_per_iter"] / als["seconds_per_iter"],
  "als_seconds_per_iter": als["seconds_per_iter"], "reference_seconds_per_iter": ref["seconds_per_iter"],
  "als_p10": als["precision"], "reference_p10": ref["p_at_10"],
  "als_ndcg10": als["ndcg"], "reference_ndcg10": ref["ndcg_at_10"],
  "als_p10_rel_diff": als["precision"] / ref["p_at_10"] - 1,
  "als_ndcg10_rel_diff": als["ndcg"] / ref["ndcg_at_10"] - 1,
  "als_iters": ref["iters"], "foldin_ms": a["foldin_ms"],
  "random": r, "time": t, "debias_tradeoff": trade, "ipw_tradeoff": ipw, "reference": ref,
  "loadavg_before": lb, "loadavg_after": la, "wall_seconds": int(wall),
  "note": "shared 2-core machine loaded by other work; compare ratios, not seconds",
}
json.dump(res, open(out, "w"), indent=1)
print(f"{out}: P@10 best/pop {res['p10_best_over_pop']:.2f}x (random, {r['best']}), "
      f"{res['p10_best_over_pop_time']:.2f}x (time, {t['best']}); coverage best/pop "
      f"{res['coverage_best_over_pop']:.1f}x; ALS {res['als_speed_ratio']:.0f}x the reference "
      f"(P@10 {als['precision']:.4f} vs {ref['p_at_10']:.4f}, nDCG@10 {als['ndcg']:.4f} vs "
      f"{ref['ndcg_at_10']:.4f}); fold-in {a['foldin_ms']:.3f} ms")
EOF
