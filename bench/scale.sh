#!/usr/bin/env bash
# scale.sh - scale-out (issue 13), in one invocation, on the same data and settings side by side:
#
#  cnn     the seed CNN (models/fashion-cnn.json, batch 128) for a fixed number of samples, as
#          1 rank x 2 threads (batch 128) and as `mpirun -np 2` x 1 thread (batch 64 per rank, so
#          the same 128-sample global batch and the same arithmetic): samples/s of each, their
#          ratio cnn_mpi_vs_threads (target >= 0.9) and the final validation accuracy of each
#          (cnn_acc_1, cnn_acc_2; target: within 0.5 points). These 2 vCPUs share their
#          floating-point throughput, so this measures the cost of MPI itself, not a speed-up.
#  w2v     word2vec skip-gram on data/corpus/english.txt, 1 rank x 1 thread vs 2 ranks x 1 thread:
#          training words/s, w2v_speedup_2 (target >= 1.5), and the quality of each: analogy
#          accuracy and WS-353 Spearman (target: within 1 point).
#  server  the server half, bench/scale_serve.sh: 1 and 2 replicas behind nginx, SQLite vs
#          PostgreSQL; it adds pg_vs_sqlite_rps and its own figures to the same result file.
#
# Writes bench/results/scale.json (--quick: scale-quick.json, under 10 minutes); the machine's
# load average before and after, and each run's CPU seconds (user + system, mpirun and both ranks
# included) and wall seconds, are recorded beside the figures: on a shared machine the CPU seconds
# say what the work cost when the wall clock says mostly how busy the machine was.
#
#   bench/scale.sh --quick        CNN 1 epoch on 12800 samples; word2vec 1 epoch
#   bench/scale.sh                CNN 2 epochs on 48000 samples; word2vec 5 epochs
#   options: --only cnn|w2v|server (repeatable; default: all parts)  --amuse PATH (build/amuse)
#            --corpus FILE (data/corpus/english.txt)
# Needs a build with MPI (amuse --version), openmpi-bin, dataset-fashion-mnist, the corpus
# (data/make_corpus.sh) and questions-words.txt + wordsim353.tsv (QUESTIONS=, PAIRS=).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 amuse=build/amuse corpus=data/corpus/english.txt parts=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) parts+=("$2"); shift ;;
    --amuse) amuse="$2"; shift ;;
    --corpus) corpus="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scale.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#parts[@]} -gt 0 ] || parts=(cnn w2v server)
result=bench/results/scale$([ $quick -eq 1 ] && echo -quick || true).json
questions=${QUESTIONS:-../shared/data/questions-words.txt}
pairs=${PAIRS:-../shared/data/wordsim353.tsv}
[ -f "$questions" ] || questions=/work/shared/data/questions-words.txt
[ -f "$pairs" ] || pairs=/work/shared/data/wordsim353.tsv

[ -x "$amuse" ] || { cmake -S . -B build >/dev/null && cmake --build build -j2 >/dev/null; }
case "$("$amuse" --version)" in
  *"MPI: not compiled in"*) echo "scale.sh: $amuse is built without MPI (see scripts/deps.sh)" >&2; exit 1 ;;
