#!/usr/bin/env bash
# cnn.sh - amuse against PyTorch on the seed CNN (or DNN), Fashion-MNIST, in one invocation.
#
# Both sides train the same architecture on the same data with the same batch size (128), thread
# count, validation split (last 20%) and optimizer (Adam, Keras defaults), then evaluate on t10k.
# The machines are shared and noisy, so what counts is the ratio of the two, measured back to back:
# train_ratio = amuse/torch training images per second (training-step time only), infer_ratio =
# the same for t10k inference at batch 128. Writes bench/results/<model>.json (<model>-quick.json
# with --quick); the last stdout
# line summarises. It does not tune either side: each runs its recipe as shipped.
# amuse's model is also asked to label t10k images as dark garments on a light background (the
# first 1000, 200 with --quick, written inverted as PNG files by `amuse data samples --inverted`):
# with the recipe's "invert": "auto" (inverted_acc_auto) and with inversion off
# (inverted_acc_off), beside the same images as they are (plain_acc); amuse-only figures.
#
#   bench/cnn.sh --quick            1 epoch on the first 12800 samples: throughput only (< 3 min)
#   bench/cnn.sh                    10 epochs on all 60000: throughput and accuracy
#   options: --threads N (2)  --amuse PATH (build/amuse; built if missing)  --model cnn|dnn
#            --epochs E  --seed S (42)  --python PATH (/usr/bin/python3, which has python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 threads=2 amuse=build/amuse model=cnn epochs="" seed=42 python=/usr/bin/python3
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --threads) threads="$2"; shift ;;
    --amuse) amuse="$2"; shift ;;
    --model) model="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --python) python="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cnn.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$model" in cnn|dnn) ;; *) echo "cnn.sh: --model must be cnn or dnn" >&2; exit 2 ;; esac
recipe="models/fashion-$model.json"
batch=128
if [ "$quick" = 1 ]; then
  mode=quick limit=12800 epochs="${epochs:-1}"
else
  mode=full limit=60000 epochs="${epochs:-10}"
fi

