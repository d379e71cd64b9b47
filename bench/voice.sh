#!/usr/bin/env bash
# voice.sh - voice commands: amuse's DNN and DS-CNN against PocketSphinx on the held-out
# (test-split) voices of data/make_voice.sh's set, in one invocation, same clips, one thread:
#   - amuse: accuracy over all classes and the confusion matrix (amuse eval --json);
#   - PocketSphinx (Debian pocketsphinx + pocketsphinx-en-us, pocketsphinx_batch): a JSGF grammar
#     of exactly the 16 command words (forced choice, cannot reject) and keyword spotting (can
#     reject) with one threshold per word tuned on the VALIDATION voices (a grid of thresholds,
#     per word the one with most hits minus false alarms there; never on the test voices);
#   - rejection of unknown words: amuse answers _unknown_ or _silence_, PocketSphinx kws spots
#     no command;
#   - the same at 20, 10 and 0 dB SNR (clip RMS over noise RMS) with speech babble the training
#     never used: 5 flite voices (another synthesizer; make_voice.sh's babble is espeak-ng
#     training voices) reading another text;
#   - the same clean, on another synthesizer's voices: flite's 5 voices say each command and 8
#     unknown words (120 clips, the same in --quick);
#   - ms per 1 s clip, one thread: amuse's features plus inference of one clip at a time
#     (bench/voice_bench.c: thread CPU time, model load and WAV decoding excluded); PocketSphinx's
#     CPU time over all clips minus a one-clip run (its model load excluded), per clip; the
#     whole-process figures of both are kept too (*_process);
#   - DNN training throughput against PyTorch (same layers, batch 64, Adam, 1 thread, CPU time
#     of 4 epochs of 3276 samples; amuse's is the CPU time of a 5-epoch run minus a 1-epoch run;
#     PyTorch on random features of the same shape: throughput does not depend on the values).
# Writes bench/results/voice.json (--quick: voice-quick.json, every 4th test and validation
# clip, under 5 minutes). The machine may be shared: the JSON says so.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; echo "usage: bench/voice.sh [--quick] [--data DIR] [--every N]   (every Nth test clip)"; echo "AMUSE_VOICE_DNN / AMUSE_VOICE_DSCNN: other model directories"; }
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
command -v pocketsphinx_batch >/dev/null && command -v flite >/dev/null ||
  { apt-get install -y --no-install-recommends pocketsphinx pocketsphinx-en-us flite >&2; }
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
n_val=$($PY $T select "$data/manifest.csv" validation $every "$tmp/val.csv")
echo "voice.sh: $n_test test clips, $n_val validation clips (every $every), data $data" >&2

# Clean and noisy sets: manifest + %05d.wav names for pocketsphinx's control file.
link_set() { # link_set CSV DIR
  mkdir -p "$2"
  local i=0
  tail -n +2 "$1" | while IFS=, read -r path _; do
    ln -s "$path" "$2/$(printf '%05d' $i).wav"; i=$((i + 1))
  done
  cp "$1" "$2/manifest.csv"
}
link_set "$tmp/test.csv" "$tmp/clean"
link_set "$tmp/val.csv" "$tmp/val"
n_flite=$($PY $T flite-set "$tmp/flite")
$PY $T noise "$tmp/babble.wav" 120 1
for snr in 20 10 0; do $PY $T mix "$tmp/test.csv" "$tmp/babble.wav" $snr $snr "$tmp/snr$snr"; done

words="yes no up down left right on off stop go jump fire play pause next back"
{ echo "#JSGF V1.0;"; echo "grammar commands;"; echo "public <command> = $(echo $words | sed 's/ / | /g');"; } >"$tmp/commands.gram"
echo 00000 >"$tmp/one.ctl"

sphinx_run() { # sphinx_run SET MODE_ARGS... : hypotheses in $tmp/hyp, CPU seconds in $cpu_s
  local set=$1 ctl=$tmp/$1.ctl
  shift
  [ "$set" = one ] && set=clean
  [ -s "$ctl" ] || seq -f '%05g' 0 $(($(wc -l <"$tmp/$set/manifest.csv") - 2)) >"$ctl"
  cpu pocketsphinx_batch -hmm $HMM -dict $DICT "$@" -ctl "$ctl" \
    -cepdir "$tmp/$set" -cepext .wav -adcin yes -adchdr 44 -hyp "$tmp/hyp" -logfn /dev/null
}

