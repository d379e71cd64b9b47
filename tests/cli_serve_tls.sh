#!/usr/bin/env bash
# cli_serve_tls.sh - `amuse serve --tls-cert --tls-key`: a self-signed certificate for 127.0.0.1
# made here with openssl, a real server on a random 127.0.0.1 port speaking HTTPS, checked with
# curl (verifying against that certificate): health, a keyed route, 401 without the key, and that
# plain HTTP on the port gets no HTTP reply. Also: one of the two options alone, or a key that is
# not PEM, is refused at start with a message.
#
# usage: bash cli_serve_tls.sh <path to amuse> <fixtures dir>
# Needs curl and openssl (scripts/deps.sh installs it). Every wait is bounded; loopback only.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-tls

for need in /usr/bin/curl /usr/bin/openssl; do
    if [ ! -x "$need" ]; then
        echo "FAIL prerequisites: need $need (curl, openssl)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

REPO="$TMP/repo"
mkdir -p "$REPO"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1
check "openssl made a certificate" $? "$(tail -n 3 "$TMP/openssl.log")"

# start_server reads the port from "listening on http://"; an HTTPS server says https://.
"$AMUSE" serve --host 127.0.0.1 --port 0 --repository "$REPO" --db "$TMP/keys.db" \
    --poll-interval-s 0 --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" \
    >"$TMP/tls.out" 2>"$TMP/tls.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 1 300); do
    grep -q '^amuse: ready' "$TMP/tls.log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
PORT=$(sed -n 's|.*listening on https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/tls.log" | head -n 1)
[ -n "$PORT" ]
check "the server says it listens on https://" $? "$(tail -n 5 "$TMP/tls.log")"
KEY=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/tls.log" | head -n 1)

URL="https://127.0.0.1:$PORT"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 30 --cacert "$TMP/cert.pem" \
    "$URL/v2/health/live")
[ "$code" = 200 ] && grep -q '"live": true' "$TMP/body"
check "health over HTTPS, certificate verified ($code)" $? "$(head -c 200 "$TMP/body")"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 30 --cacert "$TMP/cert.pem" \
    -H "Authorization: Bearer $KEY" "$URL/v1/models")
[ "$code" = 200 ] && grep -q '"object": "list"' "$TMP/body"
check "a keyed route over HTTPS ($code)" $? "$(head -c 200 "$TMP/body")"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 30 --cacert "$TMP/cert.pem" \
    "$URL/v1/models")
[ "$code" = 401 ]
check "no key over HTTPS: 401" $? "$code $(head -c 200 "$TMP/body")"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT/v2/health/live")
[ "$code" = 000 ]
check "plain HTTP on the HTTPS port gets no HTTP reply ($code)" $? ""
stop_server
check "HTTPS server stops cleanly" $? "$(tail -n 3 "$TMP/tls.log")"

"$AMUSE" serve --host 127.0.0.1 --port 0 --repository "$REPO" --db "$TMP/keys.db" \
    --tls-cert "$TMP/cert.pem" >"$TMP/half.out" 2>"$TMP/half.log"
[ $? -ne 0 ] && grep -q "tls_cert and tls_key go together" "$TMP/half.log"
check "--tls-cert without --tls-key is refused" $? "$(cat "$TMP/half.log")"
echo "not a key" >"$TMP/bad.pem"
"$AMUSE" serve --host 127.0.0.1 --port 0 --repository "$REPO" --db "$TMP/keys.db" \
    --tls-cert "$TMP/cert.pem" --tls-key "$TMP/bad.pem" >"$TMP/bad.out" 2>"$TMP/bad.log"
[ $? -ne 0 ] && grep -q "PEM certificate and its key" "$TMP/bad.log"
check "a key that is not PEM is refused at start" $? "$(cat "$TMP/bad.log")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
