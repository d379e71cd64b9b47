#!/usr/bin/env bash
# cli_serve_attack.sh - the attacks of issue 8 against a real `amuse serve` on a random 127.0.0.1
# port: image bombs and decode-heavy images (413, bounded memory, health answered meanwhile),
# keyless 16 MB bodies (401 before reading), slow headers and trickled bodies (closed by their
# deadlines), the per-client and total connection limits (health still answered), HTTP
# strictness (Content-Length, Host, chunked over the cap), metrics poisoning, the smaller
# findings, tenant walls (another tenant's model answered with the very bytes of a missing one on
# every route that names a model; per-tenant rate limit and usage) and
# daily quotas per key and per tenant (kept across a restart), --max-image-pixels, and (not an
# attack) the binary tensor extension giving the same answers as JSON.
# The attacks themselves are tests/tools/attack.py (raw sockets, several 127.0.0.x source
# addresses as several clients); this script makes the models and keys, starts the servers and
# checks what is left afterwards. Bounded in count and time; loopback only; no check depends on
# a sleep (waits are for conditions, with generous bounds).
#
# usage: bash cli_serve_attack.sh <path to amuse> <fixtures dir> [attack groups, comma-separated]
# Needs dataset-fashion-mnist, curl and python3.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# RSS bound for the server (MB): generous, for ASan's shadow memory and quarantine; before the
# fixes four requests took it to 2.35 GB.
RSS_LIMIT_MB=${AMUSE_ATTACK_RSS_MB:-1200}
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-attack

serve_lib_require_data

REPO="$TMP/repo"
mkdir -p "$REPO/fashion" "$REPO/words/1" "$REPO/secret/1"
if ! train_tiny_model "$REPO/fashion/1"; then
    echo "$passed passed, $failed failed"
    exit 1
fi
printf '4 4\nking 1 2 3 4\nqueen 1 2 3 5\nbanana -1 0 0.5 2\nprince 1 2 4 4\n' >"$REPO/words/1/vectors.txt"
echo '{"type": "word2vec", "vectors": "vectors.txt"}' >"$REPO/words/1/config.json"
# 'secret' belongs to tenant acme only.
cp "$REPO/words/1/vectors.txt" "$REPO/words/1/config.json" "$REPO/secret/1/"
printf '# who may use this model\nacme\n' >"$REPO/secret/tenants"

start_server main --threads 2 --max-body-bytes 1048576 --max-connections 40 \
    --max-connections-per-client 12 --header-timeout 2 --body-timeout 3 \
    --connection-timeout 5 --request-timeout-ms 60000 || {
    echo "$passed passed, $failed failed"
    exit 1
}
ADMIN=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/main.log" | head -n 1)
ACME=$("$AMUSE" keys create --tenant acme --scope infer --db "$TMP/keys.db" 2>/dev/null)
OTHER=$("$AMUSE" keys create --tenant other --scope infer --db "$TMP/keys.db" 2>/dev/null)
[ -n "$ADMIN" ] && [ -n "$ACME" ] && [ -n "$OTHER" ]
check "keys for the attacks" $? "admin '$ADMIN' acme '$ACME' other '$OTHER'"

"$PYTHON" "$SRC/tests/tools/attack.py" "$PORT" "$SERVER_PID" "$ADMIN" "$ACME" "$OTHER" \
    "$RSS_LIMIT_MB" ${3:+"$3"} >"$TMP/attack.out" 2>&1
cat "$TMP/attack.out"
a_passed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$TMP/attack.out")
a_failed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$TMP/attack.out")
if [ -z "$a_passed" ]; then
    bad "attack.py did not finish: $(tail -n 5 "$TMP/attack.out")"
else
    passed=$((passed + a_passed))
    failed=$((failed + a_failed))
fi

kill -0 "$SERVER_PID" 2>/dev/null
check "the server is still running after the attacks" $? ""
stop_server
check "it stops cleanly on SIGTERM" $? "$(tail -n 3 "$TMP/main.log")"
! grep -q "ERROR: AddressSanitizer\|runtime error" "$TMP/main.log"
check "no sanitizer report in the server's log" $? "$(grep -m 3 "Sanitizer\|runtime error" "$TMP/main.log")"

