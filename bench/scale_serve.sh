#!/usr/bin/env bash
# scale_serve.sh - the server half of bench/scale.sh: `amuse serve` replicas behind nginx, with the
# key store in SQLite (one file on this machine) or PostgreSQL (a throwaway cluster with fsync on,
# as durable as SQLite's synchronous=FULL; with the default key cache, and without it), 1 and 2
# replicas, in one invocation. wrk drives V2
# infer requests (one t10k image each, the seed CNN, dynamic batching up to 32) through nginx at
# 32 connections, as bench/serve.sh does; a second route, the model metadata GET, is nearly all
# authentication (one key lookup in the store), so it shows the store's own cost.
# Each replica runs 1 model thread and 1 decode thread, so 2 replicas use both cores of this
# machine (and contend for them with nginx, wrk and PostgreSQL, which all run here too).
# Writes bench/results/scale-serve.json (scale-serve-quick.json with --quick): per setting rps,
# p50_ms, p99_ms and errors, and
#   pg_vs_sqlite_rps           PostgreSQL rps / SQLite rps, inference, 2 replicas (target >= 0.8)
#   pg_vs_sqlite_rps_1         the same with 1 replica
#   pg_vs_sqlite_rps_metadata  the same for the metadata route, 2 replicas (the store's cost)
#   pg_uncached_vs_sqlite_rps(_metadata)   the same with --key-cache-ms 0 on PostgreSQL (a
#                              database round trip on every request), 2 replicas
#   replicas_2_vs_1_sqlite, replicas_2_vs_1_pg   rps of 2 replicas / 1 (inference)
# The last line summarises.
#
#   bench/scale_serve.sh                   3 rounds, 10 s per setting and route (about 7 minutes)
#   bench/scale_serve.sh --quick           2 rounds, 4 s (about 2.5 minutes)
#   bench/scale_serve.sh [--quick] --merge-into FILE
#                                          also add those figures to the JSON object in FILE
#                                          (bench/scale.sh's results), under "serve" and at the top
#                                          level for the ratios
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full duration=10 rounds=3 merge=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick duration=4 rounds=2 ;;
    --merge-into) merge=${2:?--merge-into takes a file}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "scale_serve.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

