#!/usr/bin/env bash
# make_voice.sh - build the voice-command training set by speech synthesis: 1 s, 16 kHz mono
# 16-bit WAV clips of 16 command words plus _silence_ and _unknown_, spoken by espeak-ng's
# English accents and voice variants, augmented with sox, split by voice, listed in a manifest.
#
# Training clips get backgrounds a game or music app has: speech babble (training voices only)
# and synthesised music, besides stationary noise.
#
# What it does not do: download anything (Google's Speech Commands cannot be fetched here), use
# real recordings, or mix noise into the validation and test clips (they stay clean, so a
# benchmark can add its own noise, at its own SNR, with noise the training never heard).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: data/make_voice.sh [--quick] [--per-class N] [--seed N] [--jobs N] [--out DIR]

Synthesises the voice-command data set with espeak-ng and sox (installed through apt when
missing, with wamerican for the unknown-word list).

  --per-class N  clips per class over all splits (default 300; --quick: 24)
  --quick        a small set for tests and smoke runs
  --seed N       random seed (default 1); the same seed gives the same files
  --jobs N       parallel workers (default 2)
  --out DIR      output directory (default data/voice next to this script); replaced atomically

Classes: yes no up down left right on off stop go jump fire play pause next back, _silence_,
_unknown_ (other words from /usr/share/dict/words, or a built-in list).

Voices: a voice is an espeak-ng variant (the speaker: m1..m8, f1..f5, klatt, Alex, ...), spoken
with any of the English accents (en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-gb-x-gbclan,
en-gb-x-gbcwmd, en-029, en-us-nyc). The split is by voice: about 70% of the variants are for
training, 15% for validation and 15% for test, and a variant's clips are all in one split.

Per clip: espeak-ng rate 120-220 words/min, pitch 20-80, amplitude 60-180; then, for training
clips only, speed perturbation 0.88-1.12 by resampling (pitch moves with it, as in Kaldi), and
a background at 0-30 dB SNR (speech RMS over noise RMS) on 85% of clips, 15% stay clean:
  babble (40%)  4 files, each 4-6 espeak-ng TRAINING voices (never a validation or test voice)
                reading unrelated sentences (no command word in them) at once;
  music (30%)   4 files synthesised with sox: chords, a melody and drums at 90-140 bpm;
  stationary    white, pink, brown noise or mains hum (sox).
(Debian's sound packages were considered: asterisk-moh-opsound-wav is 14 MB of 8 kHz music,
sound-theme-freedesktop is notification beeps; neither is a fit, so music is synthesised.) Every clip: random time shift (where the word starts in the 1 s window), random peak
gain (-25..-1 dBFS in training, -12..-1 in validation and test). _silence_ is a background
(any of the above, babble and music in training only) or near silence at random levels.

Output: DIR/<split>/<label>/<id>.wav and DIR/manifest.csv with the columns
path,label,voice,split,accent,word,speed,snr_db,noise (path relative to DIR); noise names
the background (white, pink, brown, hum, babble1..4, music1..4, zero or -). DIR/noise/ keeps
the background files and DIR/noise/babble.txt the voices each babble file was made from.
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
per_class=300
quick=0
seed=1
jobs=2
out="$here/voice"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --per-class) per_class=${2:?--per-class needs a number}; shift ;;
    --seed) seed=${2:?--seed needs a number}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make_voice.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$quick" = 1 ] && [ "$per_class" = 300 ] && per_class=24
for v in "$per_class" "$seed" "$jobs"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "make_voice.sh: '$v' is not a whole number" >&2; exit 2; }
done
[ "$per_class" -ge 3 ] || { echo "make_voice.sh: --per-class must be at least 3" >&2; exit 2; }
[ "$jobs" -ge 1 ] || jobs=1

