#!/usr/bin/env bash
# cli_openai_client.sh - the official `openai` npm client, unchanged, against a real `amuse serve`
# (random 127.0.0.1 port, temporary key database, a three-word vectors model): models.list(),
# embeddings.create() for a string (the client's default base64 encoding) and a list (float),
# a 400 for text with no known word, and AuthenticationError for a wrong key; and
# audio.transcriptions.create on a word spoken by espeak-ng for the shipped voice model (json,
# text and verbose_json, and its BadRequestErrors). The client comes
# from tests/openai/package-lock.json, installed with `npm ci` into this build directory the
# first time (or when the lock changes).
#
# usage: bash cli_openai_client.sh <path to amuse> <fixtures dir>
# Needs node (>= 18) and npm, and the npm registry for the first install. Every wait is bounded.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init openai-client

for need in node npm curl espeak-ng; do
    if ! command -v "$need" >/dev/null; then
        echo "FAIL prerequisites: need $need (scripts/deps.sh nodejs npm curl espeak-ng)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# The client, installed once per build directory from the committed lock file.
install_openai_client || { echo "$passed passed, $failed failed"; exit 1; }
cp "$SRC/tests/openai/check.mjs" "$SRC/tests/openai/audio.mjs" "$NODE_DIR/"

REPO="$TMP/repo"
mkdir -p "$REPO/words/1"
printf '3 4\nking 1 2 3 4\nqueen 1 2 3 5\nbanana -1 0 0.5 2\n' >"$REPO/words/1/vectors.txt"
echo '{"type": "word2vec", "vectors": "vectors.txt"}' >"$REPO/words/1/config.json"
cp -r "$SRC/models/default/voice-dscnn" "$REPO/"
espeak-ng -v en-us+m3 -w "$TMP/jump.wav" "jump"
echo "not a sound" >"$TMP/text.wav"

start_server main --threads 4 || {
    echo "$passed passed, $failed failed"
    exit 1
}
"$AMUSE" keys create --tenant app --scope infer --db "$TMP/keys.db" >"$TMP/key" 2>/dev/null
KEY=$(cat "$TMP/key")
[ -n "$KEY" ]
check "an infer key for the client" $? "amuse keys create printed nothing"

timeout 120 node "$NODE_DIR/check.mjs" "$URL/v1" "$KEY" words >"$TMP/node.out" 2>&1
rc=$?
cat "$TMP/node.out"
passed=$((passed + $(grep -c '^ok ' "$TMP/node.out")))
failed=$((failed + $(grep -c '^FAIL ' "$TMP/node.out")))
n_ok=$(grep -c '^ok ' "$TMP/node.out")
[ $rc -eq 0 ] && [ "$n_ok" -eq 7 ]
check "node check.mjs exits 0 with all 7 checks passed" $? "exit $rc, $n_ok ok"

timeout 120 node "$NODE_DIR/audio.mjs" "$URL/v1" "$KEY" voice-dscnn words "$TMP/jump.wav" \
    "$TMP/text.wav" >"$TMP/audio.out" 2>&1
rc=$?
cat "$TMP/audio.out"
passed=$((passed + $(grep -c '^ok ' "$TMP/audio.out")))
failed=$((failed + $(grep -c '^FAIL ' "$TMP/audio.out")))
n_ok=$(grep -c '^ok ' "$TMP/audio.out")
[ $rc -eq 0 ] && [ "$n_ok" -eq 5 ]
check "node audio.mjs exits 0 with all 5 checks passed" $? "exit $rc, $n_ok ok"
grep -q '"path": "/v1/audio/transcriptions", "status": 200' "$TMP/main.log"
check "the transcriptions are in the access log" $? "$(grep -m3 'audio' "$TMP/main.log")"

grep -q '"path": "/v1/embeddings", "status": 200' "$TMP/main.log"
check "the client's requests are in the access log" $? "$(grep -m3 '"method"' "$TMP/main.log")"
stop_server
check "server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/main.log")"
if grep -qE 'Sanitizer|runtime error:' "$TMP/main.log"; then
    bad "sanitizer report in the server log: $(grep -m3 -E 'Sanitizer|runtime error:' "$TMP/main.log")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
