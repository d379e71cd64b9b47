#!/usr/bin/env bash
# cli_audio.sh - `amuse audio info|features` end to end on the committed sound fixtures: what it
# prints for WAV, espeak-ng's streamed WAV, stereo 48 kHz, FLAC, Ogg and raw PCM on standard
# input; that --json output parses and agrees with the text output; and that bad input (not
# audio, an unsupported codec, an unknown --config key, bad flags) exits non-zero with a message
# naming the file or key.
#
# usage: bash cli_audio.sh <path to amuse> <fixtures dir>
# Needs /usr/bin/python3 (stdlib json only) for the JSON check; it is skipped without it.
set -u

AMUSE=$(realpath "$1")
AUDIO=$(realpath "$2")/audio
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-cli-audio.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# expect NAME PATTERN COMMAND...: exit 0 and stdout matching PATTERN (grep -E)
expect() {
    local name=$1 pattern=$2
    shift 2
    if "$@" >"$TMP/out" 2>"$TMP/err" && grep -Eq -- "$pattern" "$TMP/out"; then
        ok "$name"
    else
        bad "$name: $(head -c 400 "$TMP/out" "$TMP/err")"
    fi
}
# refuse NAME PATTERN COMMAND...: non-zero exit, stderr matching PATTERN, nothing on stdout
refuse() {
    local name=$1 pattern=$2
    shift 2
    if "$@" >"$TMP/out" 2>"$TMP/err"; then
        bad "$name: exit 0"
    elif grep -Eq -- "$pattern" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "$name"
    else
        bad "$name: $(head -c 400 "$TMP/err")"
    fi
}

expect "info wav" "format +WAV, PCM 16-bit" "$AMUSE" audio info "$AUDIO/speech16k.wav"
expect "info wav duration" "converted +16000 Hz mono, 8480 samples \(0.530 s\)" "$AMUSE" audio info "$AUDIO/speech16k.wav"
expect "info espeak stream" "source +22050 Hz, 1 channel, 17663 frames" "$AMUSE" audio info "$AUDIO/espeak_stdout.wav"
expect "info stereo 48k" "source +48000 Hz, 2 channels, 12000 frames" "$AMUSE" audio info "$AUDIO/tone48k_stereo.wav"
expect "info stereo 48k converted" "converted +16000 Hz mono, 4000 samples" "$AMUSE" audio info "$AUDIO/tone48k_stereo.wav"
expect "info flac" "format +FLAC, FLAC 16-bit" "$AMUSE" audio info "$AUDIO/speech.flac"
expect "info ogg" "format +Ogg, Vorbis" "$AMUSE" audio info "$AUDIO/speech.ogg"
expect "info extensible" "format +WAVEX, PCM 24-bit" "$AMUSE" audio info "$AUDIO/speech_extensible.wav"
expect "info flac on stdin" "format +FLAC, FLAC 16-bit" sh -c "\"$AMUSE\" audio info - < \"$AUDIO/speech.flac\""
# Raw PCM: the data chunk of speech16k.wav (44-byte header) through a pipe, as from arecord.
expect "info raw stdin" "source +16000 Hz, 1 channel, 8480 frames" sh -c "tail -c +45 \"$AUDIO/speech16k.wav\" | \"$AMUSE\" audio info - --raw 16000"
expect "info raw 8k stereo" "source +8000 Hz, 2 channels, 4240 frames" sh -c "tail -c +45 \"$AUDIO/speech16k.wav\" | \"$AMUSE\" audio info - --raw 8000 --channels 2"

expect "features default" "^# .*: 51 frames x 40 MFCC coefficients \(window 480, stride 160" "$AMUSE" audio features "$AUDIO/speech16k.wav"
if [ "$("$AMUSE" audio features "$AUDIO/speech16k.wav" --mfcc 13 | awk 'NR > 1 { print NF }' | sort -u)" = 13 ] &&
   [ "$("$AMUSE" audio features "$AUDIO/speech16k.wav" --mfcc 13 | grep -vc '^#')" = 51 ]; then
    ok "features --mfcc 13: 51 rows of 13"
else
    bad "features --mfcc 13"
fi
expect "features log-mel config" "43 frames x 64 log-mel" "$AMUSE" audio features "$AUDIO/speech16k.wav" --log-mel --config '{"window_ms": 25, "stride_ms": 12, "mel_bands": 64, "upper_hz": 8000}'
if [ -x /usr/bin/python3 ]; then
    "$AMUSE" audio features "$AUDIO/speech.flac" --json --mfcc 10 >"$TMP/f.json"
    "$AMUSE" audio features "$AUDIO/speech.flac" --mfcc 10 >"$TMP/f.txt"
    if /usr/bin/python3 - "$TMP/f.json" "$TMP/f.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = [list(map(float, l.split())) for l in open(sys.argv[2]) if not l.startswith("#")]
assert d["frames"] == 51 and d["coefficients"] == 10 and d["features"]["type"] == "mfcc", d["frames"]
assert len(d["values"]) == len(rows) == 51
assert all(abs(a - b) <= 1e-4 * (1 + abs(a)) for r, t in zip(d["values"], rows) for a, b in zip(r, t))
PY
    then ok "features --json parses and agrees with the text"; else bad "features --json"; fi
fi

# All zeros: read, and called silent.
{ head -c 44 "$AUDIO/speech16k.wav"; head -c 16960 /dev/zero; } >"$TMP/silent.wav"
expect "info silent" "level +silent \(every sample is 0\)" "$AMUSE" audio info "$TMP/silent.wav"

printf 'just some text\n' >"$TMP/notes.wav"
: >"$TMP/empty.wav"
refuse "not audio" "notes.wav: not audio: byte 0" "$AMUSE" audio info "$TMP/notes.wav"
refuse "empty file" "empty.wav: empty \(0 bytes\)" "$AMUSE" audio info "$TMP/empty.wav"
refuse "missing file" "nothing.wav: cannot open" "$AMUSE" audio info "$TMP/nothing.wav"
refuse "adpcm" "speech_adpcm.wav: unsupported codec IMA ADPCM" "$AMUSE" audio info "$AUDIO/speech_adpcm.wav"
refuse "not audio on stdin" "stdin: not audio" sh -c "echo hello | \"$AMUSE\" audio info -"
refuse "unknown config key" "--config: unknown key 'windw_ms'" "$AMUSE" audio features "$AUDIO/speech16k.wav" --config '{"windw_ms": 25}'
refuse "too many coefficients" "key 'mfcc': 50 is outside" "$AMUSE" audio features "$AUDIO/speech16k.wav" --mfcc 50
refuse "mfcc and log-mel" "exclude each other" "$AMUSE" audio features "$AUDIO/speech16k.wav" --mfcc 5 --log-mel
refuse "bad raw rate" "--raw" "$AMUSE" audio info - --raw 12
refuse "channels without raw" "--channels applies to raw input" "$AMUSE" audio info "$AUDIO/speech16k.wav" --channels 2
refuse "unknown subcommand" "usage: amuse audio" "$AMUSE" audio play "$AUDIO/speech16k.wav"
expect "help" "amuse audio features FILE" "$AMUSE" audio --help

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