# ---------------------------------------------------------------- tools
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
[ -r /usr/share/dict/words ] || missing+=(wamerican)
if [ ${#missing[@]} -gt 0 ]; then
  echo "make_voice.sh: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
         --no-install-recommends "${missing[@]}"; } >&2; then
    command -v espeak-ng >/dev/null && command -v sox >/dev/null || {
      echo "make_voice.sh: needs espeak-ng and sox (apt install espeak-ng sox)" >&2; exit 1; }
  fi
fi

# ---------------------------------------------------------------- voices and words
COMMANDS="yes no up down left right on off stop go jump fire play pause next back"
ACCENTS="en-us en-gb en-gb-scotland en-gb-x-rp en-gb-x-gbclan en-gb-x-gbcwmd en-029 en-us-nyc"
# Variants that are not a speaker: a test voice, effects, and whispers (no voicing at all);
# "Mr serious" has a space in its file name, which -v cannot take (it would be the default voice).
SKIP_VARIANTS=" fast Demonic whisper whisperf Mr "
variants=$(espeak-ng --voices=variant | awk 'NR > 1 { sub("^!v/", "", $5); print $5 }' |
           while read -r v; do [[ "$SKIP_VARIANTS" == *" $v "* ]] || echo "$v"; done | LC_ALL=C sort)
[ -n "$variants" ] || { echo "make_voice.sh: espeak-ng lists no voice variants" >&2; exit 1; }
accents=""
for a in $ACCENTS; do
  espeak-ng -v "$a" -q "x" 2>/dev/null && accents="$accents $a"
done
[ -n "$accents" ] || { echo "make_voice.sh: espeak-ng has none of: $ACCENTS" >&2; exit 1; }

work="$out.tmp.$$"
rm -rf "$work"
mkdir -p "$work/noise" "$work/scratch"
trap 'rm -rf "$work"' EXIT

# Unknown words: lower-case 3-8 letter words that are not a command or a command with a suffix.
if [ -r /usr/share/dict/words ]; then
  LC_ALL=C grep -E '^[a-z]{3,8}$' /usr/share/dict/words > "$work/words.all" || true
fi
if [ ! -s "$work/words.all" ]; then
  printf '%s\n' bed bird cat dog happy house marvin sheila tree wow zero one two three four five \
    six seven eight nine learn follow forward visual table water music window garden yellow \
    purple orange coffee paper pencil market number letter summer winter monkey rabbit turtle \
    dinner basket candle doctor engine finger guitar hammer island jacket kitten ladder mirror \
    needle ocean pillow rocket silver ticket valley wagon zebra apple banana cherry lemon melon \
    button castle dragon forest planet shadow thunder travel wizard > "$work/words.all"
fi
LC_ALL=C awk -v cmds="$COMMANDS" 'BEGIN { n = split(cmds, c, " ");
    for (i = 1; i <= n; i++) { bad[c[i]]; bad[c[i] "s"]; bad[c[i] "ed"]; bad[c[i] "ing"];
                               bad[c[i] "es"]; bad[c[i] "d"] } }
  !($0 in bad)' "$work/words.all" | LC_ALL=C sort -u > "$work/words"

# ---------------------------------------------------------------- noise
# Long noise files, generated once (sox -R: repeatable); each clip takes a random 1 s of one.
# Their RMS level (dBFS) is measured once for the SNR arithmetic. Babble and music follow the
# voice split (below).
noise_types="white pink brown hum"
for n in $noise_types; do
  case $n in
    white) synth="synth 30 whitenoise" ;;
    pink) synth="synth 30 pinknoise" ;;
    brown) synth="synth 30 brownnoise" ;;
    hum) synth="synth 30 sine 50 sine 100 sine 150 sine 250 sine 350 remix - tremolo 0.3 40" ;;
  esac
  # shellcheck disable=SC2086
  sox -R -D -V1 -n -r 16000 -b 16 -c 1 "$work/noise/$n.wav" $synth norm -6
  sox "$work/noise/$n.wav" -n stats 2>&1 | awk -v n="$n" '/^RMS lev dB/ { print n, $4 }'
