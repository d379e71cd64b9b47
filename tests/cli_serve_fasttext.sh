#!/usr/bin/env bash
# cli_serve_fasttext.sh - a fastText model (gensim's .bin fixture) served by a real `amuse serve`:
# /v1/embeddings and /v1/words/* answer for words outside the vocabulary with vectors composed
# from their character n-grams, say which in "subword", and the embedding equals the mean of the
# vectors gensim gives for the same words (tests/fixtures/fasttext/gensim_vectors.txt).
#
# usage: bash cli_serve_fasttext.sh <path to amuse> <fixtures dir>
# Needs curl and python3 (stdlib only). Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
FIX=$(realpath "$2")/fasttext
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-fasttext
for need in /usr/bin/curl "$PYTHON"; do
    [ -x "$need" ] || { bad "needs $need"; echo "$passed passed, $failed failed"; exit 1; }
done

REPO="$TMP/repo"
mkdir -p "$REPO/ft/1"
cp "$FIX/gensim.bin" "$REPO/ft/1/model.bin"
echo '{"type": "fasttext", "vectors": "model.bin"}' >"$REPO/ft/1/config.json"
KEY=$("$AMUSE" keys create --tenant t --scope infer --db "$TMP/keys.db" 2>/dev/null)
start_server main || { echo "$passed passed, $failed failed"; exit 1; }

# Embeddings: "playing" is in the vocabulary, "playings" is not.
echo '{"model": "ft", "input": ["Playing playings", "unwalked"]}' >"$TMP/emb.json"
expect "embeddings with unseen words" 200 '"subword": ["playings"]' POST /v1/embeddings "$KEY" "$TMP/emb.json"
cp "$TMP/body" "$TMP/emb.out"
"$PYTHON" - "$TMP/emb.out" "$FIX/gensim_vectors.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want = {}
for line in open(sys.argv[2], encoding="utf-8"):
    w, _, v = line.rstrip("\n").split("\t")
    want[w] = [float(x) for x in v.split()]
e0, e1 = r["data"][0], r["data"][1]
mean = [(a + b) / 2 for a, b in zip(want["playing"], want["playings"])]
assert all(abs(a - b) < 1e-5 for a, b in zip(e0["embedding"], mean)), (e0, mean)
assert e1["subword"] == ["unwalked"], e1
assert all(abs(a - b) < 1e-5 for a, b in zip(e1["embedding"], want["unwalked"])), e1
PY
check "the embedding is the mean of gensim's vectors, composed ones included" $? "$(head -c 300 "$TMP/emb.out")"

# Domain routes: an unseen word is composed (lower-cased) and listed.
expect "similar, unseen word" 200 '"subword": ["unwalked"]' GET "/v1/words/similar?model=ft&word=UNwalked&k=3" "$KEY"
grep -qF '"results": [{"word": ' "$TMP/body"
check "similar gives results for the unseen word" $? "$(head -c 300 "$TMP/body")"
echo '{"model": "ft", "a": "play", "b": "playings", "c": "walk", "k": 2}' >"$TMP/an.json"
expect "analogy, unseen word" 200 '"subword": ["playings"]' POST /v1/words/analogy "$KEY" "$TMP/an.json"
expect "similar, known word" 200 '"subword": []' GET "/v1/words/similar?model=ft&word=playing&k=3" "$KEY"

stop_server
check "the server stops cleanly" $? "exit status $?"
if grep -q "runtime error\|AddressSanitizer" "$TMP"/*.log; then
    bad "a sanitizer report in a server log: $(grep -h "runtime error\|AddressSanitizer" "$TMP"/*.log | head -3)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
