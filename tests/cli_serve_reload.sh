#!/usr/bin/env bash
# cli_serve_reload.sh - hot reload by polling, end to end: a real `amuse serve` polling its
# repository every second. A copied-in version 2 becomes the served one while concurrent requests
# keep getting 200; a broken version 3 (truncated weights) is rejected, shown in the repository
# index with its reason, and 2 keeps serving; a model directory that appears is loaded; one that
# disappears keeps serving until the admin load route unloads it; SIGTERM stops the poller and
# exits 0.
#
# usage: bash cli_serve_reload.sh <path to amuse> <fixtures dir>
# Needs dataset-fashion-mnist, curl and python3. Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-reload

serve_lib_require_data

REPO="$TMP/repo"
mkdir -p "$REPO/fashion"
if ! train_tiny_model "$TMP/trained"; then
    echo "$passed passed, $failed failed"
    exit 1
fi
cp -r "$TMP/trained" "$REPO/fashion/1"
fp32_request "$TMP/fp32.json"

"$AMUSE" serve --help | grep -q -- '--poll-interval-s' && "$AMUSE" serve --help | grep -q AMUSE_POLL_INTERVAL_S
check "--help lists --poll-interval-s and AMUSE_POLL_INTERVAL_S" $? "not in --help"

start_server main --poll-interval-s 1 --threads 8 || {
    echo "$passed passed, $failed failed"
    exit 1
}
KEY=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/main.log" | head -n 1)
[ -n "$KEY" ] || bad "no admin key printed: $(cat "$TMP/main.log")"
expect "version 1 served at start" 200 '"model_version": "1"' POST /v2/models/fashion/infer "$KEY" "$TMP/fp32.json"

# wait_for NAME SECONDS NEEDLE METHOD PATH: poll until the body contains NEEDLE (bounded).
wait_for() {
    local name=$1 secs=$2 needle=$3 i
    for i in $(seq 1 $((secs * 10))); do
        req "$4" "$5" "$KEY" >/dev/null
        if grep -qF -- "$needle" "$TMP/body"; then
            ok "$name (after ~$((i / 10)).$((i % 10)) s)"
            return 0
        fi
        sleep 0.1
    done
    bad "$name: not within $secs s: $(head -c 300 "$TMP/body")"
    return 1
}

# Concurrent clients for the whole swap: three loops, each bounded, every status recorded.
rm -f "$TMP/stop"
for c in 1 2 3; do
    (
        for _ in $(seq 1 2000); do
            [ -e "$TMP/stop" ] && break
            curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -X POST \
                -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
                --data-binary "@$TMP/fp32.json" "$URL/v2/models/fashion/infer"
        done >"$TMP/load$c.txt"
    ) &
    LOADERS+=($!)
done

cp -r "$TMP/trained" "$REPO/fashion/2"
wait_for "a copied-in version 2 is served" 60 '"versions": ["2"]' GET /v2/models/fashion

# A broken version 3: the weights cut short.
cp -r "$TMP/trained" "$REPO/fashion/3"
truncate -s 100 "$REPO/fashion/3/model.safetensors"
wait_for "the index shows version 3" 60 '"version": "3", "state": "UNAVAILABLE", "reason"' GET /v2/repository/index
grep -q "model fashion version 3: .*skipped" "$TMP/main.log"
check "the broken version 3 is logged" $? "$(grep fashion "$TMP/main.log" | tail -n 3)"
expect "version 2 keeps serving after the broken 3" 200 '"model_version": "2"' POST /v2/models/fashion/infer "$KEY" "$TMP/fp32.json"
expect "index: 2 READY" 200 '"version": "2", "state": "READY"' GET /v2/repository/index "$KEY"

touch "$TMP/stop"
for p in "${LOADERS[@]}"; do wait "$p"; done
total=$(cat "$TMP"/load?.txt | wc -l)
non200=$(cat "$TMP"/load?.txt | grep -vc '^200$')
[ "$total" -ge 10 ] && [ "$non200" -eq 0 ]
check "concurrent requests during the swaps: $total sent, all 200" $? "$non200 of $total not 200: $(sort "$TMP"/load?.txt | uniq -c | tr '\n' ' ')"

# Fixing version 3 (new files) is picked up.
cp "$TMP/trained/model.safetensors" "$REPO/fashion/3/model.safetensors"
wait_for "a repaired version 3 is served" 60 '"versions": ["3"]' GET /v2/models/fashion

# A model directory that appears is loaded.
mkdir -p "$REPO/fresh"
cp -r "$TMP/trained" "$REPO/fresh/1"
wait_for "a new model directory is loaded" 60 '"name": "fresh"' GET /v2/models/fresh

# One that disappears keeps serving until the admin load route says otherwise.
rm -rf "$REPO/fresh"
sleep 2.5
expect "a removed model directory keeps serving" 200 '"model_version": "1"' POST /v2/models/fresh/infer "$KEY" "$TMP/fp32.json"
expect "the load route finds nothing on disk" 404 "fresh" POST /v2/repository/models/fresh/load "$KEY"
expect "and the model is unloaded" 404 "not loaded" GET /v2/models/fresh "$KEY"

stop_server
check "SIGTERM stops the poller and exits 0" $? "exit status $?: $(tail -n 3 "$TMP/main.log")"
grep -q "model fashion changed on disk; reloading" "$TMP/main.log"
check "reloads are logged" $? "$(tail -n 5 "$TMP/main.log")"

# Polling off (0): a new version is not picked up.
AMUSE_POLL_INTERVAL_S=0 start_server off && {
    KEY2=$KEY
    cp -r "$TMP/trained" "$REPO/fashion/4"
    sleep 2.5
    expect "polling off: version 3 still served" 200 '"versions": ["3"]' GET /v2/models/fashion "$KEY2"
    stop_server
}

if grep -lE 'Sanitizer|runtime error:' "$TMP"/*.log >/dev/null 2>&1; then
    bad "sanitizer report in a server log: $(grep -hm3 -E 'Sanitizer|runtime error:' "$TMP"/*.log)"
else
    ok "no sanitizer report in any server log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