done > "$work/noise/levels"

# ---------------------------------------------------------------- the plan
# One line per clip, every random choice made here, from the seed, in one awk process: the
# workers below only execute it, so the output does not depend on scheduling.
split_voices() { # split a sorted list of variants by a seeded shuffle, 70/15/15
  LC_ALL=C awk -v seed="$seed" 'BEGIN { srand(seed) } { v[NR] = $0 }
    END { for (i = NR; i > 1; i--) { j = int(rand() * i) + 1; t = v[i]; v[i] = v[j]; v[j] = t }
          nv = int(NR * 0.15 + 0.5); if (nv < 1) nv = 1; nt = nv
          for (i = 1; i <= NR; i++) print v[i], (i <= nt ? "test" : i <= nt + nv ? "validation" : "train") }'
}
echo "$variants" | split_voices > "$work/voices"

# ---------------------------------------------------------------- babble and music
# Babble: each file is 4-6 espeak-ng voices of the TRAINING split (never a validation or test
# voice) reading the sentences below at once, each from a different sentence; none of them
# holds a command word. The benchmark's babble uses another synthesizer and another text.
cat > "$work/noise/sentences.txt" <<'TEXT'
the weather was mild and the children walked slowly to the market where a man sold bread
my sister said the train would be late because of the snow in the mountains
we should paint the kitchen a warmer colour before the guests arrive for dinner
the library closes early at weekends so bring the books tomorrow morning
a small boat drifted across the lake while the fishermen talked about the harvest
he bought three apples, a loaf of bread and some cheese for the picnic
the teacher asked the class to write a short story about their summer holidays
coffee tastes better when the beans are fresh and the water is hot but not boiling
the museum has a new exhibition of old maps and paintings from the coast
she forgot her umbrella at the station and the rain soaked her coat
the garden was full of roses, tulips and a tall tree with purple flowers
they talked for hours about music, films and the price of houses in the city
the doctor said that a walk every evening would help him sleep at night
our neighbours have a friendly cat that visits the kitchen every afternoon
the bus was crowded with students carrying heavy bags and musical instruments
after lunch the family watched the clouds and waited for the sun to shine again
TEXT
awk '$2 == "train" { print $1 }' "$work/voices" |
  LC_ALL=C awk -v seed="$seed" -v accents="$accents" 'BEGIN { srand(seed + 7) } { v[NR] = $0 }
    END { na = split(accents, a, " ")
          for (b = 1; b <= 4; b++) { k = 4 + int(rand() * 3)
            for (i = 1; i <= k; i++)
              printf "babble%d %s %s %d %d %d\n", b, a[int(rand() * na) + 1], v[int(rand() * NR) + 1],
                     130 + int(rand() * 70), 25 + int(rand() * 55), int(rand() * 16) } }' \
  > "$work/noise/babble.txt"
[ -s "$work/noise/babble.txt" ] || { echo "make_voice.sh: no training voice for babble" >&2; exit 1; }
k=0
while read -r name accent variant rate pitch first; do
  k=$((k + 1))
  # the sentences from the first-th on, then from the top: about a minute of speech
  awk -v f="$first" 'NR > f { print } END { }' "$work/noise/sentences.txt" > "$work/scratch/text"
  head -n "$first" "$work/noise/sentences.txt" >> "$work/scratch/text"
  espeak-ng -v "$accent+$variant" -s "$rate" -p "$pitch" --stdout -f "$work/scratch/text" |
    sox -R -D -V1 -t wav - -r 16000 -c 1 -b 16 "$work/scratch/$name.$k.wav" norm -3 repeat 1 trim 0 30
done < "$work/noise/babble.txt"
for b in 1 2 3 4; do
  sox -R -D -V1 -m "$work/scratch"/babble$b.*.wav -b 16 "$work/noise/babble$b.wav" norm -6
done

