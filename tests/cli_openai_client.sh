#!/usr/bin/env bash
# cli_openai_client.sh - the official `openai` npm client, unchanged, against a real `amuse serve`
# (random 127.0.0.1 port, temporary key database, a three-word vectors model): models.list(),
# embeddings.create() for a string (the client's default base64 encoding) and a list (float),
# a 400 for text with no known word, and AuthenticationError for a wrong key. The client comes
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

for need in node npm curl; do
    if ! command -v "$need" >/dev/null; then
        echo "FAIL prerequisites: need $need (scripts/deps.sh nodejs npm curl)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# The client, installed once per build directory from the committed lock file.
NODE_DIR="$PWD/openai-node"
mkdir -p "$NODE_DIR"
if ! cmp -s "$SRC/tests/openai/package-lock.json" "$NODE_DIR/package-lock.json" ||
    [ ! -d "$NODE_DIR/node_modules/openai" ]; then
    cp "$SRC/tests/openai/package.json" "$SRC/tests/openai/package-lock.json" "$NODE_DIR/"
    if ! (cd "$NODE_DIR" && timeout 300 npm ci --no-audit --no-fund >npm.log 2>&1); then
        rm -f "$NODE_DIR/package-lock.json"
        echo "FAIL npm ci of the openai client: $(tail -n 5 "$NODE_DIR/npm.log")"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi
cp "$SRC/tests/openai/check.mjs" "$NODE_DIR/check.mjs"

REPO="$TMP/repo"
mkdir -p "$REPO/words/1"
printf '3 4\nking 1 2 3 4\nqueen 1 2 3 5\nbanana -1 0 0.5 2\n' >"$REPO/words/1/vectors.txt"
echo '{"type": "word2vec", "vectors": "vectors.txt"}' >"$REPO/words/1/config.json"

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

grep -q '"path": "/v1/embeddings", "status": 200' "$TMP/main.log"
check "the client's requests are in the access log" $? "$(grep -m3 '"method"' "$TMP/main.log")"
stop_server
check "server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/main.log")"
if grep -qE 'Sanitizer|runtime error:' "$TMP/main.log"; then
    bad "sanitizer report in the server log: $(grep -m3 -E 'Sanitizer|runtime error:' "$TMP/main.log")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
