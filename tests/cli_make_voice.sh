#!/usr/bin/env bash
# cli_make_voice.sh - data/make_voice.sh on a tiny set (3 clips per class, 54 clips): it is
# deterministic (1 worker and 2 workers, same seed: the same bytes; another seed: other clips),
# the split is by voice (no voice in two splits), every clip is what amuse reads as 1 s of 16 kHz
# mono 16-bit WAV, the manifest has one line per clip with the documented columns, and bad
# options are refused.
#
# usage: bash cli_make_voice.sh <path to amuse> <fixtures dir>
# Needs espeak-ng and sox (scripts/test.sh installs them). It does not judge how the clips sound.
set -u

AMUSE=$(realpath "$1")
SCRIPT=$(cd "$(dirname "$0")/.." && pwd)/data/make_voice.sh
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-make-voice.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
    echo "FAIL prerequisites: need espeak-ng and sox (apt install espeak-ng sox)"
    echo "0 passed, 1 failed"
    exit 1
fi

"$SCRIPT" --per-class 3 --jobs 1 --seed 7 --out "$TMP/a" 2>"$TMP/a.log" || bad "run 1: $(tail -3 "$TMP/a.log")"
"$SCRIPT" --per-class 3 --jobs 2 --seed 7 --out "$TMP/b" 2>"$TMP/b.log" || bad "run 2: $(tail -3 "$TMP/b.log")"
"$SCRIPT" --per-class 3 --jobs 2 --seed 8 --out "$TMP/c" 2>"$TMP/c.log" || bad "run 3: $(tail -3 "$TMP/c.log")"

checksums() { (cd "$1" && find . -type f -name '*.wav' | LC_ALL=C sort | xargs md5sum; md5sum manifest.csv); }
if [ -s "$TMP/a/manifest.csv" ] && [ "$(checksums "$TMP/a")" = "$(checksums "$TMP/b")" ]; then
    ok "same seed, 1 or 2 workers: identical files"
else
    bad "same seed gave different files"
fi
if [ "$(checksums "$TMP/a")" != "$(checksums "$TMP/c")" ]; then ok "another seed: other clips"; else bad "seed ignored"; fi

M="$TMP/a/manifest.csv"
if [ "$(head -1 "$M")" = "path,label,voice,split,accent,word,speed,snr_db,noise" ]; then
    ok "manifest header"
else
    bad "manifest header: $(head -1 "$M")"
fi
rows=$(($(wc -l <"$M") - 1))
wavs=$(find "$TMP/a" -name '*.wav' -not -path '*/noise/*' | wc -l)
if [ "$rows" -eq 54 ] && [ "$wavs" -eq 54 ]; then ok "54 clips, one manifest line each"; else bad "rows $rows, wavs $wavs"; fi
labels=$(awk -F, 'NR > 1 { print $2 }' "$M" | sort -u | tr '\n' ' ')
expect="_silence_ _unknown_ back down fire go jump left next no off on pause play right stop up yes "
if [ "$labels" = "$expect" ]; then ok "18 classes"; else bad "classes: $labels"; fi
if [ "$(awk -F, 'NR > 1 { print $4 }' "$M" | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')" = "test=18 train=18 validation=18 " ]; then
    ok "one clip per class in each split"
else
    bad "splits: $(awk -F, 'NR > 1 { print $4 }' "$M" | sort | uniq -c | tr '\n' ' ')"