# Keyword-spotting thresholds, tuned on the validation voices.
tune_args=()
for t in 1e-30 1e-25 1e-20 1e-15 1e-10 1e-5 1e-2 1e0 1e5; do
  for w in $words; do echo "$w /$t/"; done >"$tmp/kws.$t"
  sphinx_run val -kws "$tmp/kws.$t"
  cp "$tmp/hyp" "$tmp/val.$t.hyp"
  tune_args+=("$tmp/val.$t.hyp" "$t")
done
kws_tuning=$($PY $T kws-tune "$tmp/val/manifest.csv" "$tmp/keywords.list" "${tune_args[@]}")
echo "voice.sh: keyword thresholds: $(tr '\n' ' ' <"$tmp/keywords.list")" >&2

sphinx() { # sphinx SET MODE: score JSON in $tmp/result, CPU seconds in $cpu_s
  if [ "$2" = grammar ]; then sphinx_run "$1" -jsgf "$tmp/commands.gram"
  else sphinx_run "$1" -kws "$tmp/keywords.list"; fi
  $PY $T sphinx-score "$tmp/$1/manifest.csv" "$tmp/hyp" "$2" >"$tmp/result"
}
amuse_eval() { # amuse_eval MODEL SET: eval JSON in $tmp/result, CPU seconds in $cpu_s
  cpu $AMUSE eval "$1" --data "$tmp/$2/manifest.csv" --json -t 1
  cp "$tmp/cpu.out" "$tmp/result"
}

declare -A R
for set in clean snr20 snr10 snr0 flite; do
  amuse_eval $DNN $set; R[dnn_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_dnn]=$cpu_s
  amuse_eval $DSCNN $set; R[dscnn_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_dscnn]=$cpu_s
  sphinx $set grammar; R[grammar_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_grammar]=$cpu_s
  sphinx $set kws; R[kws_$set]=$(cat "$tmp/result"); [ $set = clean ] && R[cpu_kws]=$cpu_s
  echo "voice.sh: $set done" >&2
done
# PocketSphinx's model load: a one-clip run of each mode, subtracted below.
sphinx_run one -jsgf "$tmp/commands.gram"; R[cpu_grammar_one]=$cpu_s
sphinx_run one -kws "$tmp/keywords.list"; R[cpu_kws_one]=$cpu_s
# amuse per clip: features + inference, one clip at a time, load and decoding excluded.
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L bench/voice_bench.c -Iinclude -Lbuild -lamuse \
  -Wl,-rpath,"$PWD/build" -lm -o "$tmp/voice_bench"
R[bench_dscnn]=$("$tmp/voice_bench" $DSCNN "$tmp/test.csv" 5)
R[bench_dnn]=$("$tmp/voice_bench" $DNN "$tmp/test.csv" 5)

# Training throughput: amuse (1 epoch vs 5 epochs: the difference is 4 epochs of training,
# without loading the clips), PyTorch 4 epochs of as many samples.
n_train=4096
cpu $AMUSE train models/voice-dnn.json -e 1 -t 1 -q --no-eval --train-limit $n_train -o "$tmp/t1"; c1=$cpu_s
cpu $AMUSE train models/voice-dnn.json -e 5 -t 1 -q --no-eval --train-limit $n_train -o "$tmp/t3"; c3=$cpu_s
torch_json=$($PY $T torch-train $(awk -v n=$n_train 'BEGIN { print int(n * 0.8) }') 4 18)

