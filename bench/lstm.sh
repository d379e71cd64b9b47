#!/usr/bin/env bash
# lstm.sh - amuse against PyTorch on the issue's character LM, in one invocation.
#
# Both sides train Embedding(V, 64) -> LSTM(256) -> LSTM(256) -> Dense(V, softmax) on the Tang and
# Song poems (data/text/poems-zh.txt; V from the same vocabulary rule) with Adam (lr 1e-3, eps
# 1e-7), batch 32 x 64 steps of random windows, Keras's initialisation, the same number of steps
# and threads; then held-out bits per character (last 10% of the corpus) and one-stream sampling
# step by step (sample_ratio: amuse, whose generator runs a one-stream pass on one thread,
# against PyTorch with --threads; sample_ratio_1thread against PyTorch on one thread too). amuse
# also steps 16 streams together (continuous batching) and checks generated poem lines:
# poem_line_ok = fraction of half-lines (between ， 。 ？ ！ ；) whose length is the 5 or 7
# characters the prompt's first line set, over --poems samples (temperature 0.8, up to 48
# characters each), with line shape kept (amuse's sampler constraint, see amuse/generate.h) and
# free (poem_line_ok_free: what the model alone writes), for the benchmark's model and for
# models/default/poems-zh/1 when it exists. Peak RSS: ru_maxrss of each process (amuse's after
# training). Writes bench/results/lstm.json (lstm-quick.json with --quick).
#
#   bench/lstm.sh --quick       30 steps, 400 sampled characters (< 5 min on 2 loaded cores)
#   bench/lstm.sh               500 steps, 2000 sampled characters
#   options: --threads N (2)  --steps N  --poems N (200)  --seed S (1)
#            --python PATH (/usr/bin/python3, which has python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 threads=2 steps="" poems=200 seed=1 python=/usr/bin/python3
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --threads) threads="$2"; shift ;;
    --steps) steps="$2"; shift ;;
    --poems) poems="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --python) python="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "lstm.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ $quick = 1 ]; then steps=${steps:-30} chars=400 out=bench/results/lstm-quick.json
else steps=${steps:-500} chars=2000 out=bench/results/lstm.json; fi
corpus=data/text/poems-zh.txt
[ -s "$corpus" ] || data/make_text.sh data/text
if [ ! -e build/libamuse.so ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target amuse >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/amuse-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L bench/lstm_bench.c -Iinclude -Lbuild -lamuse \
  -Wl,-rpath,"$PWD/build" -lm -o "$work/lstm_bench"

load_before=$(cut -d' ' -f1 /proc/loadavg)
echo "lstm.sh: amuse, $steps steps, $threads threads" >&2
OPENBLAS_NUM_THREADS=$threads "$work/lstm_bench" "$corpus" "$steps" 32 64 0.1 "$threads" "$seed" \
  "$chars" "$poems" models/default/poems-zh/1 > "$work/amuse.json"
echo "lstm.sh: PyTorch, $steps steps, $threads threads" >&2
"$python" bench/lstm_torch.py --corpus "$corpus" --steps "$steps" --threads "$threads" \
  --seed "$seed" --sample-chars "$chars" --json "$work/torch.json" > /dev/null

"$python" - "$work/amuse.json" "$work/torch.json" "$out" "$quick" "$load_before" "$(nproc)" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
out, quick, load, cpus = sys.argv[3], sys.argv[4] == "1", sys.argv[5], sys.argv[6]
r = {
    "benchmark": "lstm", "mode": "quick" if quick else "full",
    "corpus": "data/text/poems-zh.txt", "vocab": a["vocab"], "steps": a["steps"],
    "batch": a["batch"], "seq": a["seq"], "threads": a["threads"],
    "host": "%s cores, load average %s at the start (shared with other jobs: times are noisy)" % (cpus, load),
    "train_chars_s_amuse": a["train_chars_s"], "train_chars_s_torch": t["train_chars_s"],
    "train_ratio": round(a["train_chars_s"] / t["train_chars_s"], 3),
    "bpc_amuse": a["bpc"], "bpc_torch": t["bpc"],
    "bpc_gap": round(a["bpc"] / t["bpc"] - 1, 4),
    "sample_chars_s_amuse": a["sample_chars_s"], "sample_chars_s_torch": t["sample_chars_s"],
    "sample_ratio": round(a["sample_chars_s"] / t["sample_chars_s"], 3),
    "sample_chars_s_torch_1thread": t["sample_chars_s_1thread"],
    "sample_ratio_1thread": round(a["sample_chars_s"] / t["sample_chars_s_1thread"], 3),
    "streams16_chars_s": a["streams16_chars_s"],
    "streams16_gain": round(a["streams16_chars_s"] / a["sample_chars_s"], 3),
    "rss_mb_amuse": a["rss_mb"], "rss_mb_torch": round(t["rss_mb"], 1),
    "poem_line_ok": a["poem_line_ok"], "poem_lines": a["poem_lines"],
    "poem_line_ok_free": a["poem_line_ok_free"], "poem_lines_free": a["poem_lines_free"],
    "poem_line_ok_default_model": a["poem_line_ok_default_model"],
    "poem_lines_default_model": a["poem_lines_default_model"],
    "poem_line_ok_default_model_free": a["poem_line_ok_default_model_free"],
    "poem_lines_default_model_free": a["poem_lines_default_model_free"],
    "torch": t["torch"],
}
json.dump(r, open(out, "w"), indent=1)
print(json.dumps(r, indent=1))
PY
