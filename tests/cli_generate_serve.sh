#!/usr/bin/env bash
# cli_generate_serve.sh - text generation through a real `amuse serve` (random 127.0.0.1 port) with
# a tiny character LM trained here (gen_tiny_lm): /v1/completions and /v1/chat/completions
# unstreamed and streamed (SSE chunks, [DONE], include_usage; the streamed text is the unstreamed
# text for the same seed), n choices, stop strings, KServe's /v2/models/{m}/generate and
# generate_stream, the bad inputs (empty prompt, max_tokens over the cap, temperature < 0, top_p
# outside (0, 1], unknown model, a model that is not a generator, invalid UTF-8, n too large, too
# many stop strings), tenant walls, a client that disconnects mid-stream (its slot is freed at
# the next step: /metrics), and the official `openai` npm client streaming (tests/openai).
#
# usage: bash cli_generate_serve.sh <path to amuse> <fixtures dir>
# Needs curl, python3; node and npm for the client part (skipped with a note when absent).
# Every wait is bounded.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init generate-serve

TINY="$PWD/gen_tiny_lm"
if [ ! -x "$TINY" ]; then
    echo "FAIL prerequisites: $TINY is not built"
    echo "0 passed, 1 failed"
    exit 1
fi
REPO="$TMP/repo"
mkdir -p "$REPO/words/1"
"$TINY" "$REPO/tiny/1" >"$TMP/tiny.out" 2>&1
check "a tiny char LM trains" $? "$(cat "$TMP/tiny.out")"
cp -r "$REPO/tiny" "$REPO/private"
echo acme >"$REPO/private/tenants"
printf '3 4\nking 1 2 3 4\nqueen 1 2 3 5\nbanana -1 0 0.5 2\n' >"$REPO/words/1/vectors.txt"
echo '{"type": "word2vec", "vectors": "vectors.txt"}' >"$REPO/words/1/config.json"

# post NAME WANT-STATUS PATH BODY [KEY]: the body goes to $TMP/body
post() {
    local got
    got=$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 60 -H "Authorization: Bearer ${5:-$KEY}" \
        -H 'Content-Type: application/json' --data-binary "$4" "$URL$3")
    if [ "$got" = "$2" ]; then ok "$1 ($got)"; else bad "$1: status $got, expected $2: $(head -c 300 "$TMP/body")"; fi
}
# jcheck NAME PYTHON-EXPRESSION: about the JSON in $TMP/body (as b)
jcheck() {
    python3 -c "import json,sys; b=json.load(open('$TMP/body')); sys.exit(0 if ($2) else 1)" 2>"$TMP/py.err"
    check "$1" $? "$(head -c 400 "$TMP/body") $(tail -n 2 "$TMP/py.err")"
}
# scheck NAME PYTHON-EXPRESSION: about the SSE stream in $TMP/body: ev (the parsed data events,
# [DONE] as the string "[DONE]"), raw (the text)
scheck() {
    python3 - "$TMP/body" "$2" <<'EOF' 2>"$TMP/py.err"
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
ev = []
for block in raw.split("\n\n"):
    if not block.strip():
        continue
    assert block.startswith("data: "), block
    d = block[6:]
    ev.append(d if d == "[DONE]" else json.loads(d))
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
    check "$1" $? "$(head -c 400 "$TMP/body") $(tail -n 2 "$TMP/py.err")"
}

start_server main --debug-batch-sleep-ms 0 || {
    echo "$passed passed, $failed failed"
    exit 1
}
KEY=$(sed -n 's/^    \(amuse_[0-9a-f]\{12\}_[A-Za-z0-9_-]*\)$/\1/p' "$TMP/main.log" | head -n 1)
[ -n "$KEY" ] || bad "no admin key printed"
ACME=$("$AMUSE" keys create --tenant acme --scope infer --db "$TMP/keys.db" 2>/dev/null)
OTHER=$("$AMUSE" keys create --tenant other --scope infer --db "$TMP/keys.db" 2>/dev/null)

