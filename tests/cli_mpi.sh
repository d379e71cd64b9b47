#!/usr/bin/env bash
# cli_mpi.sh - the amuse command under `mpirun -np 2` (issue 13): data-parallel training equals one
# rank with twice the batch (a CNN with Adam whose last global batch leaves one rank empty, and an
# LSTM text model), a BatchNormalization model trains on averaged moving statistics, rank 0 alone
# prints and writes; a rank killed mid-epoch ends the job non-zero within a bounded time with a
# message naming the rank, and so does a rank that stops answering (the collectives' deadline); word2vec splits the corpus and still learns the topics; ALS across
# ranks equals one rank; commands that do not run across ranks say so.
#
# usage: bash cli_mpi.sh <path to amuse> <fixtures dir>
# Exits 77 (ctest: skipped) only when `amuse --version` says MPI is not compiled in. Needs
# openmpi-bin, dataset-fashion-mnist and /usr/bin/python3 (stdlib only: tests/tools/st_compare.py).
# mpirun refuses to run as root unless told: the test sets OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM) then.
set -u

AMUSE=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
PYTHON=/usr/bin/python3
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

version=$("$AMUSE" --version)
case "$version" in
*"MPI: not compiled in"*)
    echo "SKIP: this amuse is built without MPI ($version); configure with openmpi installed"
    exit 77 ;;
esac
if ! command -v mpirun >/dev/null || [ ! -f "$DATA/t10k-images-idx3-ubyte.gz" ] || [ ! -x "$PYTHON" ]; then
    bad "prerequisites: MPI is compiled in ($version) but mpirun (openmpi-bin), $DATA or $PYTHON is missing"
    finish
fi
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's own allocations still held at exit are not amuse's leaks (ASan build): suppressed by
# library in tests/mpi.supp, which needs whole stacks (slow unwinding) and plugins left loaded.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$ROOT/tests/mpi.supp:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
MPIRUN=(mpirun -np 2 --oversubscribe)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-cli-mpi.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
compare() { "$PYTHON" "$ROOT/tests/tools/st_compare.py" "$@"; }

# ---------------------------------------------------------------- CNN: 2 ranks x 32 = 1 rank x 64
cat >"$TMP/cnn.json" <<JSON
{"name": "tiny-cnn", "input": {"type": "image", "color": "grey", "invert": false},
 "labels": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
 "model": {"class_name": "Sequential", "config": {"name": "tiny_cnn", "layers": [
   {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 28, 28, 1]}},
   {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3], "activation": "relu"}},
   {"class_name": "MaxPooling2D", "config": {"pool_size": [2, 2]}},
   {"class_name": "Flatten", "config": {}},
   {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}},
 "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.003}},
             "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
 "fit": {"batch_size": 64, "epochs": 2, "validation_split": 0.2, "seed": 1,
         "callbacks": [{"class_name": "ModelCheckpoint", "config": {"monitor": "val_accuracy"}}]},
 "data": {"format": "idx",
          "train_images": "$DATA/t10k-images-idx3-ubyte.gz", "train_labels": "$DATA/t10k-labels-idx1-ubyte.gz",
          "test_images": "$DATA/t10k-images-idx3-ubyte.gz", "test_labels": "$DATA/t10k-labels-idx1-ubyte.gz"}}
JSON
# 802 samples: 641 to train, so the last global batch is one sample and rank 0's share is empty.
"$AMUSE" train "$TMP/cnn.json" -o "$TMP/cnn1" -b 64 -t 1 --train-limit 802 --no-eval >"$TMP/cnn1.out" 2>&1 ||
    bad "one rank: $(tail -3 "$TMP/cnn1.out")"
"${MPIRUN[@]}" "$AMUSE" train "$TMP/cnn.json" -o "$TMP/cnn2" -b 32 --train-limit 802 >"$TMP/cnn2.out" 2>&1 ||
    bad "two ranks: $(tail -3 "$TMP/cnn2.out")"
if compare "$TMP/cnn1/model.safetensors" "$TMP/cnn2/model.safetensors" 1e-4 >"$TMP/cmp" 2>&1; then
    ok "CNN + Adam: 2 ranks x batch 32 = 1 rank x batch 64 ($(cat "$TMP/cmp"))"
else
    bad "CNN: weights differ: $(cat "$TMP/cmp")"
