#!/usr/bin/env bash
# serve.sh - the model server under load: wrk drives KServe V2 infer requests (one t10k image
# each, FP32 [1, 28, 28, 1]) at the seed CNN, at 1, 8, 32 and 64 connections, with dynamic
# batching off (--max-batch-size 1) and on (--max-batch-size 32), in one invocation.
# Writes bench/results/serve.json (serve-quick.json with --quick): per setting rps, p50_ms,
# p99_ms, errors and the mean batch size the server formed; and batching_gain = rps with
# batching / rps without, at 32 connections. The last line summarises.
#
#   bench/serve.sh            15 s per setting (about 3 minutes)
#   bench/serve.sh --quick    5 s per setting (about 1.5 minutes)
#   bench/serve.sh --soak [SECONDS]
#                             mixed traffic for SECONDS (default 1800) at 16 connections on the
#                             default models (models/default): V2 inference on both CNN and DNN,
#                             image classification, embeddings, similar words, /metrics, bad
#                             requests that must get their 4xx, and a hot reload every 2 minutes
#                             (bench/serve_soak.py); reports unexpected errors, RSS growth and p99
#                             per window (writes bench/results/serve-soak.json)
#   bench/serve.sh --recommend [--quick]
#                             GET /v1/recommendations (a random MovieLens user each, k 10, one
#                             in ten with a like folded in) at 1 and 32 connections on a server
#                             that has every default model (models/default) and the MovieLens
#                             recommender (scripts/make-movielens-model.sh) loaded: p50/p99 and
#                             the server's resident memory (VmRSS) before and after the load;
#                             targets p99 < 20 ms at 32 connections, RSS < 150 MB. 15 s per
#                             setting (5 s with --quick). Writes bench/results/serve-recommend.json
#                             (serve-recommend-quick.json)
#
# The model is out/fashion-cnn when the quick start has trained it, else the default
# models/default/fashion-cnn, else a 1-epoch CNN trained here. Everything runs on 127.0.0.1; libmicrohttpd runs a thread per connection.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full duration=15
case "${1:-}" in
  "") ;;
  --quick) mode=quick duration=5 ;;
  --recommend) mode=recommend
               case "${2:-}" in --quick) duration=5 ;; "") ;; *) echo "serve.sh: --recommend takes --quick" >&2; exit 2 ;; esac ;;
  --soak) mode=soak duration=${2:-1800}
          case "$duration" in ''|*[!0-9]*) echo "serve.sh: --soak takes seconds" >&2; exit 2 ;; esac ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "serve.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

