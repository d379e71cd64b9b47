#!/usr/bin/env bash
# cli_serve_sentiment.sh - the shipped review-sentiment model (models/default/sentiment-en) served
# by a real `amuse serve` on a loopback port: POST /v1/text/sentiment labels and scores texts the
# same way `amuse sentiment` does, keeps tenant walls, and refuses bad input with a message that
# names the field, the text and the byte.
#
# usage: bash cli_serve_sentiment.sh <path to amuse> <fixtures dir>
# Needs curl and python3 (stdlib only). Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-sentiment
for need in /usr/bin/curl "$PYTHON"; do
    [ -x "$need" ] || { bad "needs $need"; echo "$passed passed, $failed failed"; exit 1; }
done

REPO="$TMP/repo"
mkdir -p "$REPO"
cp -r "$SRC/models/default/sentiment-en" "$REPO/"
cp -r "$SRC/models/default/sentiment-en" "$REPO/private-sentiment"
echo acme >"$REPO/private-sentiment/tenants"
cp -r "$SRC/models/default/fashion-dnn" "$REPO/"
KEY=$("$AMUSE" keys create --tenant beta --scope infer --db "$TMP/keys.db" 2>/dev/null)
ACME=$("$AMUSE" keys create --tenant acme --scope infer --db "$TMP/keys.db" 2>/dev/null)
start_server main || { echo "$passed passed, $failed failed"; exit 1; }
grep -q "model sentiment-en version 1 loaded" "$TMP/main.log"
check "the sentiment model loads as a model kind" $? "$(grep sentiment "$TMP/main.log")"

# The route and the command agree, text by text.
T1="Not worth the ticket price, honestly a boring mess."
T2="A warm, funny and beautifully acted film."
T3="The film opens on Friday."
"$PYTHON" -c 'import json,sys; print(json.dumps({"model": "sentiment-en", "input": sys.argv[1:]}))' \
    "$T1" "$T2" "$T3" >"$TMP/three.json"
expect "three texts" 200 '"object": "list"' POST /v1/text/sentiment "$KEY" "$TMP/three.json"
cp "$TMP/body" "$TMP/three.out"
"$AMUSE" sentiment "$SRC/models/default/sentiment-en/1" "$T1" "$T2" "$T3" >"$TMP/cli.out"
"$PYTHON" - "$TMP/three.out" "$TMP/cli.out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cli = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
assert r["model"] == "sentiment-en", r
assert [d["index"] for d in r["data"]] == [0, 1, 2], r
for d, (label, score, _) in zip(r["data"], cli):
    assert d["label"] == label, (d, label)
    assert abs(d["score"] - float(score)) < 1e-4, (d, score)
assert r["data"][0]["label"] == "negative" and r["data"][1]["label"] == "positive", r
PY
check "labels and scores equal amuse sentiment's" $? "$(head -c 300 "$TMP/three.out")"

echo '{"model": "sentiment-en", "input": "I loved every minute of it"}' >"$TMP/one.json"
expect "one string" 200 '"label": "positive"' POST /v1/text/sentiment "$KEY" "$TMP/one.json"

# Tenant walls: beta cannot see acme's copy; acme can.
sed 's/"sentiment-en"/"private-sentiment"/' "$TMP/one.json" >"$TMP/private.json"
expect "another tenant's model is a 404" 404 "model 'private-sentiment' is not loaded (GET /v1/models lists the models)" POST /v1/text/sentiment "$KEY" "$TMP/private.json"
expect "the owner's model answers" 200 '"model": "private-sentiment"' POST /v1/text/sentiment "$ACME" "$TMP/private.json"

# Bad input.
echo '{"input": "x"}' >"$TMP/b1.json"
expect "no model" 400 "'model' is missing: name a sentiment model (GET /v1/models lists the models)" POST /v1/text/sentiment "$KEY" "$TMP/b1.json"
echo '{"model": "nope", "input": "x"}' >"$TMP/b2.json"
expect "unknown model" 404 "model 'nope' is not loaded (GET /v1/models lists the models)" POST /v1/text/sentiment "$KEY" "$TMP/b2.json"
echo '{"model": "fashion-dnn", "input": "x"}' >"$TMP/b3.json"
expect "not a sentiment model" 400 "model 'fashion-dnn' is a network model, not a sentiment model (POST /v1/text/sentiment needs one)" POST /v1/text/sentiment "$KEY" "$TMP/b3.json"
echo '{"model": "sentiment-en"}' >"$TMP/b4.json"
expect "no input" 400 "input: give a string or a list" POST /v1/text/sentiment "$KEY" "$TMP/b4.json"
echo '{"model": "sentiment-en", "input": ["fine", 7]}' >"$TMP/b5.json"
expect "a number among the texts" 400 "input[1]: must be a string" POST /v1/text/sentiment "$KEY" "$TMP/b5.json"
echo '{"model": "sentiment-en", "input": ["fine", ""]}' >"$TMP/b6.json"
expect "an empty text" 400 "text 1" POST /v1/text/sentiment "$KEY" "$TMP/b6.json"
printf '{"model": "sentiment-en", "input": ["ok", "bad \xc3 byte"]}' >"$TMP/b7.json"
expect "invalid UTF-8" 400 "invalid UTF-8" POST /v1/text/sentiment "$KEY" "$TMP/b7.json"
"$PYTHON" -c 'import json; print(json.dumps({"model": "sentiment-en", "input": ["a"] * 257}))' >"$TMP/b8.json"
expect "too many texts" 413 "1 to 256 strings" POST /v1/text/sentiment "$KEY" "$TMP/b8.json"
echo '{"model": "sentiment-en", "input": "x"} trailing' >"$TMP/b9.json"
expect "text after the JSON" 400 "" POST /v1/text/sentiment "$KEY" "$TMP/b9.json"
expect "no key" 401 "" POST /v1/text/sentiment "" "$TMP/one.json"
echo '{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]}' >"$TMP/v2.json"
expect "V2 infer points to the route" 400 "/v1/text/sentiment" POST /v2/models/sentiment-en/infer "$KEY" "$TMP/v2.json"

stop_server
check "the server stops cleanly" $? "exit status $?"
if grep -q "runtime error\|AddressSanitizer" "$TMP"/*.log; then
    bad "a sanitizer report in a server log: $(grep -h "runtime error\|AddressSanitizer" "$TMP"/*.log | head -3)"
fi
if grep -qF "$T1" "$TMP/main.log" "$TMP/main.out"; then
    bad "a request's text reached the server's log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
