#!/usr/bin/env bash
# cli_serve_audio.sh - the shipped voice model (models/default/voice-dscnn) served by a real
# `amuse serve` on a loopback port: POST /v1/audio/transcriptions on words spoken here by
# espeak-ng (json, text and verbose_json; a one-word clip classified once, a sentence through
# streaming detection with the same events `amuse listen` prints), 8 kHz, 48 kHz stereo, FLAC and
# Ogg/Vorbis accepted, silence answered as "_silence_", the V2 infer route with BYTES files
# (base64 and the binary extension) and FP32 samples, and every bad input refused with OpenAI's
# error shape and a message that says what and where: not audio, an unsupported codec, an empty
# file, NaN samples, over the duration cap and over the body cap (413), a model that is not a
# voice model, no file field, a bad response_format, a malformed multipart body.
#
# The words are spoken by espeak-ng, the synthesizer of the training set; make_voice.sh holds
# whole voices out, but which ones depends on its seed, so the voices here (en-us with the m3
# variant, en-gb-scotland with klatt) may or may not be among those it trained on. The
# bench's held-out figures (docs/BENCHMARKS.md) are the measure of unseen voices; this test
# checks that the route gives what the model gives.
#
# usage: bash cli_serve_audio.sh <path to amuse> <fixtures dir>
# Needs espeak-ng, sox, curl and python3 (scripts/test.sh installs them). Every wait is bounded;
# only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-audio
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
for need in espeak-ng sox curl "$PYTHON"; do
    command -v "$need" >/dev/null || { bad "prerequisites: need $need (scripts/deps.sh espeak-ng sox curl python3)"; finish; }
done

REPO="$TMP/repo"
mkdir -p "$REPO"
cp -r "$SRC/models/default/voice-dscnn" "$SRC/models/default/fashion-dnn" "$REPO/"
VOICE=voice-dscnn
MODEL_DIR="$REPO/$VOICE/1"

# ------------------------------------------------------------------ sounds, made here
A="$TMP/a"
mkdir -p "$A"
espeak-ng -v en-us+m3 -w "$A/jump.wav" "jump"
espeak-ng -v en-gb-scotland+klatt -w "$A/pause.wav" "pause"
# A sentence with a command near each end: longer than a clip, so detection runs.
espeak-ng -v en-us+m3 -w "$A/sentence.wav" "jump. [[_:_:_:_:]] stop"
sox "$A/jump.wav" -r 8000 "$A/jump8k.wav"
sox "$A/jump.wav" -r 48000 -c 2 "$A/jump48k_stereo.wav"
sox "$A/jump.wav" "$A/jump.flac"
sox "$A/jump.wav" "$A/jump.ogg"
sox -n -r 16000 -b 16 -c 1 "$A/silence.wav" trim 0 1
sox "$A/jump.wav" -e ima-adpcm "$A/adpcm.wav"
sox -n -r 8000 -b 8 -c 1 "$A/long.wav" trim 0 130 # 130 s: over the 120 s cap, 1 MB
: >"$A/empty.wav"
echo "this is text, not sound" >"$A/text.wav"
"$PYTHON" - "$A/nan.wav" <<'PY'
import math, struct, sys
x = [0.1 * math.sin(i / 10) for i in range(8000)]
x[4000] = float("nan")  # at 0.25 s
data = b"".join(struct.pack("<f", v) for v in x)
fmt = struct.pack("<IHHIIHH", 16, 3, 1, 16000, 64000, 4, 32)  # IEEE float, mono, 16 kHz
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" +
                              b"fmt " + fmt + b"data" + struct.pack("<I", len(data)) + data)
PY
for f in jump pause sentence jump8k jump48k_stereo jump.flac jump.ogg silence adpcm long; do
    case $f in *.*) ;; *) f=$f.wav ;; esac
    [ -s "$A/$f" ] || { bad "could not make $f with espeak-ng/sox"; finish; }
done

KEY=$("$AMUSE" keys create --tenant app --scope infer --db "$TMP/keys.db" 2>/dev/null)
start_server main --max-body-bytes 2000000 || finish
grep -q "model $VOICE version 1 loaded" "$TMP/main.log"
check "the voice model loads" $? "$(grep "$VOICE" "$TMP/main.log")"