fi
v1=$(grep -o '"val_accuracy": [0-9.]*' "$TMP/cnn1/history.json" | tr '\n' ' ')
v2=$(grep -o '"val_accuracy": [0-9.]*' "$TMP/cnn2/history.json" | tr '\n' ' ')
if [ -n "$v1" ] && [ "$v1" = "$v2" ]; then ok "sharded validation gives the one-rank figures ($v1)"
else bad "validation: one rank '$v1', two ranks '$v2'"; fi
if [ "$(grep -c '^Epoch 1/2' "$TMP/cnn2.out")" -eq 1 ] && [ "$(grep -c '^Saved ' "$TMP/cnn2.out")" -eq 1 ] &&
    [ "$(grep -c '^Test: ' "$TMP/cnn2.out")" -eq 1 ]; then
    ok "rank 0 alone prints progress, saves and evaluates"
else
    bad "output of two ranks: $(head -c 600 "$TMP/cnn2.out")"
fi
if grep -q '2 ranks x 1 thread, batch 32 per rank (64 in all)' "$TMP/cnn2.out"; then
    ok "the run states its layout (2 ranks x 1 thread, 64 in all)"
else
    bad "layout line: $(grep Training "$TMP/cnn2.out")"
fi
if [ -f "$TMP/cnn2/best/model.safetensors" ] && grep -q '"ranks":[[:space:]]*2' "$TMP/cnn2/config.json" &&
    ! ls "$TMP/cnn2" "$TMP/cnn2/best" | grep -q '\.tmp\.'; then
    ok "checkpoint and model written once; the config records 2 ranks"
else
    bad "files: $(ls -R "$TMP/cnn2")"
fi

# ---------------------------------------------------------------- LSTM text model
for i in $(seq 1 40); do echo "the cat sat on the mat, the dog sat on the log."; done >"$TMP/corpus.txt"
cat >"$TMP/lm.json" <<JSON
{"name": "tiny", "model": {"class_name": "Sequential", "config": {"layers": [
  {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 16], "dtype": "int32"}},
  {"class_name": "Embedding", "config": {"name": "embedding", "input_dim": 4, "output_dim": 8}},
  {"class_name": "LSTM", "config": {"name": "lstm", "units": 16, "return_sequences": true}},
  {"class_name": "Dense", "config": {"name": "dense", "units": 4, "activation": "softmax"}}]}},
 "data": {"text": "$TMP/corpus.txt", "task": "lm", "seq_length": 16, "stride": 4},
 "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.02}},
             "loss": "sparse_categorical_crossentropy"},
 "fit": {"batch_size": 32, "epochs": 2, "validation_split": 0.1}, "generation": {"max_tokens": 10}}
JSON
"$AMUSE" train "$TMP/lm.json" -o "$TMP/lm1" -b 32 -t 1 -q >"$TMP/lm1.out" 2>&1 ||
    bad "LSTM one rank: $(tail -3 "$TMP/lm1.out")"
"${MPIRUN[@]}" "$AMUSE" train "$TMP/lm.json" -o "$TMP/lm2" -b 16 -q >"$TMP/lm2.out" 2>&1 ||
    bad "LSTM two ranks: $(tail -3 "$TMP/lm2.out")"
if compare "$TMP/lm1/model.safetensors" "$TMP/lm2/model.safetensors" 1e-4 >"$TMP/cmp" 2>&1; then
    ok "LSTM text model: 2 ranks x 16 = 1 rank x 32 ($(cat "$TMP/cmp"))"
else
    bad "LSTM: weights differ: $(cat "$TMP/cmp")"
fi
if "$AMUSE" generate "$TMP/lm2" --prompt "the " -n 10 --seed 1 -t 1 >/dev/null 2>&1; then
    ok "the model trained on 2 ranks generates"
else
    bad "generate from the 2-rank model"
fi

# ---------------------------------------------------------------- BatchNormalization
sed -e 's/"name": "tiny-cnn"/"name": "tiny-bn"/' \
    -e 's/{"class_name": "Flatten", "config": {}},/{"class_name": "Flatten", "config": {}}, {"class_name": "BatchNormalization", "config": {"momentum": 0.8}},/' \
    "$TMP/cnn.json" >"$TMP/bn.json"