# Music: four 30 s loops synthesised with sox, each a chord progression (one chord a bar), a
# melody on a pentatonic scale and drums (kick, snare, hi-hat), at its own tempo and timbre.
# Notes are semitones from A4 (sox's %N).
music() { # music NAME BPM INSTRUMENT ROOTS... (4 chord roots)
  local name=$1 bpm=$2 inst=$3 beat bar i r
  shift 3
  beat=$(awk -v b="$bpm" 'BEGIN { printf "%.4f", 60 / b }')
  bar=$(awk -v b="$beat" 'BEGIN { printf "%.4f", 4 * b }')
  local s="$work/scratch/$name" chords=() melody=()
  i=0
  for r in "$@"; do # a major or minor triad a bar, by the root's place in the progression
    local third=4
    [ $((i % 2)) = 1 ] && third=3
    sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$s.c$i.wav" synth "$bar" \
      "$inst" "%$((r - 12))" "$inst" "%$((r - 12 + third))" "$inst" "%$((r - 12 + 7))" \
      fade q 0.01 "$bar" 0.2 vol 0.5
    chords+=("$s.c$i.wav")
    local n
    for n in 0 1 2 3; do # a melody note a beat: the seeded pentatonic step of this bar
      local step
      step=$(awk -v s="$seed" -v i="$i" -v n="$n" -v r="$bpm" 'BEGIN { srand(s * 1000 + r * 10 + i * 4 + n)
        split("0 2 4 7 9 12", p, " "); print p[int(rand() * 6) + 1] }')
      sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$s.m$i$n.wav" synth "$beat" triangle "%$((r + step))" \
        fade q 0.01 "$beat" 0.05 vol 0.35
      melody+=("$s.m$i$n.wav")
    done
    i=$((i + 1))
  done
  sox -R -D -V1 "${chords[@]}" "$s.chords.wav"
  sox -R -D -V1 "${melody[@]}" "$s.melody.wav"
  sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$s.kick.wav" synth 0.15 sine 120:45 fade q 0 0.15 0.12 \
    pad 0 "$(awk -v b="$beat" 'BEGIN { print b - 0.15 }')"
  sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$s.snare.wav" synth 0.12 whitenoise highpass 1000 \
    fade q 0 0.12 0.1 vol 0.5 pad 0 "$(awk -v b="$beat" 'BEGIN { print b - 0.12 }')"
  sox -R -D -V1 -n -r 16000 -c 1 -b 16 "$s.hat.wav" synth 0.04 whitenoise highpass 6000 \
    fade q 0 0.04 0.03 vol 0.3 pad 0 "$(awk -v b="$beat" 'BEGIN { print b / 2 - 0.04 }')"
  sox -R -D -V1 "$s.kick.wav" "$s.snare.wav" "$s.kick.wav" "$s.snare.wav" "$s.drums.wav" repeat 3
  sox -R -D -V1 "$s.hat.wav" "$s.hats.wav" repeat 31
  sox -R -D -V1 -m "$s.chords.wav" "$s.melody.wav" "$s.drums.wav" "$s.hats.wav" -b 16 \
    "$s.loop.wav" reverb 30
  sox -R -D -V1 "$s.loop.wav" "$work/noise/$name.wav" repeat 30 trim 0 30 norm -6
}
music music1 90 pluck 3 10 0 8        # C G a F, plucked strings
music music2 110 square 5 0 2 7       # D A B E, chiptune
music music3 128 sawtooth 0 7 3 10    # A E C G, synth pad
music music4 140 sine 8 3 5 0         # F C D A, organ-like
for n in babble1 babble2 babble3 babble4 music1 music2 music3 music4; do
  sox "$work/noise/$n.wav" -n stats 2>&1 | awk -v n="$n" '/^RMS lev dB/ { print n, $4 }'
done >> "$work/noise/levels"

