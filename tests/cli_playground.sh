#!/usr/bin/env bash
# cli_playground.sh - the browser playground served by a real `amuse serve` (random 127.0.0.1
# port, temporary key database and repository with a tiny image model trained here on t10k and a
# three-word vectors model). First with curl: GET / and /web/<file> without a key, their types and
# headers, and every path the static route must refuse (.., %2e%2e, hidden files, unknown types,
# directories, a FIFO, an oversized file, a symlink out of the web root). Then in Debian's
# chromium driven by playwright-core (tests/browser/playground.test.mjs): a wrong key shows the
# 401, an infer key, the admin key lists the models, a t10k image uploaded as PNG shows the label
# `amuse predict` gives, the words panel, the voice panel (chromium's fake microphone plays
# "jump" spoken by espeak-ng; the page records, converts to 16 kHz WAV, and shows the command
# /v1/audio/transcriptions hears), the For you panel (a two-taste-groups recommender trained
# here: recommendations with explanations, a like that changes the list, cold start, and the
# review box on the shipped sentiment model), and the key kept in sessionStorage only.
# A screenshot of the page after the image test is left in the working directory (ctest's:
# <build>/tests/playground.png), or at $AMUSE_PLAYGROUND_SCREENSHOT.
#
# usage: bash cli_playground.sh <path to amuse> <fixtures dir>
# Needs dataset-fashion-mnist, curl, python3, node (>= 18), npm and chromium (scripts/test.sh
# installs them), and the npm registry for the first `npm ci` of playwright-core, which goes into
# the working directory (browser-node/, so the normal and the sanitizer build do not share it)
# and is reused while the lock file is unchanged.
# Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
PYTHON=/usr/bin/python3
CHROMIUM=${AMUSE_CHROMIUM:-/usr/bin/chromium}
SHOT=${AMUSE_PLAYGROUND_SCREENSHOT:-$PWD/playground.png}
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-playground
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

for need in "$DATA/t10k-images-idx3-ubyte.gz" /usr/bin/curl "$PYTHON" "$CHROMIUM" \
    "$(command -v node)" "$(command -v npm)"; do
    if [ ! -e "$need" ]; then
        bad "prerequisites: need ${need:-node/npm} (scripts/deps.sh dataset-fashion-mnist curl python3 chromium nodejs npm)"
        finish
    fi
done

# ------------------------------------------------------------------ playwright-core