# transcribe NAME STATUS NEEDLE FILE-OR-"" [more curl -F args]: POST a form; body in $TMP/body.
transcribe() {
    local name=$1 want=$2 needle=$3 file=$4
    shift 4
    local args=(-s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --max-time 60
        -H "Authorization: Bearer $KEY")
    [ -n "$file" ] && args+=(-F "file=@$file")
    local got
    got=$(curl "${args[@]}" "$@" "$URL/v1/audio/transcriptions${QS:-}")
    if [ "$got" != "$want" ]; then
        bad "$name: status $got, expected $want: $(head -c 300 "$TMP/body")"
    elif ! grep -qF -- "$needle" "$TMP/body"; then
        bad "$name: body does not contain '$needle': $(head -c 300 "$TMP/body")"
    else
        ok "$name ($got): $(head -c 160 "$TMP/body" | tr '\n' ' ')"
    fi
}

# ------------------------------------------------------------------ the three formats
transcribe "json: a spoken command" 200 '{"text": "jump"}' "$A/jump.wav" -F model=$VOICE
transcribe "json: another voice" 200 '{"text": "pause"}' "$A/pause.wav" -F model=$VOICE
QS="?model=$VOICE" transcribe "model in the query string" 200 '{"text": "jump"}' "$A/jump.wav"
transcribe "text" 200 "jump" "$A/jump.wav" -F model=$VOICE -F response_format=text
printf 'jump\n' | cmp -s - "$TMP/body"
check "text is the words and a newline" $? "$(od -c "$TMP/body" | head -3)"
grep -qi '^content-type: text/plain; charset=utf-8' "$TMP/hdr"
check "text is text/plain" $? "$(grep -i content-type "$TMP/hdr")"
transcribe "ignored fields are accepted" 200 '"text": "jump"' "$A/jump.wav" -F model=$VOICE \
    -F temperature=0.2 -F language=en -F prompt=hello
transcribe "verbose_json: one clip" 200 '"task": "transcribe"' "$A/jump.wav" -F model=$VOICE \
    -F response_format=verbose_json
"$PYTHON" - "$TMP/body" "$A/jump.wav" <<'PY'
import json, sys, wave
r = json.load(open(sys.argv[1]))
w = wave.open(sys.argv[2])
seconds = w.getnframes() / w.getframerate()
assert r["model"] == "voice-dscnn" and r["text"] == "jump", r
assert abs(r["duration"] - seconds) < 0.002, (r["duration"], seconds)
assert r["label"] == "jump" and 0.6 <= r["score"] <= 1, r
e = r["events"]
assert len(e) == 1 and e[0]["word"] == "jump" and e[0]["score"] == r["score"], e
assert e[0]["start"] == 0 and abs(e[0]["detected"] - r["duration"]) < 0.002, e
PY
check "verbose_json: duration, label, score and the one event agree" $? "$(head -c 300 "$TMP/body")"

# A recording longer than a clip: streaming detection, the same events as `amuse listen`.
transcribe "verbose_json: a sentence" 200 '"events": [{' "$A/sentence.wav" -F model=$VOICE \
    -F response_format=verbose_json
cp "$TMP/body" "$TMP/sentence.json"
"$AMUSE" listen "$MODEL_DIR" "$A/sentence.wav" --json >"$TMP/listen.out" 2>"$TMP/listen.err"
"$PYTHON" - "$TMP/sentence.json" "$TMP/listen.out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cli = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert "label" not in r, r  # only single clips have one
assert r["duration"] > 1.02, r
assert [e["word"] for e in r["events"]] == [e["word"] for e in cli], (r, cli)
for a, b in zip(r["events"], cli):
    assert abs(a["start"] - b["start"]) < 1e-3 and abs(a["detected"] - b["detected"]) < 1e-3, (a, b)
    assert abs(a["score"] - b["score"]) < 1e-3, (a, b)
assert r["text"] == " ".join(e["word"] for e in cli), r
assert r["text"].split()[0] == "jump" and r["events"][0]["start"] < 0.5, r
assert r["events"][-1]["word"] == "stop" and r["events"][-1]["start"] > 0.5, r
PY
check "the sentence's events are amuse listen's: jump then stop" $? "$(head -c 400 "$TMP/sentence.json") / $(cat "$TMP/listen.out")"