command -v wrk >/dev/null || scripts/deps.sh wrk
command -v curl >/dev/null || scripts/deps.sh curl
. tests/pg_lib.sh
. tests/nginx_lib.sh
pg_find_bin && nginx_find || scripts/deps.sh postgresql nginx libpq-dev
if [ ! -x build/amuse ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
fi
amuse=$(pwd)/build/amuse
if ! "$amuse" --version | grep -q postgres; then
  echo "scale_serve.sh: build/amuse was built without PostgreSQL (install libpq-dev, rebuild)" >&2
  exit 1
fi
tmp=$(mktemp -d)
chmod 711 "$tmp" # the cluster runs as postgres when this runs as root
servers=()
cleanup() {
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null; done
  nginx_stop
  pg_stop_cluster "$tmp/pg"
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/repo/fashion-cnn"
if [ -f out/fashion-cnn/model.safetensors ]; then
  cp -r out/fashion-cnn "$tmp/repo/fashion-cnn/1"
elif [ -f models/default/fashion-cnn/1/model.safetensors ]; then
  cp -r models/default/fashion-cnn/1 "$tmp/repo/fashion-cnn/1"
else
  echo "scale_serve.sh: training a 1-epoch CNN for the benchmark (out/fashion-cnn is missing)" >&2
  "$amuse" train models/fashion-cnn.json --epochs 1 --train-limit 12800 --no-eval -q \
    --output "$tmp/repo/fashion-cnn/1"
fi
python3 - "$tmp/body.json" <<'PY'
import gzip, json, sys
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
pixels = [b / 255.0 for b in raw[16:16 + 784]]
json.dump({"id": "bench", "inputs": [{"name": "input", "shape": [1, 28, 28, 1],
           "datatype": "FP32", "data": pixels}]}, open(sys.argv[1], "w"))
PY

pg_start_cluster "$tmp/pg" durable
sqlite_db="$tmp/keys.db"

start_replicas() { # STORE N KEY_CACHE_MS -> replica ports in $ports, pids in $servers
  local db=$1 n=$2 cache=$3 i port ready
  ports=()
  for i in $(seq 1 "$n"); do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$amuse" serve --repository "$tmp/repo" --db "$db" --host 127.0.0.1 --port "$port" --no-access-log \
      --max-batch-size 32 --threads 1 --model-threads 1 --max-queue-size 1024 \
      --max-connections-per-client 256 --poll-interval-s 0 --key-cache-ms "$cache" \
      2>"$tmp/serve-$n-$i.log" &
    servers+=($!)
    # Ready when its health route answers (bounded); the log names the reason if it exits.
    ready=0
    for _ in $(seq 1200); do
      curl -sf -m 2 "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && ready=1 && break
      kill -0 "${servers[-1]}" 2>/dev/null || break
      sleep 0.1
    done
    if [ "$ready" = 0 ]; then
      echo "scale_serve.sh: replica $i ($db) did not become ready within 120 s:" >&2
      cat "$tmp/serve-$n-$i.log" >&2
      exit 1
    fi
    ports+=("$port")
  done
}
stop_replicas() {
  nginx_stop
  for p in "${servers[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" || true; done
  servers=()
}

run_wrk() { # URL_PATH METHOD SECONDS -> one JSON object
  BODY="$tmp/body.json" KEY="$key" METHOD=$2 wrk -t 2 -c 32 -d "${3}s" --timeout 10s \
    -s bench/serve_wrk.lua "http://127.0.0.1:$NGINX_PORT$1" >"$tmp/wrk.out"
  sed -n 's/^WRK_JSON //p' "$tmp/wrk.out" | tail -n 1
}

results="$tmp/results.jsonl"
# The machine is shared and its load drifts: the four settings run in rounds, in alternating
# order, and each figure is the median over the rounds.
declare -A keys
keys[sqlite]=$("$amuse" keys create --tenant bench --scope admin --db "$sqlite_db" 2>/dev/null)
keys[postgres]=$("$amuse" keys create --tenant bench --scope admin --db "$PG_URL" 2>/dev/null)
# postgres-uncached: PostgreSQL with --key-cache-ms 0, a database round trip on every request.
settings=("sqlite 1" "postgres 1" "sqlite 2" "postgres 2" "postgres-uncached 2")
for round in $(seq 1 "$rounds"); do
  order=("${settings[@]}")
  if [ $((round % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#settings[@]} - 1; i >= 0; i--)); do order+=("${settings[$i]}"); done
  fi
  for setting in "${order[@]}"; do
    read -r store n <<<"$setting"
    db=$sqlite_db cache=-1
    [ "$store" != sqlite ] && db=$PG_URL
    [ "$store" = postgres-uncached ] && cache=0
    key=${keys[${store%-uncached}]}
    start_replicas "$db" "$n" "$cache"
    nginx_start "$tmp/nginx-$store-$n-$round" "${ports[@]}"
    for route in infer metadata; do
      path=/v2/models/fashion-cnn/infer method=POST
      [ "$route" = metadata ] && path=/v2/models/fashion-cnn method=GET
      run_wrk "$path" "$method" 2 >/dev/null # warm up
      echo "== round $round: $store, $n replica(s), $route, 32 connections, ${duration}s" >&2
      run_wrk "$path" "$method" "$duration" | python3 -c "
import json, sys
r = json.load(sys.stdin); r.update(store='$store', replicas=$n, route='$route', round=$round)
print(json.dumps(r))" >>"$results"
      tail -n 1 "$results" >&2
    done
    stop_replicas
  done
done

suffix=""
[ "$mode" = quick ] && suffix=-quick
out=bench/results/scale-serve$suffix.json
python3 - "$results" "$out" "$mode" "$duration" "$merge" "$(uptime | sed 's/.*load average: //')" "$rounds" <<'PY'
import json, os, sys
import statistics
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = []  # one per setting and route: medians over the rounds
for store in ("sqlite", "postgres", "postgres-uncached"):
    for n in (1, 2):
        for route in ("infer", "metadata"):
            rs = [r for r in runs if r["store"] == store and r["replicas"] == n
                  and r["route"] == route]
            if not rs:
                continue
            rows.append({"store": store, "replicas": n, "route": route, "rounds": len(rs),
                         "rps": round(statistics.median(r["rps"] for r in rs), 1),
                         "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 2),
                         "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 2),
                         "rps_each_round": [r["rps"] for r in rs],
                         "errors": sum(r["errors"] for r in rs)})
def get(store, n, route="infer"):
    return next(r for r in rows if r["store"] == store and r["replicas"] == n
                and r["route"] == route)
rps = lambda *a: get(*a)["rps"]
ratio = lambda a, b: round(a / b, 3) if b else 0
out = {"mode": sys.argv[3], "seconds_per_setting": int(sys.argv[4]), "model": "fashion-cnn",
       "request": "V2 infer, FP32 [1,28,28,1], through nginx, 32 connections",
       "per_replica": "1 model thread, 1 decode thread, max batch 32",
       "rounds": int(sys.argv[7]), "figure": "median over the rounds",
       "nproc": os.cpu_count(), "load_average_at_end": sys.argv[6],
       "note": "machine shared with other jobs; see docs/BENCHMARKS.md",
       "settings": rows,
       "pg_vs_sqlite_rps": ratio(rps("postgres", 2), rps("sqlite", 2)),
       "pg_vs_sqlite_rps_1": ratio(rps("postgres", 1), rps("sqlite", 1)),
       "pg_vs_sqlite_rps_metadata": ratio(rps("postgres", 2, "metadata"),
                                          rps("sqlite", 2, "metadata")),
       "p99_ms_sqlite_2": get("sqlite", 2)["p99_ms"], "p99_ms_pg_2": get("postgres", 2)["p99_ms"],
       "pg_uncached_vs_sqlite_rps": ratio(rps("postgres-uncached", 2), rps("sqlite", 2)),
       "pg_uncached_vs_sqlite_rps_metadata": ratio(rps("postgres-uncached", 2, "metadata"),
                                                   rps("sqlite", 2, "metadata")),
       "replicas_2_vs_1_sqlite": ratio(rps("sqlite", 2), rps("sqlite", 1)),
       "replicas_2_vs_1_pg": ratio(rps("postgres", 2), rps("postgres", 1)),
       "errors": sum(r["errors"] for r in rows)}
def write(path, obj):
    tmp = path + ".tmp"
    json.dump(obj, open(tmp, "w"), indent=1)
    os.replace(tmp, path)
write(sys.argv[2], out)
if sys.argv[5]:
    merged = json.load(open(sys.argv[5])) if os.path.exists(sys.argv[5]) else {}
    merged["serve"] = out
    for k in ("pg_vs_sqlite_rps", "pg_vs_sqlite_rps_1", "pg_vs_sqlite_rps_metadata",
              "replicas_2_vs_1_sqlite", "replicas_2_vs_1_pg", "p99_ms_sqlite_2", "p99_ms_pg_2",
              "pg_uncached_vs_sqlite_rps", "pg_uncached_vs_sqlite_rps_metadata"):
        merged[k] = out[k]
    write(sys.argv[5], merged)
print("scale_serve: pg_vs_sqlite_rps %.2f (2 replicas; %.0f vs %.0f rps, p99 %.1f vs %.1f ms), "
      "%.2f with 1, %.2f on the metadata route; without the key cache %.2f (%.2f metadata); "
      "2 vs 1 replicas %.2f (SQLite), %.2f (PostgreSQL); %d errors"
      % (out["pg_vs_sqlite_rps"], rps("postgres", 2), rps("sqlite", 2), out["p99_ms_pg_2"],
         out["p99_ms_sqlite_2"], out["pg_vs_sqlite_rps_1"], out["pg_vs_sqlite_rps_metadata"],
         out["pg_uncached_vs_sqlite_rps"], out["pg_uncached_vs_sqlite_rps_metadata"],
         out["replicas_2_vs_1_sqlite"], out["replicas_2_vs_1_pg"], out["errors"]))
PY
