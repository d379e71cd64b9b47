#!/usr/bin/env bash
# cli_serve_cancel.sh - a client that goes away while its request waits for the model has its
# work dropped: with one sample per batch and every batch slowed to 400 ms, eight clients that
# give up after 1 s (curl --max-time 1) leave most of their jobs queued; the server notices the
# closed connections, takes those jobs out of the queue, counts them in
# amuse_requests_cancelled_total and /v2/models/{m}/stats, and runs fewer batches than requests.
#
# usage: bash cli_serve_cancel.sh <path to amuse> <fixtures dir>
# Needs dataset-fashion-mnist, curl and python3. Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-cancel

serve_lib_require_data

REPO="$TMP/repo"
mkdir -p "$REPO/fashion"
if ! train_tiny_model "$REPO/fashion/1"; then
    echo "$passed passed, $failed failed"
    exit 1
fi
fp32_request "$TMP/fp32.json"

start_server main --max-batch-size 1 --max-queue-delay-us 0 --debug-batch-sleep-ms 400 \
    --threads 16 || {
    echo "$passed passed, $failed failed"
    exit 1
}
KEY=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/main.log" | head -n 1)
[ -n "$KEY" ] || bad "no admin key printed: $(cat "$TMP/main.log")"

# stat FIELD: a number from the model's statistics.
stat() {
    req GET /v2/models/fashion/stats "$KEY" >/dev/null
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_stats"][0][sys.argv[2]])' \
        "$TMP/body" "$1"
}

N=8
for i in $(seq 1 $N); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 1 -X POST \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        --data-binary "@$TMP/fp32.json" "$URL/v2/models/fashion/infer" >"$TMP/client$i.txt" &
    CLIENTS+=($!)
done
for p in "${CLIENTS[@]}"; do wait "$p"; done
gave_up=$(cat "$TMP"/client*.txt | grep -c '^000$')
[ "$gave_up" -ge 4 ]
check "clients gave up waiting: $gave_up of $N" $? "$(cat "$TMP"/client*.txt | tr '\n' ' ')"

# The queue empties once the server notices the clients left, and the batch that was running
# when its client left finishes (cancelled + executed then account for every request the model
# received). Waits for that
# condition, bounded, rather than for a fixed time.
for _ in $(seq 1 600); do
    req GET /v2/models/fashion/stats "$KEY" >/dev/null
    "$PYTHON" -c 'import json, sys
s = json.load(open(sys.argv[1]))["model_stats"][0]
sys.exit(0 if s["queue_depth"] == 0 and s["cancelled"] + s["execution_count"] >= s["request_count"] else 1)' \
        "$TMP/body" && break
    sleep 0.1
done
cancelled=$(stat cancelled)
executed=$(stat execution_count)
[ "$cancelled" -ge 4 ] && [ "$executed" -lt "$N" ]
check "the server dropped the work of clients that left: $cancelled cancelled, $executed batches run for $N requests" $? "$(cat "$TMP/body")"

req GET /metrics "$KEY" >/dev/null
metric=$(sed -n 's/^amuse_requests_cancelled_total{model="fashion"} \([0-9]*\)$/\1/p' "$TMP/body")
[ -n "$metric" ] && [ "$metric" -eq "$cancelled" ]
check "amuse_requests_cancelled_total{model=\"fashion\"} is $metric" $? "$(grep cancelled "$TMP/body")"
grep -q '"path": "/v2/models/fashion/infer", "status": 499' "$TMP/main.log"
check "the access log records a cancelled request as 499" $? "$(grep infer "$TMP/main.log" | tail -n 3)"

expect "a patient client still gets its answer" 200 '"model_version": "1"' POST /v2/models/fashion/infer "$KEY" "$TMP/fp32.json"
[ "$(stat cancelled)" = "$cancelled" ]
check "a request that was answered is not counted as cancelled" $? "$(cat "$TMP/body")"

stop_server
check "SIGTERM exits 0" $? "exit status $?: $(tail -n 3 "$TMP/main.log")"
if grep -lE 'Sanitizer|runtime error:' "$TMP"/*.log >/dev/null 2>&1; then
    bad "sanitizer report in a server log: $(grep -hm3 -E 'Sanitizer|runtime error:' "$TMP"/*.log)"
else
    ok "no sanitizer report in any server log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