LC_ALL=C awk -v seed="$seed" -v per_class="$per_class" -v cmds="$COMMANDS" \
    -v accents="$accents" -v noises="$noise_types" -v babbles="babble1 babble2 babble3 babble4" \
    -v musics="music1 music2 music3 music4" \
    -v voices_file="$work/voices" -v words_file="$work/words" '
  function pick(a, n) { return a[int(rand() * n) + 1] }
  function uniform(lo, hi) { return lo + (hi - lo) * rand() }
  function background(u) { u = rand(); return u < 0.4 ? pick(babble, nb) : u < 0.7 ? pick(music, nm) : pick(noise, nn) }
  BEGIN {
    srand(seed)
    while ((getline line < voices_file) > 0) { split(line, f, " "); nv[f[2]]++; voice[f[2], nv[f[2]]] = f[1] }
    while ((getline line < words_file) > 0) words[++nw] = line
    na = split(accents, acc, " "); nn = split(noises, noise, " ")
    nb = split(babbles, babble, " "); nm = split(musics, music, " ")
    nc = split(cmds, cls, " "); cls[++nc] = "_unknown_"; cls[++nc] = "_silence_"
    # Clips per split: 70% train, 15% validation, 15% test (at least one each).
    nval = int(per_class * 0.15 + 0.5); if (nval < 1) nval = 1
    ntrain = per_class - 2 * nval
    for (c = 1; c <= nc; c++) {
      label = cls[c]
      for (i = 1; i <= per_class; i++) {
        split_name = i <= ntrain ? "train" : i <= ntrain + nval ? "validation" : "test"
        train = split_name == "train"
        id = sprintf("%s_%04d", label, i)
        if (label == "_silence_") {
          # a noise type, or "zero" (near digital silence), and its peak level in dBFS
          # (babble and music only in training: validation and test stay as before)
          u = rand()
          kind = u < 0.2 ? "zero" : !train || u < 0.5 ? pick(noise, nn) : u < 0.75 ? pick(babble, nb) : pick(music, nm)
          printf "%s\t%s\t%s\t-\t-\t-\t1\t-\t%s\t%.3f\t%.1f\t%.3f\t0\t0\t0\t0\n", \
            id, label, split_name, kind, uniform(0, 28), uniform(-70, -20), 0
          continue
        }
        word = label == "_unknown_" ? words[int(rand() * nw) + 1] : label
        v = voice[split_name, int(rand() * nv[split_name]) + 1]
        a = pick(acc, na)
        rate = int(uniform(120, 220)); pitch = int(uniform(20, 80)); amp = int(uniform(60, 180))
        speed = train ? uniform(0.88, 1.12) : 1
        if (train && rand() < 0.85) { kind = background(); snr = uniform(0, 30); noff = uniform(0, 28) }
        else { kind = "-"; snr = 0; noff = 0 }
        peak = train ? uniform(-25, -1) : uniform(-12, -1)
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%.4f\t%.1f\t%s\t%.3f\t%.1f\t%.4f\t%d\t%d\t%d\t%s\n", \
          id, label, split_name, v, a, word, speed, snr, kind, noff, peak, rand(), rate, pitch, amp, "x"
      }
    }
  }' > "$work/plan"
# plan columns: 1 id, 2 label, 3 split, 4 voice, 5 accent, 6 word, 7 speed, 8 snr_db, 9 noise,
# 10 noise offset s, 11 peak dBFS, 12 shift (0..1 of the free room), 13 rate, 14 pitch, 15 amp