command -v wrk >/dev/null || scripts/deps.sh wrk
command -v curl >/dev/null || scripts/deps.sh curl
if [ ! -x build/amuse ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
fi
amuse=$(pwd)/build/amuse
tmp=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/repo/fashion-cnn"
if [ "$mode" = soak ]; then
  mkdir -p "$tmp/soak-repo" && cp -r models/default/. "$tmp/soak-repo/"
elif [ -f out/fashion-cnn/model.safetensors ]; then
  cp -r out/fashion-cnn "$tmp/repo/fashion-cnn/1"
elif [ -f models/default/fashion-cnn/1/model.safetensors ]; then
  cp -r models/default/fashion-cnn/1 "$tmp/repo/fashion-cnn/1"
else
  echo "serve.sh: training a 1-epoch CNN for the benchmark (out/fashion-cnn is missing)" >&2
  "$amuse" train models/fashion-cnn.json --epochs 1 --train-limit 12800 --no-eval -q \
    --output "$tmp/repo/fashion-cnn/1"
fi
key=$("$amuse" keys create --tenant bench --scope admin --db "$tmp/keys.db" 2>/dev/null)

# One real t10k image as a V2 FP32 request.
python3 - "$tmp/body.json" <<'PY'
import gzip, json, sys
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
pixels = [b / 255.0 for b in raw[16:16 + 784]]
json.dump({"id": "bench", "inputs": [{"name": "input", "shape": [1, 28, 28, 1],
           "datatype": "FP32", "data": pixels}]}, open(sys.argv[1], "w"))
# The same request with the binary tensor extension: JSON header, then 784 little-endian floats.
import struct
header = json.dumps({"id": "bench", "inputs": [{"name": "input", "shape": [1, 28, 28, 1],
                     "datatype": "FP32", "parameters": {"binary_data_size": 784 * 4}}]}).encode()
open(sys.argv[1][:-5] + ".bin", "wb").write(header + struct.pack("<784f", *pixels))
open(sys.argv[1][:-5] + ".ihcl", "w").write(str(len(header)))
PY

port=$((20000 + RANDOM % 20000))
start_server() { # $1 = max batch size, $2 = image decode threads, $3 = repository (default $tmp/repo)
  "$amuse" serve --repository "${3:-$tmp/repo}" --db "$tmp/keys.db" --port "$port" --no-access-log \
    --max-batch-size "$1" --threads "$2" --max-queue-size 1024 --max-connections-per-client 256 \
    --poll-interval-s 0 2>"$tmp/serve.log" &
  server=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "serve.sh: the server did not become ready:" >&2; cat "$tmp/serve.log" >&2; exit 1
}
stop_server() { kill -TERM "$server"; wait "$server" || true; server=""; }
stats() { # inference_count execution_count
  curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v2/models/fashion-cnn/stats" |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["model_stats"][0]; print(s["inference_count"], s["execution_count"])'
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
run_wrk() { # $1 = connections, $2 = seconds [, $3 = binary] -> one JSON object with the batch size
  local before after body="$tmp/body.json" ihcl=""
  if [ "${3:-}" = binary ]; then body="$tmp/body.bin" ihcl=$(cat "$tmp/body.ihcl"); fi
  before=$(stats)
  BODY="$body" IHCL="$ihcl" KEY="$key" wrk -t "$(( $1 < 2 ? 1 : 2 ))" -c "$1" -d "${2}s" --timeout 10s \
    -s bench/serve_wrk.lua "http://127.0.0.1:$port/v2/models/fashion-cnn/infer" >"$tmp/wrk.out"
  after=$(stats)
  python3 - "$before" "$after" "$1" "$tmp/wrk.out" <<'PY'
import json, sys
before, after, conns = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3])
line = [l for l in open(sys.argv[4]) if l.startswith("WRK_JSON ")][-1]
r = json.loads(line[len("WRK_JSON "):])
items = int(after[0]) - int(before[0]); batches = int(after[1]) - int(before[1])
r["connections"] = conns
r["mean_batch_size"] = round(items / batches, 2) if batches else 0
print(json.dumps(r))
PY
}

results="$tmp/results.jsonl"
if [ "$mode" = recommend ]; then
  rm -rf "$tmp/repo" && mkdir -p "$tmp/repo" && cp -r models/default/. "$tmp/repo/"
  if [ -d repository/movielens/1 ]; then
    mkdir -p "$tmp/repo/movielens" && cp -r repository/movielens/1 "$tmp/repo/movielens/1"
  else
    scripts/deps.sh r-cran-dslabs
    scripts/make-movielens-model.sh "$tmp/repo" "$amuse"
  fi
  start_server 32 2
  models=$(curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/models" |
           python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
  rss_idle=$(rss_kb)
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; } # the server's user + system CPU
  for c in 1 32; do
    echo "== GET /v1/recommendations, $c connections, ${duration}s" >&2
    cpu0=$(cpu_ticks)
    KEY="$key" wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "${duration}s" --timeout 10s \
      -s bench/serve_recommend_wrk.lua "http://127.0.0.1:$port" >"$tmp/wrk.out"
    cpu1=$(cpu_ticks)
    # server CPU milliseconds per request: what the latency would be on an idle core, roughly
    grep '^WRK_JSON ' "$tmp/wrk.out" | tail -1 | sed 's/^WRK_JSON //' |
      python3 -c "import json,sys; r=json.load(sys.stdin); r['connections']=$c; r['server_cpu_ms_per_request']=round(($cpu1-$cpu0)*1000/$(getconf CLK_TCK)/max(r['requests'],1),4); print(json.dumps(r))" >>"$results"
    tail -1 "$results" >&2
  done
  rss_after=$(rss_kb)
  stop_server
  out=bench/results/serve-recommend.json
  if [ "$duration" = 5 ]; then out=bench/results/serve-recommend-quick.json; fi
  python3 - "$results" "$out" "$duration" "$models" "$rss_idle" "$rss_after" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