# ------------------------------------------------------------------ completions
post "completion" 200 /v1/completions '{"model": "tiny", "prompt": "twinkle", "max_tokens": 30, "seed": 7}'
jcheck "completion: OpenAI's shape, 30 tokens, usage adds up" \
    'b["object"] == "text_completion" and b["id"].startswith("cmpl-") and len(b["choices"]) == 1 and b["choices"][0]["finish_reason"] == "length" and b["usage"]["completion_tokens"] == 30 and b["usage"]["prompt_tokens"] == 7 and b["usage"]["total_tokens"] == 37 and len(b["choices"][0]["text"]) > 0'
cp "$TMP/body" "$TMP/first.json"
post "completion again, same seed" 200 /v1/completions '{"model": "tiny", "prompt": "twinkle", "max_tokens": 30, "seed": 7}'
jcheck "same seed, same text" "b['choices'][0]['text'] == json.load(open('$TMP/first.json'))['choices'][0]['text']"
post "greedy completion" 200 /v1/completions '{"model": "tiny", "prompt": "twinkle twinkle little", "max_tokens": 20, "temperature": 0}'
jcheck "greedy continues the trained text" 'b["choices"][0]["text"].startswith(" star")'
post "two choices" 200 /v1/completions '{"model": "tiny", "prompt": "up above", "max_tokens": 10, "n": 2, "seed": 3}'
jcheck "n=2: two choices, usage counts both" \
    '[c["index"] for c in b["choices"]] == [0, 1] and b["usage"]["completion_tokens"] == 20'
post "stop string" 200 /v1/completions '{"model": "tiny", "prompt": "twinkle twinkle", "max_tokens": 60, "temperature": 0, "stop": ["star"]}'
jcheck "stop: text ends before it, finish_reason stop" \
    '"star" not in b["choices"][0]["text"] and b["choices"][0]["finish_reason"] == "stop"'

post "streamed completion" 200 /v1/completions '{"model": "tiny", "prompt": "twinkle", "max_tokens": 30, "seed": 7, "stream": true, "stream_options": {"include_usage": true}}'
scheck "stream: chunks, the usage chunk, then [DONE]" \
    'ev[-1] == "[DONE]" and ev[-2]["choices"] == [] and ev[-2]["usage"]["completion_tokens"] == 30 and all(e["object"] == "text_completion" for e in ev[:-1]) and ev[-3]["choices"][0]["finish_reason"] == "length"'
scheck "stream: its text is the unstreamed text for the same seed" \
    "''.join(c['text'] for e in ev[:-1] for c in e['choices']) == json.load(open('$TMP/first.json'))['choices'][0]['text']"
grep -qi '^content-type: text/event-stream' <(curl -s -D - -o /dev/null --max-time 30 -H "Authorization: Bearer $KEY" \
    --data-binary '{"model": "tiny", "prompt": "tw", "max_tokens": 2, "stream": true}' "$URL/v1/completions" | tr -d '\r')
check "stream: Content-Type text/event-stream" $? "header missing"

# ------------------------------------------------------------------ chat
post "chat" 200 /v1/chat/completions '{"model": "tiny", "messages": [{"role": "system", "content": "twinkle"}, {"role": "user", "content": "little star"}], "max_tokens": 15, "seed": 2}'
jcheck "chat: chat.completion with an assistant message; the prompt is both messages and their newlines" \
    'b["object"] == "chat.completion" and b["choices"][0]["message"]["role"] == "assistant" and b["usage"]["prompt_tokens"] == len("twinkle\nlittle star\n") and b["usage"]["completion_tokens"] == 15'
cp "$TMP/body" "$TMP/chat.json"
post "streamed chat" 200 /v1/chat/completions '{"model": "tiny", "messages": [{"role": "system", "content": "twinkle"}, {"role": "user", "content": "little star"}], "max_tokens": 15, "seed": 2, "stream": true}'
scheck "chat stream: the role first, then content deltas, the same reply, [DONE]" \
    "ev[-1] == '[DONE]' and ev[0]['choices'][0]['delta']['role'] == 'assistant' and ev[0]['object'] == 'chat.completion.chunk' and ''.join(e['choices'][0]['delta'].get('content', '') for e in ev[:-1]) == json.load(open('$TMP/chat.json'))['choices'][0]['message']['content'] and 'usage' not in ev[0]"