NODE_DIR="$PWD/browser-node"
mkdir -p "$NODE_DIR"
if ! cmp -s "$SRC/tests/browser/package-lock.json" "$NODE_DIR/package-lock.json" ||
    [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
    cp "$SRC/tests/browser/package.json" "$SRC/tests/browser/package-lock.json" "$NODE_DIR/"
    if ! (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund >npm.log 2>&1); then
        rm -f "$NODE_DIR/package-lock.json"
        bad "npm ci of playwright-core: $(tail -n 5 "$NODE_DIR/npm.log")"
        finish
    fi
fi
cp "$SRC/tests/browser/playground.test.mjs" "$NODE_DIR/playground.test.mjs"

# ------------------------------------------------------------------ fixtures

REPO="$TMP/repo"
mkdir -p "$REPO/fashion" "$REPO/words/1"
train_tiny_model "$REPO/fashion/1" 512 32 || finish
printf '3 4\nking 1 2 3 4\nqueen 1 2 3 5\nbanana -1 0 0.5 2\n' >"$REPO/words/1/vectors.txt"
# The voice model and the fake microphone's sound: "jump", then silence to 1.5 s, as 48 kHz
# stereo (the page mixes down and resamples).
cp -r "$SRC/models/default/voice-dscnn" "$REPO/"
VOICE_WAV=""
if command -v espeak-ng >/dev/null && command -v sox >/dev/null &&
    espeak-ng -v en-us+m3 -w "$TMP/jump-espeak.wav" jump &&
    sox "$TMP/jump-espeak.wav" -r 48000 -c 2 -b 16 "$TMP/jump-mic.wav" pad 0.2 trim 0 1.5; then
    VOICE_WAV="$TMP/jump-mic.wav"
else
    bad "prerequisites: espeak-ng and sox make the fake microphone's sound (scripts/deps.sh espeak-ng sox)"
fi
echo '{"type": "word2vec", "vectors": "vectors.txt"}' >"$REPO/words/1/config.json"
# a generator for the write panel: the tests' small verse model (gen_tiny_lm, in this directory)
WRITE_MODEL=""
if [ -x "$PWD/gen_tiny_lm" ] && "$PWD/gen_tiny_lm" "$REPO/tiny/1" >"$TMP/tiny.out" 2>&1; then
    WRITE_MODEL=tiny
else
    bad "gen_tiny_lm could not write the write panel's model: $(cat "$TMP/tiny.out" 2>/dev/null)"
fi

# a recommender for the For you panel: two taste groups (a<u> like A0..A5 but A<u>, b<u> the B
# films), trained here; and the shipped sentiment model for its review box
for g in a b; do
    G=$(echo $g | tr ab AB)
    for u in 0 1 2 3 4 5; do
        for i in 0 1 2 3 4 5; do
            [ $i = $u ] || printf '%s%s\t%s%s\t%s\t%s\n' $g $u $G $i $(( (u + i) % 5 + 1 )) $((1000 + u * 10 + i))
        done
    done
done >"$TMP/events.tsv"
{
    for i in 0 1 2 3 4 5; do printf 'A%s\tAction film %s\tAction|Space\n' $i $i; done
    for i in 0 1 2 3 4 5; do printf 'B%s\tQuiet drama %s\tDrama\n' $i $i; done
} >"$TMP/items.tsv"
if ! "$AMUSE" recommend train --data "$TMP/events.tsv" --items "$TMP/items.tsv" --algo als \
    --factors 4 --alpha 2 --threads 1 --output "$REPO/films/1" >"$TMP/films.out" 2>&1; then
    bad "train the For you panel's recommender: $(cat "$TMP/films.out")"
fi
cp -r "$SRC/models/default/sentiment-en" "$REPO/"
# A real t10k image (the first one) as a PNG, written with the stdlib only.
"$PYTHON" - "$DATA/t10k-images-idx3-ubyte.gz" "$TMP/t10k-0.png" <<'PY'
import gzip, struct, sys, zlib
with gzip.open(sys.argv[1], "rb") as f:
    magic, n, h, w = struct.unpack(">IIII", f.read(16))
    pixels = f.read(h * w)
def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)
rows = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))
open(sys.argv[2], "wb").write(b"\x89PNG\r\n\x1a\n" +
    chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
    chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
label=$("$AMUSE" predict "$REPO/fashion/1" "$TMP/t10k-0.png" --json -k 1 2>"$TMP/predict.err" |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["top"][0]["label"])')
if [ -z "$label" ]; then
    bad "amuse predict gave no label: $(cat "$TMP/predict.err")"
    finish
fi
ok "amuse predict labels t10k image 0: $label"

# The web root: the source tree's web/ files, plus things the static route must refuse.
WEB="$TMP/web"
mkdir -p "$WEB/sub" "$WEB/dir.js"
cp "$SRC"/web/* "$WEB/"
echo '{"ok": true}' >"$WEB/sub/data.json"
echo 'outside-content-7f3' >"$TMP/outside.js"
echo 'hidden-content-7f3' >"$WEB/.hidden.js"
echo 'notes-content-7f3' >"$WEB/notes.txt"
ln -s "$TMP/outside.js" "$WEB/escape.js"
ln -s ../style.css "$WEB/sub/inside.css"
mkfifo "$WEB/fifo.js"
head -c $((4 * 1024 * 1024 + 1)) /dev/zero >"$WEB/big.png"

# ------------------------------------------------------------------ the default web root

"$AMUSE" serve --help >"$TMP/help.txt"
if [ "$(realpath "$(dirname "$AMUSE")/..")" = "$SRC" ]; then
    grep -qF "(default $SRC/web)" "$TMP/help.txt"
    check "a build in the source tree finds its web root by default (<exe>/../web)" $? \
        "$(grep -A3 -- --web-root "$TMP/help.txt")"
else
    ok "default web root not checked: $AMUSE is not in a build directory of $SRC"
fi
"$AMUSE" serve --port 0 --repository "$REPO" --db "$TMP/keys0.db" --web-root "$TMP/none" \
    >/dev/null 2>"$TMP/noroot.err" &
NOROOT_PID=$!
PIDS+=("$NOROOT_PID")
for _ in $(seq 1 300); do kill -0 "$NOROOT_PID" 2>/dev/null || break; sleep 0.1; done
wait "$NOROOT_PID"
[ $? -ne 0 ] && grep -q "web root '$TMP/none' is not a directory" "$TMP/noroot.err"
check "a missing --web-root stops the start with a message" $? "$(tail -n 2 "$TMP/noroot.err")"

# ------------------------------------------------------------------ the server

"$AMUSE" serve --host 127.0.0.1 --port 0 --repository "$REPO" --db "$TMP/keys.db" \
    --model-threads 1 --threads 8 --web-root "$WEB" >"$TMP/main.out" 2>"$TMP/main.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 1 600); do
    grep -q '^amuse: ready' "$TMP/main.log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/main.log" | head -n 1)
if [ -z "$PORT" ] || ! grep -q '^amuse: ready' "$TMP/main.log"; then
    bad "the server did not start: $(tail -n 5 "$TMP/main.log")"
    finish
fi
URL="http://127.0.0.1:$PORT"
ADMIN=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/main.log" | head -n 1)
INFER=$("$AMUSE" keys create --tenant web --scope infer --db "$TMP/keys.db" 2>/dev/null)
[ -n "$ADMIN" ] && [ -n "$INFER" ]
check "an admin key (first start) and an infer key" $? "$(tail -n 5 "$TMP/main.log")"

# get PATH: the status; body in $TMP/body, headers in $TMP/hdr. No key, the path as given.
get() {
    curl -s --path-as-is --max-time 20 -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' "$URL$1"
}
header() { sed -n "s/^$1: \\(.*\\)\\r\$/\\1/Ip" "$TMP/hdr" | head -n 1; }

st=$(get /)
[ "$st" = 200 ] && cmp -s "$TMP/body" "$SRC/web/index.html" &&
    [ "$(header Content-Type)" = "text/html; charset=utf-8" ] &&
    [ "$(header Cache-Control)" = "no-cache" ] && [ "$(header X-Content-Type-Options)" = nosniff ] &&
    header Content-Security-Policy | grep -q "connect-src 'self'"
check "GET / without a key is web/index.html (text/html, no-cache, nosniff, CSP)" $? \
    "$st $(tr -d '\r' <"$TMP/hdr" | tr '\n' ' ')"
for f in app.js:text/javascript style.css:text/css sub/data.json:application/json \
    sub/inside.css:text/css; do
    st=$(get "/web/${f%%:*}")
    [ "$st" = 200 ] && header Content-Type | grep -q "^${f#*:}"
    check "GET /web/${f%%:*} without a key: ${f#*:}" $? "$st $(header Content-Type)"
done
cmp -s "$TMP/body" "$SRC/web/style.css"
check "a symlink inside the web root is followed" $? "$(head -c 100 "$TMP/body")"
for p in /web/../CMakeLists.txt /web/%2e%2e/CMakeLists.txt /web/sub/../app.js /web/./app.js \
    /web/.hidden.js /web/notes.txt /web/dir.js /web/fifo.js /web/big.png /web/escape.js \
    /web/sub//data.json /web/sub/ /web/nothing.js /web/%2fetc%2fpasswd.js \
    /web/notes.txt%00.png /index.html; do
    st=$(get "$p")
    if [ "$p" = /index.html ]; then want=401; else want=404; fi
    [ "$st" = "$want" ] && ! grep -q content-7f3 "$TMP/body"
    check "GET $p is $want: $(head -c 90 "$TMP/body")" $? "$st"
done
st=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' -X POST "$URL/")
check "POST / without a key is 401 (only GET is public)" "$([ "$st" = 401 ]; echo $?)" "$st"

# ------------------------------------------------------------------ the browser

AMUSE_VOICE_MODEL=voice-dscnn AMUSE_VOICE_WAV=$VOICE_WAV AMUSE_VOICE_WORD=jump \
AMUSE_RECOMMEND_MODEL=films AMUSE_SENTIMENT_MODEL=sentiment-en \
AMUSE_WRITE_MODEL=$WRITE_MODEL timeout 240 node "$NODE_DIR/playground.test.mjs" "$URL" "$ADMIN" "$INFER" "$TMP/t10k-0.png" \
    "$label" fashion words "$SHOT" >"$TMP/node.out" 2>&1
rc=$?
sed 's/^/  browser: /' "$TMP/node.out"
n_ok=$(grep -c '^ok ' "$TMP/node.out")
n_fail=$(grep -c '^FAIL ' "$TMP/node.out")
[ $rc -eq 0 ] && [ "$n_fail" -eq 0 ] && [ "$n_ok" -ge 20 ]
check "the browser test passes ($n_ok checks)" $? "exit $rc, $n_ok ok, $n_fail failed"
[ -s "$SHOT" ]
check "screenshot written to $SHOT" $? "missing"

grep -q '"method": "GET", "path": "/", "status": 200' "$TMP/main.log" &&
    grep -q '"path": "/v2/models/fashion/infer", "status": 200' "$TMP/main.log"
check "the page's requests are in the access log" $? "$(grep -m5 '"method"' "$TMP/main.log")"
grep '^{' "$TMP/main.log" | cat - "$TMP/node.out" |
    grep -qF -e "${ADMIN#amuse_????????????_}" -e "${INFER#amuse_????????????_}"
check "the keys' secrets appear in neither the access log nor the test's output" "$((!$?))" "found"

kill -TERM "$SERVER_PID"
for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID"
    bad "the server did not stop within 30 s of SIGTERM"
else
    wait "$SERVER_PID"
    check "the server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/main.log")"
fi
if grep -qE 'Sanitizer|runtime error:' "$TMP/main.log" "$TMP/noroot.err"; then
    bad "sanitizer report in a server log: $(grep -hm3 -E 'Sanitizer|runtime error:' "$TMP/main.log" "$TMP/noroot.err")"
fi

finish