[ -f "$recipe" ] || { echo "cnn.sh: $recipe not found" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null ||
  { echo "cnn.sh: $python cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
if [ ! -x "$amuse" ]; then
  echo "cnn.sh: $amuse missing; building it (Release)" >&2
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAMUSE_BUILD_TESTS=OFF >/dev/null
  cmake --build build -j"$(nproc)" --target amuse_cli >/dev/null
  amuse=build/amuse
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/amuse-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results

echo "== amuse: $model, $mode, $epochs epoch(s), $threads thread(s) =="
"$amuse" --version | tee "$work/version.txt"
"$amuse" train "$recipe" --output "$work/model" --epochs "$epochs" --batch-size "$batch" \
  --threads "$threads" --train-limit "$limit" --seed "$seed"
"$amuse" eval "$work/model" --json --threads "$threads" --batch-size "$batch" > "$work/eval.json"

# Inverted t10k images through the image path (decode, background check, model), as a user's
# photos would go: with "invert": "auto" as trained, and with inversion off.
n_inv=$([ "$quick" = 1 ] && echo 200 || echo 1000)
amuse_path=$(realpath "$amuse")
"$amuse" data samples --out "$work/png" --count "$n_inv" --inverted > "$work/png.labels"
cp -r "$work/model" "$work/model-off"
sed -i 's/"invert":[[:space:]]*"auto"/"invert": false/' "$work/model-off/config.json"
for variant in model model-off; do
  for kind in plain inverted; do
    if [ $kind = plain ]; then pat='t10k-+([0-9]).png'; else pat='t10k-+([0-9])-inverted.png'; fi
    # shellcheck disable=SC2086
    (cd "$work/png" && shopt -s extglob && eval "files=($pat)" &&
      "$amuse_path" predict "$work/$variant" "${files[@]}" --json -k 1 \
      --threads "$threads") > "$work/$variant.$kind.json"
  done
done

echo "== torch: $model, $mode, $epochs epoch(s), $threads thread(s) =="
"$python" bench/cnn_torch.py --model "$model" --epochs "$epochs" --train-limit "$limit" \
  --batch-size "$batch" --threads "$threads" --seed "$seed" --json "$work/torch.json" \
  $([ "$quick" = 1 ] && echo --quick)

"$python" - "$work" "$model" "$mode" "$epochs" "$threads" "$batch" "$limit" <<'EOF'
import json, os, platform, sys

work, model, mode, epochs, threads, batch, limit = sys.argv[1:]
history = json.load(open(os.path.join(work, "model", "history.json")))["epochs"]
ev = json.load(open(os.path.join(work, "eval.json")))
truth = dict(line.rstrip("\n").split("\t") for line in open(os.path.join(work, "png.labels")))
def accuracy(name):
    rows = [json.loads(l) for l in open(os.path.join(work, name))]
    hits = sum(truth[os.path.join(work, "png", r["image"])] == r["top"][0]["label"] for r in rows)
    return round(hits / len(rows), 4), len(rows)
plain_acc, n_plain = accuracy("model.plain.json")
inv_auto, n_inv = accuracy("model.inverted.json")
inv_off, _ = accuracy("model-off.inverted.json")
plain_off, _ = accuracy("model-off.plain.json")
torch = json.load(open(os.path.join(work, "torch.json")))

amuse_train = sum(h["train_samples"] for h in history) / sum(h["train_seconds"] for h in history)
amuse_infer = ev["samples"] / ev["seconds"]
cpu = platform.processor()
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
version = open(os.path.join(work, "version.txt")).read().strip()
blas = version.split("BLAS kernels:", 1)[1].split(";")[0].strip(" )") if "BLAS kernels:" in version else version

result = {
    "model": model, "mode": mode,
    "amuse_train_img_s": round(amuse_train, 1), "torch_train_img_s": round(torch["train_img_s"], 1),
    "train_ratio": round(amuse_train / torch["train_img_s"], 3),
    "amuse_infer_img_s": round(amuse_infer, 1), "torch_infer_img_s": round(torch["infer_img_s"], 1),
    "infer_ratio": round(amuse_infer / torch["infer_img_s"], 3),
    "amuse_test_acc": ev["accuracy"], "torch_test_acc": torch["test_acc"],
    "inverted_images": n_inv, "plain_acc": plain_acc, "plain_acc_invert_off": plain_off,
    "inverted_acc_auto": inv_auto, "inverted_acc_off": inv_off,
    "amuse_test_loss": ev["loss"], "torch_test_loss": torch["test_loss"],
    "epochs": int(epochs), "threads": int(threads), "batch": int(batch),
    "train_limit": int(limit), "train_samples": history[0]["train_samples"],
    "torch_train_samples": torch["train_samples"], "test_samples": ev["samples"],
    "cpu": cpu, "nproc": os.cpu_count(), "openblas_core": blas, "amuse_version": version,
    "torch_version": torch["torch_version"],
    "amuse_history": history, "torch_history": torch["history"],
}
if result["train_samples"] != result["torch_train_samples"]:
    sys.exit("cnn.sh: amuse trained on %d samples per epoch, torch on %d: not comparable"
             % (result["train_samples"], result["torch_train_samples"]))
path = os.path.join("bench", "results", model + ("-quick" if mode == "quick" else "") + ".json")
with open(path + ".tmp", "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
os.replace(path + ".tmp", path)
print("wrote %s" % path)
print("%s: inverted t10k (%d): accuracy %.4f with invert auto, %.4f with it off (plain %.4f)"
      % (model, n_inv, inv_auto, inv_off, plain_acc))
print("%s: train_ratio %.2f infer_ratio %.2f (amuse acc %.4f, torch acc %.4f, %d epoch%s, "
      "%d thread%s)" % (model, result["train_ratio"], result["infer_ratio"], ev["accuracy"],
                        torch["test_acc"], int(epochs), "" if int(epochs) == 1 else "s",
                        int(threads), "" if int(threads) == 1 else "s"))
EOF