for k in "${!R[@]}"; do printf '%s\t%s\n' "$k" "${R[$k]}"; done >"$tmp/results.tsv"
$PY - "$tmp/results.tsv" "$n_test" "$c1" "$c3" "$n_train" "$torch_json" "$out" "$quick" "$kws_tuning" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys, os
tsv, n_test, c1, c3, n_train, torch_json, out, quick, kws_tuning, cores, load = sys.argv[1:]
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
ms_ps = 1000 * (R["cpu_grammar"] - R["cpu_grammar_one"]) / (n - 1)
ms_ps_kws = 1000 * (R["cpu_kws"] - R["cpu_kws_one"]) / (n - 1)
ms_amuse = R["bench_dscnn"]["cpu_ms_per_clip"]
res = {
    "quick": quick == "1", "test_clips": n,
    "acc_dnn": R["dnn_clean"]["accuracy"], "acc_dscnn": R["dscnn_clean"]["accuracy"],
    "acc_pocketsphinx": R["grammar_clean"]["accuracy"],
    "acc_pocketsphinx_kws": R["kws_clean"]["accuracy"],
    "acc_commands_amuse": commands_acc(R["dscnn_clean"]),
    "acc_commands_dnn": commands_acc(R["dnn_clean"]),
    "reject_unknown_amuse": reject_unknown(R["dscnn_clean"]),
    "reject_unknown_dnn": reject_unknown(R["dnn_clean"]),
    "reject_unknown_pocketsphinx_kws": R["kws_clean"]["reject_unknown"],
    "reject_unknown_pocketsphinx": R["grammar_clean"]["reject_unknown"],
    "ms_per_clip_amuse": ms_amuse,
    "ms_per_clip_amuse_dnn": R["bench_dnn"]["cpu_ms_per_clip"],
    "ms_per_clip_amuse_median_wall": R["bench_dscnn"]["median_wall_ms_per_clip"],
    "ms_per_clip_pocketsphinx": ms_ps,
    "ms_per_clip_pocketsphinx_kws": ms_ps_kws,
    "speed_ratio": ms_ps / ms_amuse,
    "ms_per_clip_amuse_process": 1000 * R["cpu_dscnn"] / n,
    "ms_per_clip_amuse_dnn_process": 1000 * R["cpu_dnn"] / n,
    "ms_per_clip_pocketsphinx_process": 1000 * R["cpu_grammar"] / n,
    "ms_per_clip_pocketsphinx_kws_process": 1000 * R["cpu_kws"] / n,
    "params_dscnn": R["bench_dscnn"]["params"], "params_dnn": R["bench_dnn"]["params"],
    "train_samples_per_s_amuse": amuse_train_sps, "train_samples_per_s_pytorch": torch["samples_per_s"],
    "train_ratio": amuse_train_sps / torch["samples_per_s"],
    "kws_thresholds_validation": json.loads(kws_tuning),
    "labels": labels,
    "confusion_dscnn": R["dscnn_clean"]["confusion"], "confusion_dnn": R["dnn_clean"]["confusion"],
    "machine": {"cores": int(cores), "loadavg_at_end": load},
    "notes": "One thread throughout, on a machine shared with other jobs (load average above). "
             "ms_per_clip_amuse: thread CPU time of features + inference of one clip at a time "
             "(bench/voice_bench.c), process start, model load and WAV decoding excluded; "
             "ms_per_clip_pocketsphinx: pocketsphinx_batch CPU time over the clips minus a "
             "one-clip run (model load excluded), per clip; *_process: whole-process CPU time "
             "per clip, everything included. Keyword thresholds tuned per word on the validation "
             "voices (kws_thresholds_validation). Noise: babble of 5 flite voices, never in "
             "training. PyTorch throughput on random features of the same shape, torch "
             + torch["torch"],
}
res["flite_clips"] = R["dscnn_flite"]["samples"]
res["acc_flite_amuse"] = commands_acc(R["dscnn_flite"])
res["acc_flite_dnn"] = commands_acc(R["dnn_flite"])
res["acc_flite_all_amuse"] = R["dscnn_flite"]["accuracy"]
res["reject_unknown_flite_amuse"] = reject_unknown(R["dscnn_flite"])
res["acc_flite_pocketsphinx"] = R["grammar_flite"]["accuracy"]
res["acc_flite_pocketsphinx_kws"] = R["kws_flite"]["accuracy"]
res["reject_unknown_flite_pocketsphinx_kws"] = R["kws_flite"]["reject_unknown"]
for snr in (20, 10, 0):
    s = "snr%d" % snr
    res["acc_%s_amuse" % s] = commands_acc(R["dscnn_" + s])
    res["acc_%s_dnn" % s] = commands_acc(R["dnn_" + s])
    res["acc_%s_all_amuse" % s] = R["dscnn_" + s]["accuracy"]
    res["reject_unknown_%s_amuse" % s] = reject_unknown(R["dscnn_" + s])
    res["acc_%s_pocketsphinx" % s] = R["grammar_" + s]["accuracy"]
    res["acc_%s_pocketsphinx_kws" % s] = R["kws_" + s]["accuracy"]
    res["reject_unknown_%s_pocketsphinx_kws" % s] = R["kws_" + s]["reject_unknown"]
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()
                  if not k.startswith("confusion") and k not in ("labels", "kws_thresholds_validation")},
                 indent=1))
PY