# ------------------------------------------------------------------ KServe generate
post "KServe generate" 200 /v2/models/tiny/generate '{"text_input": "twinkle", "parameters": {"max_tokens": 30, "seed": 7}}'
jcheck "generate: text_output, the same text as /v1/completions for the seed" \
    "b['model_name'] == 'tiny' and b['text_output'] == json.load(open('$TMP/first.json'))['choices'][0]['text'] and b['finish_reason'] == 'length'"
post "KServe generate_stream" 200 /v2/models/tiny/generate_stream '{"text_input": "twinkle", "parameters": {"max_tokens": 30, "seed": 7}}'
scheck "generate_stream: text_output events that add up, the last with finish_reason" \
    "''.join(e['text_output'] for e in ev) == json.load(open('$TMP/first.json'))['choices'][0]['text'] and ev[-1]['finish_reason'] == 'length'"

# ------------------------------------------------------------------ bad input
post "empty prompt" 400 /v1/completions '{"model": "tiny", "prompt": ""}'
jcheck "empty prompt: OpenAI's error shape naming prompt" 'b["error"]["type"] == "invalid_request_error" and "prompt is empty" in b["error"]["message"]'
post "max_tokens over the cap" 400 /v1/completions '{"model": "tiny", "prompt": "tw", "max_tokens": 201}'
jcheck "max_tokens: the cap is named" '"max_tokens: 201 is outside 1..200" in b["error"]["message"]'
post "temperature < 0" 400 /v1/completions '{"model": "tiny", "prompt": "tw", "temperature": -0.5}'
post "top_p 0" 400 /v1/completions '{"model": "tiny", "prompt": "tw", "top_p": 0}'
post "top_p 1.5" 400 /v1/chat/completions '{"model": "tiny", "messages": [{"role": "user", "content": "tw"}], "top_p": 1.5}'
jcheck "top_p: named" '"top_p" in b["error"]["message"]'
post "unknown model" 404 /v1/completions '{"model": "nope", "prompt": "tw"}'
jcheck "unknown model: not_found, the one message" 'b["error"]["code"] == "not_found" and b["error"]["message"] == "model \x27nope\x27 is not loaded (GET /v1/models lists the models)"'
post "no model" 400 /v1/chat/completions '{"messages": [{"role": "user", "content": "tw"}]}'
jcheck "no model: said so" 'b["error"]["message"] == "\x27model\x27 is missing: name a text generator (GET /v1/models lists the models)"'
post "not a generator" 400 /v1/completions '{"model": "words", "prompt": "tw"}'
jcheck "not a generator: its kind, the kind wanted, the route" 'b["error"]["message"] == "model \x27words\x27 is a word2vec model, not a text generator (POST /v1/completions needs one)"'
post "invalid UTF-8" 400 /v1/completions "$(printf '{"model": "tiny", "prompt": "tw\xc3("}')"
jcheck "invalid UTF-8: the byte offset" '"invalid UTF-8 at byte 2" in b["error"]["message"]'
post "n too large" 400 /v1/completions '{"model": "tiny", "prompt": "tw", "n": 17}'
post "too many stop strings" 400 /v1/completions '{"model": "tiny", "prompt": "tw", "stop": ["a", "b", "c", "d", "e"]}'
jcheck "stop list: the limit named" '"at most 4" in b["error"]["message"]'
post "prompt outside the vocabulary" 400 /v1/completions '{"model": "tiny", "prompt": "ZZZ"}'
post "chat without messages" 400 /v1/chat/completions '{"model": "tiny", "messages": []}'
post "KServe generate: bad top_p, KServe error shape" 400 /v2/models/tiny/generate '{"text_input": "tw", "parameters": {"top_p": 2}}'
jcheck "KServe error: {error: text}" 'isinstance(b["error"], str) and "top_p" in b["error"]'
post "V2 infer on a generator" 400 /v2/models/tiny/infer '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}'
jcheck "infer: points to generate" '"generate" in b["error"]'

curl -s -o "$TMP/body" --max-time 30 -H "Authorization: Bearer $KEY" "$URL/v2/models/tiny"
jcheck "V2 metadata of a generator: text_input, text_output, its cap" \
    'b["inputs"][0]["name"] == "text_input" and b["outputs"][0]["name"] == "text_output" and b["parameters"]["max_tokens"] == 200'

# ------------------------------------------------------------------ tenants
post "tenant acme uses its generator" 200 /v1/completions '{"model": "private", "prompt": "tw", "max_tokens": 3}' "$ACME"
post "another tenant: 404, as if it did not exist" 404 /v1/completions '{"model": "private", "prompt": "tw", "max_tokens": 3}' "$OTHER"
jcheck "another tenant: the missing model's message" 'b["error"]["code"] == "not_found" and b["error"]["message"] == "model \x27private\x27 is not loaded (GET /v1/models lists the models)"'
post "another tenant: 404 on generate_stream too" 404 /v2/models/private/generate_stream '{"text_input": "tw"}' "$OTHER"
jcheck "generate_stream: the same message in KServe's shape" 'b["error"] == "model \x27private\x27 is not loaded (GET /v1/models lists the models)"'
stop_server
check "server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/main.log")"