# ------------------------------------------------------------------ formats and rates
transcribe "48 kHz stereo is mixed down and resampled" 200 '"text": "jump"' "$A/jump48k_stereo.wav" -F model=$VOICE
transcribe "8 kHz is accepted (what the model hears without the band above 4 kHz is its answer)" \
    200 '"label": ' "$A/jump8k.wav" -F model=$VOICE -F response_format=verbose_json
transcribe "FLAC" 200 '"text": "jump"' "$A/jump.flac" -F model=$VOICE
transcribe "Ogg/Vorbis" 200 '"text": "jump"' "$A/jump.ogg" -F model=$VOICE
transcribe "silence is an answer, not an error" 200 '"label": "_silence_"' "$A/silence.wav" \
    -F model=$VOICE -F response_format=verbose_json
grep -qF '"text": ""' "$TMP/body"
check "silence has no text" $? "$(cat "$TMP/body")"

# ------------------------------------------------------------------ bad input
transcribe "not audio" 400 'file: not audio: byte 0' "$A/text.wav" -F model=$VOICE
grep -qF '"type": "invalid_request_error"' "$TMP/body"
check "errors are OpenAI's shape" $? "$(cat "$TMP/body")"
transcribe "unsupported codec" 400 'unsupported codec IMA ADPCM' "$A/adpcm.wav" -F model=$VOICE
transcribe "empty file" 400 'file: the uploaded file is empty' "$A/empty.wav" -F model=$VOICE
transcribe "NaN samples" 400 'sample NaN at 0.250 s' "$A/nan.wav" -F model=$VOICE
transcribe "over the duration cap" 413 'is over the limit of 120 s' "$A/long.wav" -F model=$VOICE
grep -qF '"code": "request_too_large"' "$TMP/body"
check "the 413 is request_too_large" $? "$(cat "$TMP/body")"
head -c 2100000 /dev/zero >"$TMP/big.bin"
transcribe "over the body cap" 413 'max' "$TMP/big.bin" -F model=$VOICE
transcribe "an image model" 400 "model 'fashion-dnn' is a network model, not a voice model (POST /v1/audio/transcriptions needs one: a config with a \\\"features\\\" recipe, like models/default/voice-dscnn)" "$A/jump.wav" -F model=fashion-dnn
transcribe "an unknown model" 404 "model 'nope' is not loaded (GET /v1/models lists the models)" "$A/jump.wav" -F model=nope
transcribe "no model" 400 "'model' is missing: name a voice model (GET /v1/models lists the models)" "$A/jump.wav"
transcribe "no file field" 400 "file: the form has no 'file' field" "" -F model=$VOICE
transcribe "a bad response_format" 400 "response_format 'srt' is not supported" "$A/jump.wav" \
    -F model=$VOICE -F response_format=srt
transcribe "JSON instead of a form" 415 "must be multipart/form-data" "" \
    -H 'Content-Type: application/json' --data-binary '{"model": "voice-dscnn"}'
# A multipart body cut in the middle of the file part.
head -c 600 "$A/jump.wav" >"$TMP/part.bin"
{
    printf -- '--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nvoice-dscnn\r\n'
    printf -- '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
    printf 'Content-Type: audio/wav\r\n\r\n'
    cat "$TMP/part.bin"
} >"$TMP/truncated.form"
transcribe "a truncated multipart body" 400 "malformed or truncated multipart/form-data" "" \
    -H 'Content-Type: multipart/form-data; boundary=XyZ' --data-binary "@$TMP/truncated.form"
transcribe "no boundary" 400 "boundary" "" -H 'Content-Type: multipart/form-data' --data-binary 'x'
# The server is still answering after all that.
transcribe "still serving" 200 '{"text": "jump"}' "$A/jump.wav" -F model=$VOICE

# ------------------------------------------------------------------ the V2 infer route
"$PYTHON" - "$URL" "$KEY" "$A" <<'PY'
import base64, json, struct, sys, urllib.request, wave
url, key, a = sys.argv[1:]
def post(body, headers=None):
    h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(url + "/v2/models/voice-dscnn/infer", data=body, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
fails = 0
def check(name, cond, detail):
    global fails
    print(("ok   " if cond else "FAIL ") + "V2: " + name + ("" if cond else ": " + str(detail)[:300]))
    fails += not cond
b64 = lambda f: base64.b64encode(open(f"{a}/{f}", "rb").read()).decode()
st, r = post(json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [3],
        "data": [b64("jump.wav"), b64("silence.wav"), b64("pause.wav")]}],
        "outputs": [{"name": "label"}, {"name": "probabilities"}]}).encode())