# Per-tenant rate limit: two keys of one tenant share its bucket; another tenant is untouched.
# The limiter's clock is frozen, so no token comes back however slowly a busy machine sends.
start_server tenants --tenant-rate-limit-rps 1 --tenant-rate-limit-burst 3 --max-image-pixels 700 \
    --test-freeze-rate-clock || {
    echo "$passed passed, $failed failed"
    exit 1
}
ACME2=$("$AMUSE" keys create --tenant acme --scope infer --db "$TMP/keys.db" 2>/dev/null)
codes=""
for k in "$ACME" "$ACME2" "$ACME" "$ACME2"; do
    codes="$codes $(req GET /v2/models/fashion "$k")"
done
[ "$codes" = " 200 200 200 429" ]
check "tenant acme's two keys share a burst of 3:$codes" $? "$(head -c 200 "$TMP/body")"
grep -q "tenant acme is over its rate limit" "$TMP/body"
check "the 429 names the tenant's limit" $? "$(head -c 200 "$TMP/body")"
[ "$(req GET /v2/models/fashion "$OTHER")" = 200 ]
check "tenant other is not slowed by acme" $? "$(head -c 200 "$TMP/body")"
# --max-image-pixels 700 sets every model's budget: a 28 x 28 image (784 pixels) is over it.
"$PYTHON" - "$TMP/small.json" <<'PY'
import base64, json, struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\x00" + bytes(28) for _ in range(28))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
json.dump({"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES",
                       "data": [base64.b64encode(png).decode()]}]}, open(sys.argv[1], "w"))
PY
[ "$(req POST /v2/models/fashion/infer "$OTHER" "$TMP/small.json")" = 413 ] &&
    grep -q "budget of 700 pixels" "$TMP/body"
check "--max-image-pixels 700: a 28 x 28 image is over the budget (413)" $? "$(head -c 200 "$TMP/body")"
stop_server
check "tenants server stops cleanly" $? ""
# Daily quotas: 2 requests a key, 3 a tenant; counted in the database, so a restart keeps them.
start_server quota --quota-requests-per-day 2 --tenant-quota-requests-per-day 3 --usage-flush-s 3600 || {
    echo "$passed passed, $failed failed"
    exit 1
}
codes=""
for k in "$OTHER" "$OTHER" "$OTHER" "$ACME" "$ACME" "$ACME2" "$ACME2"; do
    codes="$codes $(req GET /v2/models/fashion "$k")"
done
[ "$codes" = " 200 200 429 200 200 200 429" ]
check "quotas: key other stops at 2, tenant acme at 3 across its keys:$codes" $? "$(head -c 200 "$TMP/body")"
grep -q "tenant acme has made its 3 requests for today" "$TMP/body" && grep -qi '^retry-after: [0-9]' "$TMP/hdr"
check "the tenant's 429 names its quota, with Retry-After" $? "$(head -c 200 "$TMP/body")"
stop_server
check "quota server stops cleanly (and flushes the day's counts)" $? ""
start_server quota2 --quota-requests-per-day 2 --tenant-quota-requests-per-day 3 || {
    echo "$passed passed, $failed failed"
    exit 1
}
[ "$(req GET /v2/models/fashion "$OTHER")" = 429 ] && [ "$(req GET /v2/models/fashion "$ACME2")" = 429 ]
check "after a restart the day's quotas are still used up" $? "$(head -c 200 "$TMP/body")"
stop_server
check "second quota server stops cleanly" $? ""

"$AMUSE" keys tenants --db "$TMP/keys.db" >"$TMP/tenants.txt"
grep -q '^acme  *2  *2 ' "$TMP/tenants.txt" && grep -q '^other ' "$TMP/tenants.txt"
check "amuse keys tenants sums usage per tenant" $? "$(cat "$TMP/tenants.txt")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