esac
# mpirun refuses root unless told (docs/SCALING.md).
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun -np 2 --oversubscribe)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/parts"
want() { printf '%s\n' "${parts[@]}" | grep -qx "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# cpu FILE COMMAND...: run COMMAND, writing "user system wall" seconds (children included) to FILE.
cpu() { local f=$1; shift; /usr/bin/time -f '%U %S %e' -o "$f" "$@"; }
# seconds FILE: user + system CPU seconds from cpu's FILE; wall FILE: wall seconds.
cpu_json() { awk -v k="$2" '{ printf "\"%s_cpu_s\": %.2f, \"%s_wall_s\": %.2f", k, $1 + $2, k, $3 }' "$1"; }

# ---------------------------------------------------------------- CNN: the cost of MPI
# writes $tmp/parts/cnn.json
scale_cnn() {
  local epochs=2 limit=60000
  [ $quick -eq 1 ] && epochs=1 limit=16000
  echo "== CNN: 1 rank x 2 threads, batch 128 ($epochs epochs, $limit samples, 20% held out)" >&2
  cpu "$tmp/cnn1.time" "$amuse" train models/fashion-cnn.json -o "$tmp/cnn1" -e $epochs -b 128 -t 2 \
    --train-limit $limit --seed 42 --no-eval -q >&2
  echo "== CNN: mpirun -np 2 x 1 thread, batch 64 per rank" >&2
  cpu "$tmp/cnn2.time" "${mpirun[@]}" "$amuse" train models/fashion-cnn.json -o "$tmp/cnn2" -e $epochs \
    -b 64 -t 1 --train-limit $limit --seed 42 --no-eval -q >&2
  echo "{$(cpu_json "$tmp/cnn1.time" cnn_1), $(cpu_json "$tmp/cnn2.time" cnn_2)}" >"$tmp/parts/cnn-cpu.json"
  /usr/bin/python3 - "$tmp" "$epochs" "$limit" >"$tmp/parts/cnn.json" <<'PY'
import json, sys
tmp, epochs, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def run(name):
    h = json.load(open("%s/%s/history.json" % (tmp, name)))["epochs"]
    return (sum(e["train_samples"] for e in h) / sum(e["train_seconds"] for e in h),
            h[-1]["val_accuracy"], h[-1]["train_samples"])
s1, a1, n1 = run("cnn1")
s2, a2, n2 = run("cnn2")
print(json.dumps({"cnn_epochs": epochs, "cnn_train_samples_per_epoch": n1,
                  "cnn_samples_s_1rank_2threads": round(s1, 1),
                  "cnn_samples_s_2ranks_1thread": round(s2, 1),
                  "cnn_mpi_vs_threads": round(s2 / s1, 3),
                  "cnn_acc_1": round(a1, 4), "cnn_acc_2": round(a2, 4),
                  "cnn_acc_diff_points": round(abs(a1 - a2) * 100, 3)}))
PY
}

# ---------------------------------------------------------------- word2vec: 1 vs 2 ranks
# writes $tmp/parts/w2v.json
scale_w2v() {
  local iter=5
  [ $quick -eq 1 ] && iter=1
  [ -f "$corpus" ] || { echo "scale.sh: no corpus at $corpus (data/make_corpus.sh)" >&2; exit 1; }
  local flags=(-cbow 0 -size 100 -window 5 -sample 1e-3 -negative 5 -hs 0 -min-count 5 -iter $iter
               -binary 1 -debug 2 -threads 1)
  echo "== word2vec: 1 rank x 1 thread ($iter epochs)" >&2
  cpu "$tmp/w1.time" "$amuse" word2vec -train "$corpus" -output "$tmp/w1.bin" "${flags[@]}" 2>"$tmp/w1.log"
  echo "== word2vec: mpirun -np 2 x 1 thread" >&2
  cpu "$tmp/w2.time" "${mpirun[@]}" "$amuse" word2vec -train "$corpus" -output "$tmp/w2.bin" "${flags[@]}" \
    2>"$tmp/w2.log"
  for w in w1 w2; do
    tr '\r' '\n' <"$tmp/$w.log" | grep -v '^$' | tail -1 >&2
    "$amuse" words eval-analogies "$tmp/$w.bin" "$questions" >"$tmp/$w.analogies"
    "$amuse" words eval-pairs "$tmp/$w.bin" "$pairs" >"$tmp/$w.pairs"
  done
  echo "{$(cpu_json "$tmp/w1.time" w2v_1), $(cpu_json "$tmp/w2.time" w2v_2)}" >"$tmp/parts/w2v-cpu.json"
  /usr/bin/python3 - "$tmp" "$iter" "$(grep -m1 '^Ranks:' "$tmp/w2.log" || true)" >"$tmp/parts/w2v.json" <<'PY'
import json, re, sys
tmp, iter_, layout = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def figures(w):
    log = open("%s/%s.log" % (tmp, w)).read().replace("\r", "\n")
    rate = float(re.findall(r"100\.00%.*?([0-9.]+)k words/s ", log)[-1]) * 1000
    ana = open("%s/%s.analogies" % (tmp, w)).read()
    acc = float(re.search(r"total accuracy:\s*([0-9.]+)%", ana).group(1))
    rho = float(re.search(r"spearman:\s*(-?[0-9.]+)", open("%s/%s.pairs" % (tmp, w)).read()).group(1))
    return rate, acc, rho
r1, a1, s1 = figures("w1")
r2, a2, s2 = figures("w2")
print(json.dumps({"w2v_epochs": iter_, "w2v_layout": layout,
                  "w2v_words_s_1": round(r1), "w2v_words_s_2": round(r2),
                  "w2v_speedup_2": round(r2 / r1, 3),
                  "w2v_analogy_1": a1, "w2v_analogy_2": a2,
                  "w2v_ws353_1": s1, "w2v_ws353_2": s2,
                  "w2v_analogy_diff_points": round(abs(a1 - a2), 2),
                  "w2v_ws353_diff_points": round(abs(s1 - s2) * 100, 2)}))
PY
}

# ---------------------------------------------------------------- server
# bench/scale_serve.sh (the server half: replicas behind nginx, SQLite vs PostgreSQL) adds its
# figures, pg_vs_sqlite_rps among them, to the result file once this script has written it.
scale_server_part() {
  if [ -x bench/scale_serve.sh ]; then
    local q=()
    [ $quick -eq 1 ] && q=(--quick)
    bench/scale_serve.sh "${q[@]}" --merge-into "$result" >&2
  else
    echo '{"server": "not measured: bench/scale_serve.sh is not in this tree"}' >"$tmp/parts/server.json"
  fi
}

load_before=$(load)
want cnn && scale_cnn
want w2v && scale_w2v
if want server && [ ! -x bench/scale_serve.sh ]; then scale_server_part; fi
load_after=$(load)

mkdir -p bench/results
/usr/bin/python3 - "$tmp/parts" "$result" "$quick" "$("$amuse" --version)" "$(nproc)" \
  "$load_before" "$load_after" <<'PY'
import glob, json, sys
parts, out, quick, version, cpus, before, after = sys.argv[1:8]
res = {"quick": quick == "1", "amuse": version, "cpus": int(cpus),
       "load_average_before": before, "load_average_after": after,
       "note": "shared 2-vCPU machine loaded by other jobs; the ratios are measured back to back"}
for p in sorted(glob.glob(parts + "/*.json")):
    res.update(json.load(open(p)))
# The same ratios from CPU seconds (user + system, every process of the run): what each layout
# would give if every rank had a core to itself, which a loaded machine does not give them.
if "cnn_1_cpu_s" in res and "cnn_2_cpu_s" in res:
    res["cnn_mpi_vs_threads_by_cpu"] = round(res["cnn_1_cpu_s"] / res["cnn_2_cpu_s"], 3)
if "w2v_1_cpu_s" in res and "w2v_2_cpu_s" in res:
    res["w2v_speedup_2_by_cpu"] = round(res["w2v_1_cpu_s"] / (res["w2v_2_cpu_s"] / 2), 3)
json.dump(res, open(out, "w"), indent=1)
open(out, "a").write("\n")
print(json.dumps(res))
PY
if want server && [ -x bench/scale_serve.sh ]; then scale_server_part; fi
echo "wrote $result" >&2