c32 = next(r for r in rows if r["connections"] == 32)
out = {"mode": "recommend", "seconds_per_setting": int(sys.argv[3]),
       "request": "GET /v1/recommendations?model=movielens&user=<random of 671>&k=10 "
                  "(1 in 10 with liked=318,2571)",
       "models_loaded": int(sys.argv[4]), "nproc": os.cpu_count(), "settings": rows,
       "p99_ms_32_connections": c32["p99_ms"], "rps_32_connections": c32["rps"],
       "server_cpu_ms_per_request": c32["server_cpu_ms_per_request"],
       "rss_mb_loaded": round(int(sys.argv[5]) / 1024, 1),
       "rss_mb_after_load": round(int(sys.argv[6]) / 1024, 1),
       "errors": sum(r["errors"] for r in rows), "loadavg_at_end": sys.argv[7],
       "targets": {"p99_ms_32_connections": 20, "rss_mb": 150},
       "note": "machine shared with other jobs (wrk and the server on the same 2 cores)"}
json.dump(out, open(sys.argv[2] + ".tmp", "w"), indent=1)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
print("serve --recommend: p99 %.1f ms at 32 connections (%.0f rps, %.3f server CPU-ms per "
      "request), RSS %.1f MB loaded, %.1f MB after, %d models, %d errors"
      % (c32["p99_ms"], c32["rps"], c32["server_cpu_ms_per_request"], out["rss_mb_loaded"],
         out["rss_mb_after_load"], out["models_loaded"], out["errors"]))
PY
  exit 0
fi
if [ "$mode" = soak ]; then
  start_server 32 2 "$tmp/soak-repo"
  status=0
  python3 bench/serve_soak.py "$port" "$server" "$key" "$duration" 16 bench/results/serve-soak.json.new || status=$?
  stop_server
  python3 - bench/results/serve-soak.json.new "$(nproc)" "$(uptime | sed 's/.*load average: //')" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))
r["mode"] = "soak"; r["nproc"] = int(sys.argv[2]); r["load_average_at_end"] = sys.argv[3]
r["note"] = "machine shared with other jobs; see docs/BENCHMARKS.md"
json.dump(r, open(sys.argv[1], "w"), indent=1)
os.replace(sys.argv[1], sys.argv[1][:-4])
PY
  exit "$status"
fi

for batch in 1 32; do
  start_server "$batch" 2
  run_wrk 8 2 >/dev/null                         # warm up
  for c in 1 8 32 64; do
    echo "== max_batch_size $batch, $c connections, ${duration}s" >&2
    run_wrk "$c" "$duration" | python3 -c "import json,sys; r=json.load(sys.stdin); r['max_batch_size']=$batch; print(json.dumps(r))" >>"$results"
    tail -1 "$results" >&2
  done
  if [ "$batch" = 32 ]; then
    echo "== max_batch_size $batch, 32 connections, binary tensor extension, ${duration}s" >&2
    run_wrk 32 "$duration" binary | python3 -c "import json,sys; r=json.load(sys.stdin); r['max_batch_size']=$batch; r['encoding']='binary'; print(json.dumps(r))" >>"$results"
    tail -1 "$results" >&2
  fi
  stop_server
done

out=bench/results/serve.json
[ "$mode" = quick ] && out=bench/results/serve-quick.json
python3 - "$results" "$out" "$mode" "$duration" <<'PY'
import json, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def find(batch, c, encoding="json"):
    return next(r for r in rows if r["max_batch_size"] == batch and r["connections"] == c
                and r.get("encoding", "json") == encoding)
gain = find(32, 32)["rps"] / find(1, 32)["rps"]
out = {"mode": sys.argv[3], "seconds_per_setting": int(sys.argv[4]), "model": "fashion-cnn",
       "request": "V2 infer, FP32 [1,28,28,1]", "nproc": __import__("os").cpu_count(),
       "settings": rows, "batching_gain": round(gain, 2),
       "p99_ms_batching_32_connections": find(32, 32)["p99_ms"],
       "rps_json_32_connections": find(32, 32)["rps"],
       "rps_binary_32_connections": find(32, 32, "binary")["rps"],
       "errors": sum(r["errors"] for r in rows)}
tmp = sys.argv[2] + ".tmp"
json.dump(out, open(tmp, "w"), indent=1)
__import__("os").replace(tmp, sys.argv[2])
print("serve: batching_gain %.2f at 32 connections (%.0f vs %.0f rps), p99 %.1f ms with batching, "
      "binary extension %.0f rps, %d errors" % (gain, find(32, 32)["rps"], find(1, 32)["rps"],
                                               find(32, 32)["p99_ms"],
                                               find(32, 32, "binary")["rps"], out["errors"]))
PY
