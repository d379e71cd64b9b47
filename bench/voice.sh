#!/usr/bin/env bash
# voice.sh - voice commands: amuse's DNN and DS-CNN against PocketSphinx on the held-out
# (test-split) voices of data/make_voice.sh's set, in one invocation, same clips, one thread:
#   - amuse: accuracy over all classes and the confusion matrix (amuse eval --json);
#   - PocketSphinx (Debian pocketsphinx + pocketsphinx-en-us, pocketsphinx_batch): a JSGF grammar
#     of exactly the 16 command words (forced choice) and keyword spotting (can reject), on the
#     command clips; unknown-word rejection for both;
#   - the same at 20, 10 and 0 dB SNR with speech babble (5 espeak-ng voices reading text), a
#     noise the training never used (it used white, pink, brown noise and mains hum);
#   - CPU ms per 1 s clip (process user+sys time over the clips, 1 thread: decoding, features
#     and inference for amuse; everything pocketsphinx_batch does for PocketSphinx);
#   - DNN training throughput against PyTorch (same layers, batch 64, Adam, 1 thread, CPU time
#     of 4 epochs of 3276 samples; amuse's is the CPU time of a 5-epoch run minus a 1-epoch run;
#     PyTorch on random features of the same shape: throughput does not depend on the values).
# Writes bench/results/voice.json (--quick: voice-quick.json, a quarter of the test clips).
# Keyword-spotting thresholds are not tuned on the validation voices (one /1e-20/ for every
# word): a gap, reported in docs/BENCHMARKS.md. The machine may be shared: the JSON says so.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; echo "usage: bench/voice.sh [--quick] [--data DIR] [--every N]   (every Nth test clip)"; echo "AMUSE_VOICE_DNN / AMUSE_VOICE_DSCNN: other model directories"; }
quick=0
every_opt=
data=data/voice
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --data) data=${2:?}; shift ;;
    --every) every_opt=${2:?}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "voice.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=bench/results/voice.json; every=1
[ $quick = 1 ] && { out=bench/results/voice-quick.json; every=4; }
[ -n "$every_opt" ] && { out=${out%.json}-every$every_opt.json; every=$every_opt; }
PY=/usr/bin/python3
T=bench/voice_tools.py
AMUSE=build/amuse
DNN=${AMUSE_VOICE_DNN:-models/default/voice-dnn/1}
DSCNN=${AMUSE_VOICE_DSCNN:-models/default/voice-dscnn/1}
[ -x $AMUSE ] || { cmake -S . -B build >/dev/null && cmake --build build -j2 >/dev/null; }
command -v pocketsphinx_batch >/dev/null ||
  { apt-get install -y --no-install-recommends pocketsphinx pocketsphinx-en-us >&2; }
[ -s "$data/manifest.csv" ] || data/make_voice.sh --out "$data"
HMM=/usr/share/pocketsphinx/model/en-us/en-us
DICT=/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cpu() { # cpu COMMAND...: run it (output in $tmp/cpu.out), user+sys seconds in $cpu_s
  TIMEFORMAT='%U %S'
  { time "$@" >"$tmp/cpu.out" 2>"$tmp/cpu.err"; } 2>"$tmp/time"
  cpu_s=$(awk '{print $1 + $2}' "$tmp/time")
}

n_test=$($PY $T select "$data/manifest.csv" test $every "$tmp/test.csv")
echo "voice.sh: $n_test test clips (every $every), data $data" >&2

# Clean and noisy sets: manifest + %05d.wav names for pocketsphinx's control file.
mkdir -p "$tmp/clean"
i=0
tail -n +2 "$tmp/test.csv" | while IFS=, read -r path _; do
  ln -s "$path" "$tmp/clean/$(printf '%05d' $i).wav"; i=$((i + 1))
done
cp "$tmp/test.csv" "$tmp/clean/manifest.csv"
$PY $T noise "$tmp/babble.wav" 120 1
for snr in 20 10 0; do $PY $T mix "$tmp/test.csv" "$tmp/babble.wav" $snr $snr "$tmp/snr$snr"; done

words="yes no up down left right on off stop go jump fire play pause next back"
{ echo "#JSGF V1.0;"; echo "grammar commands;"; echo "public <command> = $(echo $words | sed 's/ / | /g');"; } >"$tmp/commands.gram"
for w in $words; do echo "$w /1e-20/"; done >"$tmp/keywords.list"
seq -f '%05g' 0 $((n_test - 1)) >"$tmp/list.ctl"

sphinx() { # sphinx SET MODE: score JSON in $tmp/result, CPU seconds in $cpu_s
  local mode_args
  if [ "$2" = grammar ]; then mode_args=(-jsgf "$tmp/commands.gram"); else mode_args=(-kws "$tmp/keywords.list"); fi
  cpu pocketsphinx_batch -hmm $HMM -dict $DICT "${mode_args[@]}" -ctl "$tmp/list.ctl" \
    -cepdir "$tmp/$1" -cepext .wav -adcin yes -adchdr 44 -hyp "$tmp/$1.$2.hyp" -logfn /dev/null
  $PY $T sphinx-score "$tmp/test.csv" "$tmp/$1.$2.hyp" "$2" >"$tmp/result"
}
amuse_eval() { # amuse_eval MODEL SET: eval JSON in $tmp/result, CPU seconds in $cpu_s
  cpu $AMUSE eval "$1" --data "$tmp/$2/manifest.csv" --json -t 1
  cp "$tmp/cpu.out" "$tmp/result"
}