grep -q BatchNormalization "$TMP/bn.json" || bad "the BatchNormalization recipe was not made"
"${MPIRUN[@]}" "$AMUSE" train "$TMP/bn.json" -o "$TMP/bn2" -b 32 --train-limit 2000 >"$TMP/bn2.out" 2>&1 ||
    bad "BatchNormalization on two ranks: $(tail -3 "$TMP/bn2.out")"
acc=$(sed -n 's/^Test: .* accuracy: \([0-9.]*\)$/\1/p' "$TMP/bn2.out")
if awk -v a="${acc:-0}" 'BEGIN { exit !(a > 0.6) }'; then
    ok "BatchNormalization on 2 ranks: test accuracy $acc with the averaged moving statistics"
else
    bad "BatchNormalization: test accuracy '${acc}' (want > 0.6)"
fi

# ---------------------------------------------------------------- a rank dies mid-epoch
"${MPIRUN[@]}" "$AMUSE" train "$TMP/cnn.json" -o "$TMP/killed" -b 32 -e 1000 --train-limit 802 \
    --no-eval >"$TMP/kill.out" 2>&1 &
job=$!
for _ in $(seq 1 1200); do grep -q 'Epoch 3/' "$TMP/kill.out" && break; sleep 0.1; done
victim=""
for p in $(pgrep -P "$job"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
if [ -z "$victim" ]; then
    bad "could not find rank 1 among mpirun's children ($(pgrep -P "$job" | tr '\n' ' '))"
    kill "$job" 2>/dev/null
    wait "$job"
else
    start=$SECONDS
    kill -9 "$victim"
    for _ in $(seq 1 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$job" 2>/dev/null; then
        bad "the job still runs 60 s after rank 1 died"
        kill -9 "$job"
    fi
    wait "$job"
    rc=$?
    took=$((SECONDS - start))
    if [ "$rc" -ne 0 ] && grep -q 'rank 1' "$TMP/kill.out"; then
        ok "rank 1 killed in epoch 3: the job exits $rc within ${took} s: $(grep -m1 'rank 1' "$TMP/kill.out")"
    else
        bad "after killing rank 1: exit $rc, output: $(tail -5 "$TMP/kill.out")"
    fi
fi
if [ ! -e "$TMP/killed/model.safetensors" ]; then ok "a failed job saves no model"
else bad "a failed job saved a model"; fi

# ---------------------------------------------------------------- a rank stops answering
# Rank 1 is stopped (SIGSTOP), not killed: mpirun sees nothing wrong, so only amuse's deadline on
# collectives (AMUSE_MPI_TIMEOUT) can end the wait. Rank 0 must fail naming the collective and
# abort the job.
AMUSE_MPI_TIMEOUT=5 "${MPIRUN[@]}" -x AMUSE_MPI_TIMEOUT "$AMUSE" train "$TMP/cnn.json" -o "$TMP/stopped" \
    -b 32 -e 1000 --train-limit 802 --no-eval >"$TMP/stop.out" 2>&1 &
job=$!
for _ in $(seq 1 1200); do grep -q 'Epoch 3/' "$TMP/stop.out" && break; sleep 0.1; done
victim=""
for p in $(pgrep -P "$job"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
if [ -z "$victim" ]; then
    bad "could not find rank 1 to stop"
    kill "$job" 2>/dev/null
    wait "$job"
else
    start=$SECONDS
    kill -STOP "$victim"
    for _ in $(seq 1 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$job" 2>/dev/null; then
        bad "the job still waits 60 s after rank 1 stopped answering"
        kill -9 "$victim" "$job" 2>/dev/null
    fi
    wait "$job"
    rc=$?
    kill -9 "$victim" 2>/dev/null
    took=$((SECONDS - start))
    if [ "$rc" -ne 0 ] && grep -q 'rank 0 of 2): training failed: MPI .*waited 5 s for the other ranks' "$TMP/stop.out"; then
        ok "rank 1 stopped: rank 0 gives up after 5 s and the job exits $rc in ${took} s: $(grep -m1 'waited' "$TMP/stop.out" | cut -c1-150)"
    else
        bad "after stopping rank 1: exit $rc, output: $(tail -5 "$TMP/stop.out")"
    fi
fi

# ---------------------------------------------------------------- word2vec
for i in $(seq 1 400); do
    echo "cat dog mouse pet fur cat dog paw"
    echo "car road wheel engine car drive road fuel"
done >"$TMP/w2v.txt"
"${MPIRUN[@]}" "$AMUSE" word2vec -train "$TMP/w2v.txt" -output "$TMP/w2.bin" -cbow 0 -size 20 -window 3 \
    -negative 5 -sample 1e-3 -threads 1 -iter 3 -min-count 2 -binary 1 -mpi-sync 1000 \
    -save-vocab "$TMP/vocab.txt" -debug 1 >"$TMP/w2.out" 2>&1 || bad "word2vec on two ranks: $(tail -3 "$TMP/w2.out")"
if grep -q 'Ranks: 2 x 1 thread, combining updates every 1000 words per rank' "$TMP/w2.out" &&
    [ "$(grep -c '^Vocab size' "$TMP/w2.out")" -eq 1 ]; then
    ok "word2vec: rank 0 reports the layout once"
else
    bad "word2vec output: $(head -5 "$TMP/w2.out")"
fi
"$AMUSE" words similar "$TMP/w2.bin" cat -k 3 >"$TMP/sim.txt" 2>&1
if [ "$(cut -f1 "$TMP/sim.txt" | grep -cE '^(dog|mouse|pet|fur|paw)$')" -eq 3 ]; then
    ok "word2vec on 2 ranks: cat's neighbours are $(cut -f1 "$TMP/sim.txt" | tr '\n' ' ')"
else
    bad "word2vec on 2 ranks: cat's neighbours: $(cat "$TMP/sim.txt")"
fi
if grep -qx 'car 800' "$TMP/vocab.txt"; then ok "the vocabulary is written once, whole"
else bad "vocab: $(head -3 "$TMP/vocab.txt")"; fi
if "${MPIRUN[@]}" "$AMUSE" word2vec -train "$TMP/w2v.txt" -output "$TMP/sub.bin" -subwords 1 -threads 1 \
    -min-count 2 -debug 0 >"$TMP/sub.out" 2>&1; then
    bad "-subwords across ranks was accepted"
elif grep -q 'not trained across MPI ranks' "$TMP/sub.out"; then
    ok "-subwords across ranks is refused with a reason"
else
    bad "-subwords message: $(tail -2 "$TMP/sub.out")"
fi

# ---------------------------------------------------------------- ALS
awk 'BEGIN { s = 7; for (u = 0; u < 300; u++) for (k = 0; k < 12; k++) {
    s = (s * 1103515245 + 12345) % 2147483648; i = (u % 3) * 40 + s % 40;
    printf "u%d\ti%d\t%d\t%d\n", u, i, 1 + s % 5, 1000 + k } }' >"$TMP/events.tsv"
"$AMUSE" recommend train --data "$TMP/events.tsv" --algo als --factors 8 --iters 5 --threads 1 \
    --output "$TMP/als1" >"$TMP/als1.out" 2>&1 || bad "ALS one rank: $(tail -2 "$TMP/als1.out")"
"${MPIRUN[@]}" "$AMUSE" recommend train --data "$TMP/events.tsv" --algo als --factors 8 --iters 5 \
    --output "$TMP/als2" >"$TMP/als2.out" 2>&1 || bad "ALS two ranks: $(tail -2 "$TMP/als2.out")"
if compare "$TMP/als1/model.safetensors" "$TMP/als2/model.safetensors" 1e-5 >"$TMP/cmp" 2>&1; then
    ok "ALS: users and items split over 2 ranks = 1 rank ($(cat "$TMP/cmp"))"
else
    bad "ALS: factors differ: $(cat "$TMP/cmp")"
fi
if [ "$(grep -c '^wrote ' "$TMP/als2.out")" -eq 1 ]; then ok "ALS: rank 0 alone writes"
else bad "ALS output: $(cat "$TMP/als2.out")"; fi
if "${MPIRUN[@]}" "$AMUSE" recommend train --data "$TMP/events.tsv" --algo bpr --output "$TMP/bpr" \
    >"$TMP/bpr.out" 2>&1; then
    bad "BPR across ranks was accepted"
elif grep -q "only 'recommend train --algo als' runs across MPI ranks" "$TMP/bpr.out"; then
    ok "BPR across ranks is refused with a reason"
else
    bad "BPR message: $(tail -2 "$TMP/bpr.out")"
fi

finish
