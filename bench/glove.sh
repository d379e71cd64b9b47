#!/usr/bin/env bash
# glove.sh - amuse glove against the reference GloVe tool (vocab_count, cooccur, shuffle, glove,
# built from its source into a temporary folder) on the same corpus with the same settings
# (min_count 5, window 10, 100 dimensions, x_max 100, eta 0.05, 2 threads, -memory 2, seed 1),
# in one invocation. Writes bench/results/glove.json (glove-quick.json with --quick); the last
# line is a summary.
#
#   bench/glove.sh                 15 iterations, about 7 minutes on 2 cores
#   bench/glove.sh --quick         1 iteration, about 1 minute (quality is meaningless after one)
#   bench/glove.sh --peers DIR     the reference source (default ../shared/peers/glove)
#
# Times are wall-clock seconds from /usr/bin/time for each reference program, summed for the
# pipeline (also user + system CPU seconds, which a loaded machine disturbs less: cpu_ratio); amuse runs its one-command pipeline (`amuse glove -train`, the co-occurrences kept in
# memory instead of the reference's files) and reports each stage's seconds itself. Both write
# text vectors (W + W~). RSS is the peak of the process (for the reference: the largest of its
# four). Quality: WS-353 Spearman and analogy accuracy (top 30000 words) from amuse's evaluators
# on both files (the reference's "<unk>" row removed). The machines are shared; compare ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

iter=15
out=bench/results/glove.json
peers=../shared/peers/glove
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) iter=1; out=bench/results/glove-quick.json ;;
    --peers) peers=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "glove.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