fi
leaks=$(awk -F, 'NR > 1 && $3 != "-" { k = $3 SUBSEP $4; if (!(k in seen)) { seen[k]; n[$3]++ } }
                 END { for (v in n) if (n[v] > 1) print v }' "$M")
if [ -z "$leaks" ]; then ok "no voice in two splits"; else bad "voices in two splits: $leaks"; fi
# The voices listed for each split in voices.txt are the ones the manifest uses there.
mismatch=$(awk 'NR == FNR { split_of[$1] = $2; next } FNR > 1 && $3 != "-" && split_of[$3] != $4 { print $3 }' \
           "$TMP/a/voices.txt" FS=, "$M")
if [ -z "$mismatch" ]; then ok "voices.txt agrees"; else bad "voices.txt disagrees: $mismatch"; fi
# The unknown words are not commands.
if awk -F, 'NR > 1 && $2 == "_unknown_" { print $6 }' "$M" |
   grep -Exq 'yes|no|up|down|left|right|on|off|stop|go|jump|fire|play|pause|next|back'; then
    bad "an unknown word is a command"
else
    ok "unknown words are not commands"
fi

# Every clip through amuse's own reader: 1 s, 16 kHz, mono, 16-bit PCM, not silent unless silence.
badclips=0
while IFS=, read -r path label _; do
    out=$("$AMUSE" audio info "$TMP/a/$path" 2>&1)
    if ! grep -q "format      WAV, PCM 16-bit" <<<"$out" ||
       ! grep -q "source      16000 Hz, 1 channel, 16000 frames (1.000 s)" <<<"$out" ||
       { [ "$label" != _silence_ ] && grep -q "silent" <<<"$out"; }; then
        badclips=$((badclips + 1))
        echo "  $path: $out" | head -3
    fi
done < <(tail -n +2 "$M")
if [ "$badclips" -eq 0 ]; then ok "every clip reads as 1 s of 16 kHz mono PCM"; else bad "$badclips clips"; fi

# Backgrounds: babble is made of training voices only, from sentences without a command word;
# babble and music reach training clips only; every background file is 30 s of audio.
B="$TMP/a/noise/babble.txt"
if [ -s "$B" ] && [ -z "$(awk 'NR == FNR { split_of[$1] = $2; next } split_of[$3] != "train" { print $3 }' \
                          "$TMP/a/voices.txt" "$B")" ]; then
    ok "babble voices are all training voices ($(wc -l <"$B") voice parts)"
else
    bad "babble voices: $(cat "$B" 2>/dev/null | head -3)"
fi
if grep -Eiwq 'yes|no|up|down|left|right|on|off|stop|go|jump|fire|play|pause|next|back' \
     "$TMP/a/noise/sentences.txt"; then
    bad "a babble sentence holds a command word"
else
    ok "babble sentences hold no command word"
fi
leak=$(awk -F, 'NR > 1 && $4 != "train" && $9 ~ /^(babble|music)/' "$M")
if [ -z "$leak" ]; then ok "babble and music only in training"; else bad "background outside training: $leak"; fi
badnoise=0
for n in babble1 babble2 babble3 babble4 music1 music2 music3 music4; do
    "$AMUSE" audio info "$TMP/a/noise/$n.wav" 2>&1 | grep -q "16000 Hz, 1 channel, 480000 frames" ||
        { badnoise=$((badnoise + 1)); echo "  $n: $("$AMUSE" audio info "$TMP/a/noise/$n.wav" 2>&1 | head -3)"; }
done
if [ "$badnoise" -eq 0 ]; then ok "babble and music files: 30 s of 16 kHz mono"; else bad "$badnoise background files"; fi
if [ -z "$(find "$TMP" -maxdepth 1 -name '*.tmp.*')" ]; then
    ok "no temporary directory left"
else
    bad "temporary directory left"
fi

if "$SCRIPT" --per-class x --out "$TMP/d" 2>"$TMP/err"; then bad "--per-class x accepted"
elif grep -q "'x' is not a whole number" "$TMP/err" && [ ! -e "$TMP/d" ]; then ok "--per-class x refused"
else bad "--per-class x: $(cat "$TMP/err")"; fi
if "$SCRIPT" --frobnicate 2>"$TMP/err"; then bad "unknown option accepted"
elif grep -q "unknown option '--frobnicate'" "$TMP/err"; then ok "unknown option refused"
else bad "unknown option: $(cat "$TMP/err")"; fi
if "$SCRIPT" --help | grep -q "usage: data/make_voice.sh"; then ok "--help"; else bad "--help"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
