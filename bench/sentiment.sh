#!/usr/bin/env bash
# sentiment.sh - the amuse sentiment model against VADER (npm vader-sentiment 1.1.3, the lexicon
# peer) on the held-out test parts of the three human-rated review sets, in one invocation.
#
# The split is `amuse sentiment split` (seed 1): the model was trained on the train parts and
# its neutral band placed on the validation parts; the test parts were never read. VADER's label
# is its compound score with the usual thresholds +-0.05. Both sides' figures come from the same
# code (`amuse sentiment eval`; VADER's scores through --scores): 3-class macro-F1, binary accuracy
# on non-neutral snippets, Pearson r with the human ratings, and scoring time per 1,000 snippets
# (each side's scoring loop only, one thread; speed_ratio = VADER's time / amuse's). The row
# "unseen" is the same recipe trained on the other two files only: the model on a domain it never
# saw (sentiment_unseen_* in the JSON). Writes bench/results/sentiment.json
# (sentiment-quick.json with --quick). It does not tune either side.
#
#   bench/sentiment.sh --quick      the first 300 test snippets of each set (< 1 min)
#   bench/sentiment.sh              all test snippets
#   options: --amuse PATH (build/amuse; built if missing)
#            --model DIR (models/default/sentiment-en/1)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 amuse=build/amuse model=models/default/sentiment-en/1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --amuse) amuse="$2"; shift ;;
    --model) model="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "sentiment.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
command -v node >/dev/null || { echo "sentiment.sh: node not found (apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -x "$amuse" ]; then
  echo "sentiment.sh: $amuse missing; building it (Release)" >&2
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAMUSE_BUILD_TESTS=OFF >/dev/null
  cmake --build build -j"$(nproc)" --target amuse_cli >/dev/null
  amuse=build/amuse
fi
if [ ! -d bench/node_modules/vader-sentiment ]; then
  echo "sentiment.sh: installing vader-sentiment@1.1.3 into bench/node_modules" >&2
  (cd bench && npm install --no-save --no-audit --no-fund --prefix . vader-sentiment@1.1.3 >/dev/null)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/amuse-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results "$work/split"
"$amuse" sentiment split --data data/reviews --output "$work/split" >/dev/null

declare -A short=([movieReviewSnippets_GroundTruth]=movie [tweets_GroundTruth]=tweets
                  [nytEditorialSnippets_GroundTruth]=editorials)
json="{"
mode=full
[ $quick = 1 ] && mode=quick
json+="\"benchmark\": \"sentiment\", \"mode\": \"$mode\", \"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\","
json+=" \"model\": \"$model\", \"peer\": \"vader-sentiment $(node -p "require('./bench/node_modules/vader-sentiment/package.json').version")\","
json+=" \"host\": \"$(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) (shared with other jobs: times are noisy)\""
printf '%-11s %-7s %8s %8s %8s %10s\n' set model macroF1 binary r "ms/1000"
for name in movieReviewSnippets_GroundTruth tweets_GroundTruth nytEditorialSnippets_GroundTruth; do
  s=${short[$name]}
  test="$work/split/$name.test.tsv"
  if [ $quick = 1 ]; then head -n 300 "$test" > "$work/$s.tsv"; else cp "$test" "$work/$s.tsv"; fi
  "$amuse" sentiment eval "$model" "$work/$s.tsv" --json > "$work/$s.amuse.json"
  node bench/vader_score.js "$work/$s.tsv" "$work/$s.vader.txt" > "$work/$s.vader-time.json"
  "$amuse" sentiment eval - "$work/$s.tsv" --scores "$work/$s.vader.txt" --neutral 0.05 --json \
    > "$work/$s.vader.json"
  fig() { node -p "const j=require('$1'); j.$2" ; }
  for side in amuse vader; do
    f="$work/$s.$side.json"
    ms=$([ $side = amuse ] && fig "$f" ms_per_1000 || fig "$work/$s.vader-time.json" ms_per_1000)
    key=$([ $side = amuse ] && echo sentiment || echo vader)
    f1=$(fig "$f" macro_f1) acc=$(fig "$f" binary_accuracy) r=$(fig "$f" pearson)
    printf '%-11s %-7s %8.4f %8.4f %8.4f %10.2f\n' "$s" "$side" "$f1" "$acc" "$r" "$ms"
    json+=", \"${key}_macro_f1_$s\": $f1, \"${key}_binary_acc_$s\": $acc, \"${key}_pearson_$s\": $r"
    json+=", \"${key}_ms_per_1000_$s\": $ms"
  done
  # The same recipe trained without this file: how the model does on a domain it never saw.
  others=()
  for o in movieReviewSnippets_GroundTruth tweets_GroundTruth nytEditorialSnippets_GroundTruth; do
    [ "$o" = "$name" ] || others+=("data/reviews/$o.tsv")
  done
  "$amuse" sentiment train --data "${others[@]}" --output "$work/unseen-$s" \
    --vectors models/default/words-en/1/vectors.bin --lexicon data/lexicon/vader_lexicon.tsv \
    >/dev/null 2>&1
  "$amuse" sentiment eval "$work/unseen-$s" "$work/$s.tsv" --json > "$work/$s.unseen.json"
  f="$work/$s.unseen.json"
  f1=$(fig "$f" macro_f1) acc=$(fig "$f" binary_accuracy) r=$(fig "$f" pearson)
  printf '%-11s %-7s %8.4f %8.4f %8.4f %10s\n' "$s" "unseen" "$f1" "$acc" "$r" "-"
  json+=", \"sentiment_unseen_macro_f1_$s\": $f1, \"sentiment_unseen_binary_acc_$s\": $acc"
  json+=", \"sentiment_unseen_pearson_$s\": $r"
  json+=", \"speed_ratio_$s\": $(node -p "(require('$work/$s.vader-time.json').ms_per_1000 / require('$work/$s.amuse.json').ms_per_1000).toFixed(1)")"
  json+=", \"snippets_$s\": $(fig "$work/$s.amuse.json" snippets)"
  json+=", \"confusion_$s\": $(node -p "JSON.stringify(require('$work/$s.amuse.json').confusion)")"
  json+=", \"vader_confusion_$s\": $(node -p "JSON.stringify(require('$work/$s.vader.json').confusion)")"
done
json+="}"
if [ $quick = 1 ]; then out=bench/results/sentiment-quick.json; else out=bench/results/sentiment.json; fi
node -e "process.stdout.write(JSON.stringify(JSON.parse(process.argv[1]), null, 1) + '\n')" "$json" > "$out"
echo "wrote $out"