out = {o["name"]: o for o in r.get("outputs", [])}
labels = out["label"]["data"] if st == 200 else None
check(f"BYTES base64 files -> labels {labels}", st == 200 and labels == ["jump", "_silence_", "pause"], r)
if st == 200:
    p = out["probabilities"]
    check("probabilities [3, 18], rows sum to 1", p["shape"] == [3, 18] and
          all(abs(sum(p["data"][i * 18:(i + 1) * 18]) - 1) < 1e-4 for i in range(3)), p["shape"])
raw = open(f"{a}/jump.wav", "rb").read()
hdr = json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1],
      "parameters": {"binary_data_size": 4 + len(raw)}}], "outputs": [{"name": "label"}]}).encode()
st, r = post(hdr + struct.pack("<I", len(raw)) + raw,
             {"Inference-Header-Content-Length": str(len(hdr)), "Content-Type": "application/octet-stream"})
check("BYTES with the binary extension", st == 200 and r["outputs"][0]["data"] == ["jump"], r)
# FP32 samples at 16 kHz: the 48 kHz stereo file, mixed and resampled by sox here.
import subprocess
subprocess.run(["sox", f"{a}/jump48k_stereo.wav", "-r", "16000", "-c", "1", "-b", "16", f"{a}/j16.wav"], check=True)
w = wave.open(f"{a}/j16.wav")
n = w.getnframes()
x = [v / 32768 for v in struct.unpack(f"<{n}h", w.readframes(n))]
st, r = post(json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, n], "data": x}],
                         "outputs": [{"name": "label"}]}).encode())
check(f"FP32 samples ({n} at 16 kHz)", st == 200 and r["outputs"][0]["data"] == ["jump"], r)
st, r = post(json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1],
                                     "data": [b64("sentence.wav")]}]}).encode())
check("a file longer than a clip is a 413 that names the transcriptions route",
      st == 413 and "inputs[0].data[0]" in r["error"] and "/v1/audio/transcriptions" in r["error"], r)
st, r = post(json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16001],
                                     "data": [0] * 16001}]}).encode())
check("FP32 rows longer than a clip are refused", st == 400 and "n from 1 to 16000" in r["error"], r)
st, r = post(json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [2],
                                     "data": [b64("jump.wav"), b64("text.wav")]}]}).encode())
check("not audio names the element", st == 400 and "inputs[0].data[1]: not audio" in r["error"], r)
st, r = post(json.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1],
                                     "data": ["%%%"]}]}).encode())
check("bad base64", st == 400 and "not valid base64" in r["error"], r)
nan = struct.pack("<f", float("nan"))
hdr = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2],
      "parameters": {"binary_data_size": 8}}]}).encode()
st, r = post(hdr + struct.pack("<f", 0.5) + nan,
             {"Inference-Header-Content-Length": str(len(hdr)), "Content-Type": "application/octet-stream"})
check("NaN in binary FP32 samples", st == 400 and "not finite" in r["error"], r)
req = urllib.request.Request(url + "/v2/models/voice-dscnn", headers={"Authorization": "Bearer " + key})
meta = json.loads(urllib.request.urlopen(req, timeout=30).read())
inp = meta["inputs"][0]
check("metadata: BYTES input, clip and rate, labels", inp["datatype"] == "BYTES" and
      inp["parameters"]["clip_ms"] == 1000 and inp["parameters"]["sample_rate"] == 16000 and
      meta["outputs"][0]["parameters"]["labels"][0] == "_silence_", meta)
sys.exit(1 if fails else 0)
PY
check "the V2 infer route on sound (the lines above)" $? "see the FAIL lines above"

stop_server
check "server exits 0 on SIGTERM" $? "$(tail -n 3 "$TMP/main.log")"
if grep -qE 'Sanitizer|runtime error:' "$TMP/main.log"; then
    bad "sanitizer report in the server log: $(grep -m3 -E 'Sanitizer|runtime error:' "$TMP/main.log")"
fi
finish
