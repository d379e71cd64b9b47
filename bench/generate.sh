#!/usr/bin/env bash
# generate.sh - amuse serve's streaming text generation under 1, 4 and 16 concurrent streaming
# clients (bench/generate_clients.py, plain HTTP/1.1 on loopback): time to first token p50/p99,
# tokens/s per stream and in total. Target (issue 7): first token p99 <= 50 ms at 16 streams.
#
# There is no peer here: the figure that makes it fair is gain16 = total tokens/s at 16 streams /
# total tokens/s at 1 stream (continuous batching: 16 streams share one batched LSTM step per
# token). The server also reports its threads and resident memory at 16 streams (one thread per
# connection: docs/serve.md, "Streaming"). Writes bench/results/generate.json
# (generate-quick.json with --quick). The machine is shared: figures are noisy.
#
#   bench/generate.sh --quick     fewer requests (< 1 min)
#   bench/generate.sh             the full run
#   options: --amuse PATH (build/amuse)  --tool PATH (build/tests/gen_tiny_lm)
#            --model DIR: a generator model directory (default: Embedding 64 -> LSTM 256 x 2 ->
#            Dense, trained 3 epochs by gen_tiny_lm so it rarely ends a stream early; its
#            vocabulary is small, 28 ids, so the output layer is cheap)
#            --threads N: the model worker's threads (--model-threads; default 1: on a loaded
#            2-core machine two OpenMP threads wait for each other at every step)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 amuse=build/amuse tool=build/tests/gen_tiny_lm model="" threads=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --amuse) amuse="$2"; shift ;;
    --tool) tool="$2"; shift ;;
    --model) model="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "generate.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$amuse" ] || { echo "generate.sh: $amuse missing (cmake --build build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/amuse-bench-generate.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/repo/lm" bench/results
if [ -n "$model" ]; then
  cp -r "$model" "$work/repo/lm/1"
  desc="$model"
else
  [ -x "$tool" ] || { echo "generate.sh: $tool missing (cmake --build build --target gen_tiny_lm)" >&2; exit 1; }
  "$tool" "$work/repo/lm/1" 256 2 3 >/dev/null
  desc="Embedding 64 -> LSTM 256 -> LSTM 256 -> Dense 28 (softmax), 3 epochs on a verse (gen_tiny_lm)"
fi
"$amuse" serve --host 127.0.0.1 --port 0 --repository "$work/repo" --db "$work/keys.db" \
  --model-threads "$threads" --poll-interval-s 0 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 1 300); do grep -q '^amuse: ready' "$work/log" && break; sleep 0.1; done
grep -q '^amuse: ready' "$work/log" || { echo "generate.sh: the server did not start: $(tail -n 3 "$work/log")" >&2; exit 1; }
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/log" | head -n 1)
key=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$work/log" | head -n 1)

requests=8 tokens=128
[ $quick = 1 ] && requests=2 tokens=64
python3 bench/generate_clients.py 127.0.0.1 "$port" "$key" lm 1 1 8 >/dev/null # warm-up
rows=()
for c in 1 4 16; do
  if [ "$c" = 16 ]; then # the server's threads and memory while 16 streams run
    python3 bench/generate_clients.py 127.0.0.1 "$port" "$key" lm "$c" "$requests" "$tokens" >"$work/r$c" &
    cpid=$!
    peak_threads=0 peak_rss=0
    while kill -0 "$cpid" 2>/dev/null; do
      t=$(sed -n 's/^Threads:\s*//p' "/proc/$pid/status"); r=$(sed -n 's/^VmRSS:\s*\([0-9]*\).*/\1/p' "/proc/$pid/status")
      [ "$t" -gt "$peak_threads" ] && peak_threads=$t
      [ "$r" -gt "$peak_rss" ] && peak_rss=$r
      sleep 0.05
    done
    wait "$cpid"
  else
    python3 bench/generate_clients.py 127.0.0.1 "$port" "$key" lm "$c" "$requests" "$tokens" >"$work/r$c"
  fi
  rows+=("$(cat "$work/r$c")")
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%2d streams: first token p50 %6.2f ms p99 %6.2f ms, %7.1f tok/s per stream, %8.1f tok/s total, %d errors" % (r["clients"], r["ttft_ms_p50"], r["ttft_ms_p99"], r["tokens_per_s_per_stream"], r["tokens_per_s_total"], r["errors"]))' "${rows[-1]}"
done
mode=full
[ $quick = 1 ] && mode=quick
out=bench/results/generate.json
[ $quick = 1 ] && out=bench/results/generate-quick.json
python3 - "$out" "$mode" "$desc" "$threads" "$peak_threads" "$peak_rss" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)" "${rows[@]}" <<'PY'
import json, sys, time
out, mode, desc, threads, peak_threads, peak_rss, cores, load = sys.argv[1:9]
rows = [json.loads(r) for r in sys.argv[9:]]
by = {r["clients"]: r for r in rows}
res = {
    "benchmark": "generate", "mode": mode, "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    "model": desc, "model_threads": int(threads),
    "host": "%s cores, load average %s (shared with other jobs: times are noisy)" % (cores, load),
    "runs": rows,
    "ttft_ms_p99_16": by[16]["ttft_ms_p99"], "target_ttft_ms_p99_16": 50,
    "gain16": round(by[16]["tokens_per_s_total"] / by[1]["tokens_per_s_total"], 2),
    "server_threads_at_16": int(peak_threads), "server_rss_mb_at_16": round(int(peak_rss) / 1024, 1),
}
json.dump(res, open(out, "w"), indent=2)
print("gain16 %.2f (total tokens/s, 16 streams / 1 stream); server at 16 streams: %d threads, %.1f MB; wrote %s"
      % (res["gain16"], res["server_threads_at_16"], res["server_rss_mb_at_16"], out))
PY