# ---------------------------------------------------------------- the workers
make_clip() { # one plan line -> one WAV and its manifest line
  local id label split v a word speed snr kind noff peak shift rate pitch amp _x
  IFS=$'\t' read -r id label split v a word speed snr kind noff peak shift rate pitch amp _x <<<"$1"
  local dir="$work/$split/$label" tmp="$work/scratch/$id.wav" dst
  dst="$dir/$id.wav"
  mkdir -p "$dir"
  if [ "$label" = "_silence_" ]; then
    if [ "$kind" = zero ]; then # near digital silence: faint white noise, 25 dB lower still
      sox -R -D -V1 "$work/noise/white.wav" -b 16 "$dst" trim "$noff" 1 \
        norm "$(awk -v p="$peak" 'BEGIN { print p - 25 }')"
    else
      sox -R -D -V1 "$work/noise/$kind.wav" -b 16 "$dst" trim "$noff" 1 norm "$peak"
    fi
    printf '%s,%s,-,%s,-,-,1,-,%s\n' "$split/$label/$id.wav" "$label" "$split" "$kind"
    return
  fi
  # Speak, perturb the speed by resampling, go to 16 kHz, trim the silence at both ends.
  espeak-ng -v "$a+$v" -s "$rate" -p "$pitch" -a "$amp" --stdout "$word" |
    sox -R -D -V1 -t wav - -r 16000 -c 1 -b 16 "$tmp" speed "$speed" \
      silence 1 0.005 0.3% reverse silence 1 0.005 0.3% reverse
  local len rms
  read -r len rms < <(sox "$tmp" -n stats 2>&1 |
                      awk '/^Length s/ { l = $3 } /^RMS lev dB/ { r = $4 } END { print l + 0, r + 0 }')
  # Where the word starts: a random share of the room left in the 1 s window (a word longer
  # than 1 s is cut at 1 s).
  local start
  start=$(awk -v l="$len" -v u="$shift" 'BEGIN { r = 1 - l; if (r < 0) r = 0; printf "%.4f", r * u }')
  if [ "$kind" = "-" ]; then
    sox -R -D -V1 "$tmp" -b 16 "$dst" pad "$start" 1 trim 0 1 norm "$peak"
  else
    local level gain
    level=$(awk -v n="$kind" '$1 == n { print $2 }' "$work/noise/levels")
    gain=$(awk -v s="$rms" -v snr="$snr" -v l="$level" 'BEGIN { printf "%.2f", s - snr - l }')
    sox -R -D -V1 -m -v 1 "|sox -R -D -V1 $tmp -p pad $start 1 trim 0 1" \
      -v 1 "|sox -R -D -V1 $work/noise/$kind.wav -p trim $noff 1 gain $gain" \
      -b 16 "$dst" norm "$peak"
  fi
  rm -f "$tmp"
  printf '%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$split/$label/$id.wav" "$label" "$v" "$split" "$a" \
    "$word" "$speed" "$snr" "$kind"
}

total=$(wc -l < "$work/plan")
echo "make_voice.sh: $total clips, $(wc -l < "$work/voices") voices x$(echo "$accents" | wc -w) accents, $jobs workers, seed $seed" >&2
pids=()
for ((k = 0; k < jobs; k++)); do
  awk -v k="$k" -v j="$jobs" '(NR - 1) % j == k' "$work/plan" |
    while IFS= read -r line; do make_clip "$line"; done > "$work/manifest.$k" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
{
  echo "path,label,voice,split,accent,word,speed,snr_db,noise"
  LC_ALL=C sort "$work"/manifest.[0-9]*
} > "$work/manifest.csv"
made=$(($(wc -l < "$work/manifest.csv") - 1))
[ "$made" -eq "$total" ] || { echo "make_voice.sh: made $made of $total clips" >&2; exit 1; }
cp "$work/voices" "$work/voices.txt"
rm -rf "$work/scratch" "$work/plan" "$work"/manifest.[0-9]* "$work/words.all" "$work/voices"

# Put it in place: the old set goes only once the new one is complete.
rm -rf "$out.old"
[ -e "$out" ] && mv "$out" "$out.old"
mv "$work" "$out"
rm -rf "$out.old"
trap - EXIT
echo "make_voice.sh: $made clips in $out (manifest.csv; voices.txt lists each voice's split)" >&2
awk -F, 'NR > 1 { n[$4]++ } END { for (s in n) printf "  %s: %d clips\n", s, n[s] }' "$out/manifest.csv" | sort >&2
