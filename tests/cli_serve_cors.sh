#!/usr/bin/env bash
# cli_serve_cors.sh - CORS is off unless an allowlist is given. Without --cors-origins no response
# carries an Access-Control-* header, preflight or not. With it, a preflight OPTIONS from an
# allowed origin is answered 204 without a key (Allow-Origin echoing the origin, Allow-Methods,
# Allow-Headers, Max-Age), other replies to allowed origins carry Allow-Origin and Vary: Origin,
# real requests still need their key, and other origins get nothing. A bad origin in the list
# stops the start with a message; the environment variable works like the flag.
#
# usage: bash cli_serve_cors.sh <path to amuse> <fixtures dir>
# Needs curl. Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-cors
REPO="$TMP/repo" # no models: CORS does not depend on them
mkdir -p "$REPO"

# hreq NAME WANT-STATUS METHOD PATH ORIGIN KEY [extra curl args]: status check; headers in $TMP/hdr.
hreq() {
    local name=$1 want=$2 method=$3 path=$4 origin=$5 key=$6
    shift 6
    local args=(-s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --max-time 10 -X "$method")
    [ -n "$origin" ] && args+=(-H "Origin: $origin")
    [ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
    local got
    got=$(curl "${args[@]}" "$@" "$URL$path")
    if [ "$got" = "$want" ]; then ok "$name ($got)"; else bad "$name: status $got, expected $want: $(head -c 200 "$TMP/body")"; fi
}
# has HEADER-LINE-REGEX / lacks: about the last response's headers (case-insensitive names).
has() { grep -qiE "^$1"$'\r?$' "$TMP/hdr"; }
no_cors() { ! grep -qi '^access-control-' "$TMP/hdr"; }
PREFLIGHT=(-H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type')

# ---------------------------------------------------------------- without an allowlist
start_server off || { echo "$passed passed, $failed failed"; exit 1; }
KEY=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/off.log" | head -n 1)
[ -n "$KEY" ] || bad "no admin key printed: $(cat "$TMP/off.log")"
hreq "off: GET with an Origin" 200 GET /v2 https://a.example "$KEY"
no_cors
check "off: no Access-Control-* header on a reply" $? "$(cat "$TMP/hdr")"
hreq "off: a preflight is not answered as one (no key: 401)" 401 OPTIONS /v2/models/m/infer https://a.example "" "${PREFLIGHT[@]}"
no_cors
check "off: no Access-Control-* header on a preflight" $? "$(cat "$TMP/hdr")"
stop_server
check "off: SIGTERM exits 0" $? "exit status"

# ---------------------------------------------------------------- no playground
start_server noweb --web-root off || { echo "$passed passed, $failed failed"; exit 1; }
grep -q "playground files" "$TMP/noweb.log"
check "--web-root off: no playground is announced" $((1 - $?)) "$(cat "$TMP/noweb.log")"
hreq "--web-root off: GET / says there is no playground" 404 GET / "" ""
grep -q "no playground files" "$TMP/body"
check "--web-root off: the 404 says why" $? "$(head -c 200 "$TMP/body")"
stop_server

# ---------------------------------------------------------------- with an allowlist
start_server on --cors-origins "https://a.example, http://localhost:3000" ||
    { echo "$passed passed, $failed failed"; exit 1; }
hreq "preflight from an allowed origin, no key" 204 OPTIONS /v2/models/m/infer https://a.example "" "${PREFLIGHT[@]}"
has 'access-control-allow-origin: https://a\.example' && has 'access-control-allow-methods: .*POST.*' &&
    has 'access-control-allow-headers: Authorization, Content-Type' &&
    has 'access-control-max-age: [0-9]+' && has 'vary: Origin'
check "preflight headers: Allow-Origin echoes the origin, Allow-Methods, Allow-Headers, Max-Age, Vary" $? "$(cat "$TMP/hdr")"
hreq "preflight from another origin gets no pass (401)" 401 OPTIONS /v2/models/m/infer https://evil.example "" "${PREFLIGHT[@]}"
no_cors
check "another origin: no Access-Control-* header" $? "$(cat "$TMP/hdr")"
hreq "an allowed origin (second in the list) with a key" 200 GET /v2 http://localhost:3000 "$KEY"
has 'access-control-allow-origin: http://localhost:3000' && has 'vary: Origin' &&
    ! has 'access-control-allow-methods:.*'
check "reply to an allowed origin: Allow-Origin and Vary, no preflight headers" $? "$(cat "$TMP/hdr")"
hreq "an allowed origin still needs a key" 401 GET /v2 https://a.example ""
has 'access-control-allow-origin: https://a\.example'
check "the 401 is readable by the allowed page (Allow-Origin set)" $? "$(cat "$TMP/hdr")"
hreq "another origin with a key is served" 200 GET /v2 https://evil.example "$KEY"
no_cors
check "another origin: no Access-Control-* header on the reply" $? "$(cat "$TMP/hdr")"
hreq "no Origin header" 200 GET /v2 "" "$KEY"
no_cors
check "no Origin: no Access-Control-* header" $? "$(cat "$TMP/hdr")"
hreq "an origin that only starts like an allowed one" 200 GET /v2 https://a.example.evil.com "$KEY"
no_cors
check "prefix origin: no Access-Control-* header" $? "$(cat "$TMP/hdr")"
stop_server
check "on: SIGTERM exits 0" $? "exit status"

AMUSE_CORS_ORIGINS=https://b.example start_server env || { echo "$passed passed, $failed failed"; exit 1; }
hreq "AMUSE_CORS_ORIGINS: preflight from its origin" 204 OPTIONS /v2 https://b.example "" "${PREFLIGHT[@]}"
has 'access-control-allow-origin: https://b\.example'
check "AMUSE_CORS_ORIGINS: Allow-Origin" $? "$(cat "$TMP/hdr")"
stop_server

"$AMUSE" serve --port 0 --repository "$REPO" --db "$TMP/keys.db" --cors-origins "https://a.example/app" \
    >/dev/null 2>"$TMP/bad.log" </dev/null &
BAD=$!
PIDS+=("$BAD")
for _ in $(seq 1 100); do kill -0 "$BAD" 2>/dev/null || break; sleep 0.1; done
wait "$BAD"
st=$?
[ "$st" -ne 0 ] && grep -q "https://a.example/app' is not an origin" "$TMP/bad.log"
check "a bad origin in the list stops the start with a message" $? "exit $st: $(cat "$TMP/bad.log")"

"$AMUSE" serve --help | grep -q -- '--cors-origins' && "$AMUSE" serve --help | grep -q 'AMUSE_CORS_ORIGINS'
check "--help lists --cors-origins and AMUSE_CORS_ORIGINS" $? "not in --help"

if grep -lE 'Sanitizer|runtime error:' "$TMP"/*.log >/dev/null 2>&1; then
    bad "sanitizer report in a server log: $(grep -hm3 -E 'Sanitizer|runtime error:' "$TMP"/*.log)"
else
    ok "no sanitizer report in any server log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
