#!/usr/bin/env bash
# word2vec.sh - amuse word2vec against gensim's Word2Vec on the same corpus, the same settings
# (skip-gram, negative 5, window 5, size 100, sample 1e-3, min_count 5, 2 threads) and epochs,
# in one invocation. Writes bench/results/word2vec.json; the last line is a summary.
#
#   bench/word2vec.sh            5 epochs (the standard), about 10 minutes on 2 cores
#   bench/word2vec.sh --quick    1 epoch, under 3 minutes
#   bench/word2vec.sh --subwords [--quick]
#                                fastText's model instead: amuse word2vec -subwords 1 -minn 3
#                                -maxn 6 -bucket 2000000 against gensim's FastText (min_n 3,
#                                max_n 6, bucket 2000000), both saved as fastText .bin files;
#                                writes bench/results/word2vec-subwords[-quick].json. --quick:
#                                1 epoch, under 5 minutes
#
# words/s is corpus words x epochs over wall-clock seconds including vocabulary building (amuse:
# the whole process, reading and writing included; gensim: Word2Vec(...) itself, without the
# Python import and the save). RSS is /usr/bin/time's peak. Quality is measured for both files by
# both evaluators: amuse's and gensim's (restrict_vocab 30000 for analogies). It does not tune
# either side or pin threads to cores; the machines are shared, so compare the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

epochs=5
subwords=0
for arg in "$@"; do
  case "$arg" in
    --quick) epochs=1 ;;
    --subwords) subwords=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "word2vec.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
result=bench/results/word2vec.json
sub_flags=()
gensim_train=train
if [ $subwords -eq 1 ]; then
  result=bench/results/word2vec-subwords$([ $epochs -eq 1 ] && echo -quick).json
  sub_flags=(-subwords 1 -minn 3 -maxn 6 -bucket 2000000)
  gensim_train=train-fasttext
fi
threads=2
questions=${QUESTIONS:-../shared/data/questions-words.txt}
pairs=${PAIRS:-../shared/data/wordsim353.tsv}
[ -f "$questions" ] || questions=/work/shared/data/questions-words.txt
[ -f "$pairs" ] || pairs=/work/shared/data/wordsim353.tsv