# ------------------------------------------------------------------ a client that leaves
# Each step sleeps 100 ms (a test hook), so a 200-token stream runs for 20 s: the client reads
# its first event and closes the connection; the slot must be freed at a next step.
# (the key database is the same: the admin key from the first server still works)
start_server slow --debug-batch-sleep-ms 100 || {
    echo "$passed passed, $failed failed"
    exit 1
}
python3 - "$PORT" "$KEY" <<'EOF' >"$TMP/leave.out" 2>&1
import socket, sys
port, key = int(sys.argv[1]), sys.argv[2]
body = b'{"model": "tiny", "prompt": "twinkle", "max_tokens": 200, "stream": true}'
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() +
          b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
          b"\r\n\r\n" + body)
got = b""
while b"data: " not in got:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
print("first event" if b"data: " in got else "no event: %r" % got)
s.close()
EOF
grep -q '^first event' "$TMP/leave.out"
check "a streaming client reads its first event and leaves" $? "$(cat "$TMP/leave.out")"
freed=""
for _ in $(seq 1 300); do
    curl -s --max-time 5 -H "Authorization: Bearer $KEY" "$URL/metrics" >"$TMP/metrics"
    if grep -q '^amuse_generate_slots_freed_by_disconnect_total{model="tiny"} 1$' "$TMP/metrics" &&
        grep -q '^amuse_generate_active_streams{model="tiny"} 0$' "$TMP/metrics"; then
        freed=1
        break
    fi
    sleep 0.1
done
[ -n "$freed" ]
check "/metrics: the slot was freed by the disconnect, no stream active" $? "$(grep amuse_generate "$TMP/metrics")"
tokens=$(sed -n 's/^amuse_generate_tokens_total{model="tiny"} \([0-9]*\)$/\1/p' "$TMP/metrics")
[ -n "$tokens" ] && [ "$tokens" -lt 200 ]
check "the generation stopped early ($tokens of 200 tokens)" $? "tokens $tokens"
stop_server
check "slow server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/slow.log")"

# ------------------------------------------------------------------ the official client
if command -v node >/dev/null && command -v npm >/dev/null; then
    install_openai_client
    cp "$SRC/tests/openai/generate.mjs" "$NODE_DIR/generate.mjs"
    start_server client || {
        echo "$passed passed, $failed failed"
        exit 1
    }
    timeout 120 node "$NODE_DIR/generate.mjs" "$URL/v1" "$KEY" tiny >"$TMP/node.out" 2>&1
    rc=$?
    cat "$TMP/node.out"
    n_ok=$(grep -c '^ok ' "$TMP/node.out")
    [ $rc -eq 0 ] && [ "$n_ok" -eq 4 ]
    check "the openai client streams: all 4 checks" $? "exit $rc, $n_ok ok"
    stop_server
    check "client server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/client.log")"
else
    echo "note: node/npm not installed; the openai client part was not run"
fi
for log in "$TMP"/*.log; do
    if grep -qE 'Sanitizer|runtime error:' "$log"; then
        bad "sanitizer report in $log: $(grep -m3 -E 'Sanitizer|runtime error:' "$log")"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