declare -A R
for set in clean snr20 snr10 snr0; do
  amuse_eval $DNN $set; R[dnn_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_dnn]=$cpu_s
  amuse_eval $DSCNN $set; R[dscnn_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_dscnn]=$cpu_s
  sphinx $set grammar; R[grammar_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_grammar]=$cpu_s
  sphinx $set kws; R[kws_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_kws]=$cpu_s
  echo "voice.sh: $set done" >&2
done

# Training throughput: amuse (1 epoch vs 5 epochs: the difference is 4 epochs of training,
# without loading the clips), PyTorch 4 epochs of as many samples.
n_train=4096
cpu $AMUSE train models/voice-dnn.json -e 1 -t 1 -q --no-eval --train-limit $n_train -o "$tmp/t1"; c1=$cpu_s
cpu $AMUSE train models/voice-dnn.json -e 5 -t 1 -q --no-eval --train-limit $n_train -o "$tmp/t3"; c3=$cpu_s
torch_json=$($PY $T torch-train $(awk -v n=$n_train 'BEGIN { print int(n * 0.8) }') 4 18)

for k in "${!R[@]}"; do printf '%s\t%s\n' "$k" "${R[$k]}"; done >"$tmp/results.tsv"
$PY - "$tmp/results.tsv" "$n_test" "$c1" "$c3" "$n_train" "$torch_json" "$out" "$quick" <<'PY'
import json, sys, os
tsv, n_test, c1, c3, n_train, torch_json, out, quick = sys.argv[1:]
R = {}
for line in open(tsv):
    k, v = line.rstrip("\n").split("\t", 1)
    R[k] = json.loads(v) if v.startswith("{") else float(v)
labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off",
          "stop", "go", "jump", "fire", "play", "pause", "next", "back"]
def commands_acc(e):
    c = e["confusion"]; ok = sum(c[i][i] for i in range(2, 18)); n = sum(sum(c[i]) for i in range(2, 18))
    return ok / n
def reject_unknown(e):
    row = e["confusion"][1]; return (row[0] + row[1]) / max(1, sum(row))
n = int(n_test)
amuse_train_sps = 4 * int(float(n_train) * 0.8) / (float(c3) - float(c1))
torch = json.loads(torch_json)
res = {
    "quick": quick == "1", "test_clips": n,
    "acc_dnn": R["dnn_clean"]["accuracy"], "acc_dscnn": R["dscnn_clean"]["accuracy"],
    "acc_pocketsphinx": R["grammar_clean"]["accuracy"],
    "acc_pocketsphinx_kws": R["kws_clean"]["accuracy"],
    "acc_commands_amuse": commands_acc(R["dscnn_clean"]),
    "acc_commands_dnn": commands_acc(R["dnn_clean"]),
    "reject_unknown_amuse": reject_unknown(R["dscnn_clean"]),
    "reject_unknown_pocketsphinx_kws": R["kws_clean"]["reject_unknown"],
    "ms_per_clip_amuse": 1000 * R["cpu_dscnn"] / n, "ms_per_clip_amuse_dnn": 1000 * R["cpu_dnn"] / n,
    "ms_per_clip_pocketsphinx": 1000 * R["cpu_grammar"] / n,
    "ms_per_clip_pocketsphinx_kws": 1000 * R["cpu_kws"] / n,
    "train_samples_per_s_amuse": amuse_train_sps, "train_samples_per_s_pytorch": torch["samples_per_s"],
    "train_ratio": amuse_train_sps / torch["samples_per_s"],
    "labels": labels,
    "confusion_dscnn": R["dscnn_clean"]["confusion"], "confusion_dnn": R["dnn_clean"]["confusion"],
    "notes": "CPU time (user+sys) of whole processes, 1 thread, on a 2-core machine shared with "
             "other jobs; amuse ms include model load and WAV decoding; pocketsphinx_batch kws "
             "threshold 1e-20 for every word, not tuned; PyTorch throughput on random features "
             "of the same shape, torch " + torch["torch"],
}
for snr in (20, 10, 0):
    s = "snr%d" % snr
    res["acc_%s_amuse" % s] = commands_acc(R["dscnn_" + s])
    res["acc_%s_dnn" % s] = commands_acc(R["dnn_" + s])
    res["acc_%s_all_amuse" % s] = R["dscnn_" + s]["accuracy"]
    res["acc_%s_pocketsphinx" % s] = R["grammar_" + s]["accuracy"]
    res["acc_%s_pocketsphinx_kws" % s] = R["kws_" + s]["accuracy"]
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()
                  if not k.startswith("confusion") and k != "labels"}, indent=1))
PY