need=()
command -v /usr/bin/time >/dev/null || need+=(time)
/usr/bin/python3 -c 'import gensim' 2>/dev/null || need+=(python3-gensim)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
corpus=data/corpus/english.txt
[ -f "$corpus" ] || data/make_corpus.sh data/corpus
if [ ! -x build/amuse ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j2 >/dev/null
fi
amuse=build/amuse
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

field() { grep -F "$1" "$2" | head -1 | sed 's/.*: //'; }
wall_seconds() { # "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.03" -> seconds
  field "Elapsed (wall clock)" "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'
}

echo "== amuse word2vec ($epochs epochs, $threads threads)" >&2
cmd=("$amuse" word2vec -train "$corpus" -output "$tmp/amuse.bin" -cbow 0 -size 100 -window 5
     -sample 1e-3 -negative 5 -hs 0 -min-count 5 -threads $threads -iter $epochs -binary 1 -debug 1
     "${sub_flags[@]}")
echo "${cmd[*]}" >&2
/usr/bin/time -v -o "$tmp/amuse.time" "${cmd[@]}" 2> "$tmp/amuse.log"
cat "$tmp/amuse.log" >&2
words=$(field "Words in train file" "$tmp/amuse.log")
amuse_s=$(wall_seconds "$tmp/amuse.time")
amuse_rss=$(field "Maximum resident set size" "$tmp/amuse.time")
amuse_cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$tmp/amuse.time")

echo "== gensim $([ $subwords -eq 1 ] && echo FastText || echo Word2Vec)(corpus_file=..., sg=1, workers=$threads, epochs=$epochs)" >&2
/usr/bin/time -v -o "$tmp/gensim.time" /usr/bin/python3 bench/word2vec_gensim.py $gensim_train "$corpus" \
  "$tmp/gensim.bin" $epochs $threads > "$tmp/gensim.log"
cat "$tmp/gensim.log" >&2
gensim_s=$(awk '/^seconds/ { print $2 }' "$tmp/gensim.log")
gensim_words=$(awk '/^words/ { print $2 }' "$tmp/gensim.log")
gensim_rss=$(field "Maximum resident set size" "$tmp/gensim.time")
gensim_cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$tmp/gensim.time")

echo "== quality" >&2
for who in amuse gensim; do
  "$amuse" words eval-analogies "$tmp/$who.bin" "$questions" > "$tmp/$who.analogies"
  "$amuse" words eval-pairs "$tmp/$who.bin" "$pairs" > "$tmp/$who.pairs"
  /usr/bin/python3 bench/word2vec_gensim.py eval "$tmp/$who.bin" "$questions" "$pairs" > "$tmp/$who.gensim_eval"
  "$amuse" words similar "$tmp/$who.bin" king -k 10 > "$tmp/$who.king"
  echo "$who: $(grep total "$tmp/$who.analogies"); $(head -1 "$tmp/$who.pairs"); gensim's evaluators: $(cat "$tmp/$who.gensim_eval")" >&2
  echo "$who: similar king: $(cut -f1 "$tmp/$who.king" | tr '\n' ' ')" >&2
done

/usr/bin/python3 - "$tmp" "$words" "$gensim_words" "$epochs" "$threads" "$amuse_s" "$gensim_s" \
  "$amuse_rss" "$gensim_rss" "$(nproc)" "$($amuse --version)" "$result" "$subwords" \
  "$(cut -d' ' -f1 /proc/loadavg)" "$amuse_cpu" "$gensim_cpu" <<'PY'
import json, re, sys
(tmp, words, gwords, epochs, threads, amuse_s, gensim_s, amuse_rss, gensim_rss, cpus, version,
 result, subwords, load, amuse_cpu, gensim_cpu) = sys.argv[1:]
words, gwords, epochs = int(words), int(gwords), int(epochs)
def num(path, label):
    m = re.search(label + r"\s*(-?[0-9.]+)", open(path).read())
    return float(m.group(1))
def king(who):
    return "queen" in [l.split("\t")[0] for l in open("%s/%s.king" % (tmp, who))]
res = {"epochs": epochs, "threads": int(threads), "cpus": int(cpus), "corpus_words": words,
       "gensim_corpus_words": gwords, "amuse_version": version, "load_average_at_end": float(load)}
if subwords == "1":
    res["model"] = "fastText skip-gram, minn 3, maxn 6, bucket 2000000 (gensim FastText)"
    res["note"] = ("amuse's time is the whole process, writing the 840 MB .bin and the .vec "
                   "included; gensim's is FastText(...) alone. The machine is shared with other "
                   "jobs: compare the ratio, and rerun on a quiet machine for absolute figures.")
res["amuse_seconds"] = float(amuse_s)
res["gensim_seconds"] = float(gensim_s)
res["amuse_words_s"] = round(words * epochs / float(amuse_s))
res["gensim_words_s"] = round(words * epochs / float(gensim_s))
res["ratio"] = round(res["amuse_words_s"] / res["gensim_words_s"], 2)
# CPU seconds (user + system) of each whole process, import and save included: steadier than
# wall time when other jobs share the machine.
res["amuse_cpu_seconds"] = round(float(amuse_cpu), 2)
res["gensim_cpu_seconds"] = round(float(gensim_cpu), 2)
res["cpu_ratio"] = round(float(gensim_cpu) / float(amuse_cpu), 2)
res["amuse_rss_mb"] = round(int(amuse_rss) / 1024, 1)
res["gensim_rss_mb"] = round(int(gensim_rss) / 1024, 1)
for who in ("amuse", "gensim"):
    res[who + "_analogy_total"] = round(num("%s/%s.analogies" % (tmp, who), r"total accuracy:") / 100, 4)
    res[who + "_analogy_seen"] = int(num("%s/%s.analogies" % (tmp, who), r"questions seen:"))
    res[who + "_ws353_spearman"] = round(num("%s/%s.pairs" % (tmp, who), r"spearman:"), 4)
    g = json.loads(open("%s/%s.gensim_eval" % (tmp, who)).read())
    res[who + "_analogy_total_by_gensim"] = round(g["analogy"], 4)
    res[who + "_ws353_spearman_by_gensim"] = round(g["spearman"], 4)
    res[who + "_king_queen_top10"] = king(who)
res["analogy_gap_points"] = round(100 * (res["amuse_analogy_total"] - res["gensim_analogy_total"]), 2)
res["ws353_gap_points"] = round(100 * (res["amuse_ws353_spearman"] - res["gensim_ws353_spearman"]), 2)
json.dump(res, open(result, "w"), indent=2)
open(result, "a").write("\n")
print("%s (%d epoch%s, %s threads): amuse %.0f words/s, gensim %.0f words/s, ratio %.2f; "
      "CPU-seconds ratio %.2f; RSS %.0f vs %.0f MB; analogy %.2f%% vs %.2f%%; WS-353 %.3f vs %.3f"
      % ("word2vec -subwords" if subwords == "1" else "word2vec", epochs,
         "s" if epochs > 1 else "", threads, res["amuse_words_s"], res["gensim_words_s"],
         res["ratio"], res["cpu_ratio"], res["amuse_rss_mb"], res["gensim_rss_mb"], 100 * res["amuse_analogy_total"],
         100 * res["gensim_analogy_total"], res["amuse_ws353_spearman"], res["gensim_ws353_spearman"]))
PY