threads=2
memory=2
questions=${QUESTIONS:-../shared/data/questions-words.txt}
pairs=${PAIRS:-../shared/data/wordsim353.tsv}
[ -f "$questions" ] || questions=/work/shared/data/questions-words.txt
[ -f "$pairs" ] || pairs=/work/shared/data/wordsim353.tsv
[ -d "$peers/src" ] || { echo "glove.sh: no GloVe source at $peers (use --peers DIR)" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "glove.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

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

echo "== building the reference tool from $peers" >&2
make -C "$peers" BUILDDIR="$tmp/ref" >/dev/null
ref=$tmp/ref

echo "== reference GloVe ($iter iterations, $threads threads, -memory $memory)" >&2
run_ref() { # name, stdin, stdout, command...
  local name=$1 in=$2 o=$3; shift 3
  /usr/bin/time -v -o "$tmp/ref_$name.time" "$@" < "$in" > "$o" 2> "$tmp/ref_$name.log" ||
    { cat "$tmp/ref_$name.log" >&2; exit 1; }
  echo "reference $name: $(wall_seconds "$tmp/ref_$name.time") s" >&2
}
run_ref vocab "$corpus" "$tmp/vocab.txt" "$ref/vocab_count" -min-count 5 -verbose 0
run_ref cooccur "$corpus" "$tmp/cooc.bin" "$ref/cooccur" -vocab-file "$tmp/vocab.txt" \
  -window-size 10 -memory $memory -overflow-file "$tmp/overflow" -verbose 0
run_ref shuffle "$tmp/cooc.bin" "$tmp/cooc.shuf.bin" "$ref/shuffle" -memory $memory -seed 1 \
  -temp-file "$tmp/shuffle" -verbose 0
rm -f "$tmp/cooc.bin"
run_ref train /dev/null /dev/null "$ref/glove" -input-file "$tmp/cooc.shuf.bin" \
  -vocab-file "$tmp/vocab.txt" -save-file "$tmp/ref_vectors" -vector-size 100 -threads $threads \
  -iter $iter -x-max 100 -eta 0.05 -binary 0 -model 2 -write-header 1 -seed 1 -verbose 0
rm -f "$tmp/cooc.shuf.bin"
grep -v '^<unk> ' "$tmp/ref_vectors.txt" > "$tmp/reference.txt"

echo "== amuse glove ($iter iterations, $threads threads, -memory $memory)" >&2
cmd=("$amuse" glove -train "$corpus" -output "$tmp/amuse.txt" -min-count 5 -window-size 10
     -memory $memory -vector-size 100 -threads $threads -iter $iter -x-max 100 -eta 0.05
     -model 2 -seed 1 -verbose 1)
echo "${cmd[*]}" >&2
/usr/bin/time -v -o "$tmp/amuse.time" "${cmd[@]}" 2> "$tmp/amuse.log"
cat "$tmp/amuse.log" >&2

echo "== quality" >&2
for who in amuse reference; do
  "$amuse" words eval-analogies "$tmp/$who.txt" "$questions" > "$tmp/$who.analogies"
  "$amuse" words eval-pairs "$tmp/$who.txt" "$pairs" > "$tmp/$who.pairs"
  "$amuse" words similar "$tmp/$who.txt" king -k 10 > "$tmp/$who.king"
  echo "$who: $(grep total "$tmp/$who.analogies"); $(head -1 "$tmp/$who.pairs")" >&2
  echo "$who: similar king: $(cut -f1 "$tmp/$who.king" | tr '\n' ' ')" >&2
done

/usr/bin/python3 - "$tmp" "$out" "$iter" "$threads" "$memory" "$(nproc)" "$($amuse --version)" \
  "$(cat /proc/loadavg)" <<'PY'
import json, re, sys
tmp, out, iters, threads, memory, cpus, version, load = sys.argv[1:]
def text(p): return open(tmp + "/" + p).read()
def num(p, label):
    return float(re.search(label + r"\s*(-?[0-9.]+)", text(p)).group(1))
def wall(p):
    s = re.search(r"Elapsed \(wall clock\).*: (\S+)", text(p)).group(1)
    t = 0.0
    for part in s.split(":"): t = t * 60 + float(part)
    return t
def rss_mb(p): return round(num(p, r"Maximum resident set size \(kbytes\):") / 1024, 1)
stages = ["vocab", "cooccur", "shuffle", "train"]
res = {"iterations": int(iters), "threads": int(threads), "memory_gb": float(memory),
       "cpus": int(cpus), "amuse_version": version, "loadavg_before_report": load,
       "note": "shared 2-core machine, other helpers running; compare ratios"}
ref = {s: wall("ref_%s.time" % s) for s in stages}
am = {s: num("amuse.log", "stage %s:" % s) for s in stages}
res["reference_stage_seconds"] = ref
res["amuse_stage_seconds"] = am
res["reference_seconds"] = round(sum(ref.values()), 2)
res["amuse_seconds"] = wall("amuse.time")
res["ratio"] = round(res["reference_seconds"] / res["amuse_seconds"], 2)
def cpu(p): return num(p, r"User time \(seconds\):") + num(p, r"System time \(seconds\):")
res["reference_cpu_seconds"] = round(sum(cpu("ref_%s.time" % s) for s in stages), 2)
res["amuse_cpu_seconds"] = round(cpu("amuse.time"), 2)
res["cpu_ratio"] = round(res["reference_cpu_seconds"] / res["amuse_cpu_seconds"], 2)
res["stage_ratio"] = {s: round(ref[s] / am[s], 2) if am[s] > 0 else None for s in stages}
res["reference_rss_mb"] = max(rss_mb("ref_%s.time" % s) for s in stages)
res["reference_stage_rss_mb"] = {s: rss_mb("ref_%s.time" % s) for s in stages}
res["amuse_rss_mb"] = rss_mb("amuse.time")
m = re.search(r"(\d+) co-occurrence records", text("amuse.log"))
res["records"] = int(m.group(1)) if m else None
for who in ("amuse", "reference"):
    res["ws353_" + who] = round(num(who + ".pairs", r"spearman:"), 4)
    res["analogy_" + who] = round(num(who + ".analogies", r"total accuracy:") / 100, 4)
    res["king_top10_" + who] = [l.split("\t")[0] for l in open(tmp + "/" + who + ".king")]
res["ws353_gap_points"] = round(100 * (res["ws353_amuse"] - res["ws353_reference"]), 2)
res["analogy_gap_points"] = round(100 * (res["analogy_amuse"] - res["analogy_reference"]), 2)
json.dump(res, open(out, "w"), indent=2)
open(out, "a").write("\n")
print("glove (%s iteration%s, %s threads): amuse %.1f s, reference %.1f s, ratio %.2f; RSS %.0f vs "
      "%.0f MB; WS-353 %.3f vs %.3f; analogy %.2f%% vs %.2f%%"
      % (iters, "s" if int(iters) > 1 else "", threads, res["amuse_seconds"],
         res["reference_seconds"], res["ratio"], res["amuse_rss_mb"], res["reference_rss_mb"],
         res["ws353_amuse"], res["ws353_reference"], 100 * res["analogy_amuse"],
         100 * res["analogy_reference"]))
PY
