# serve_lib.sh - helpers shared by the tests that drive a real `amuse serve` (cli_serve*.sh,
# cli_openai_client.sh, cli_playground.sh): pass/fail counting, a temporary directory removed on exit together with the
# servers started, starting a server on a random 127.0.0.1 port and stopping it with SIGTERM,
# and curl wrappers. Source it after setting AMUSE (the executable) and REPO (the model
# repository; may be created after sourcing). Every wait is bounded.
#
#   serve_lib_init NAME      make $TMP (amuse-NAME.XXXXXX) and the exit trap
#   serve_lib_require_data   stop unless Fashion-MNIST, curl and python3 are installed
#   train_tiny_model DIR [SAMPLES] [UNITS]
#                            a small Dense fashion model (784-UNITS-10, default 16) trained on
#                            SAMPLES (default 256) t10k images

passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check NAME CONDITION-EXIT-STATUS DETAIL
    if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1: $3"; fi
}

PIDS=()
serve_lib_init() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-$1.XXXXXX")
    trap serve_lib_cleanup EXIT
}
# serve_lib_require_data: stop with one failure unless Fashion-MNIST, curl and python3 are here.
serve_lib_require_data() {
    local need
    for need in /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz /usr/bin/curl \
        /usr/bin/python3; do
        if [ ! -e "$need" ]; then
            echo "FAIL prerequisites: need $need (dataset-fashion-mnist, curl, python3)"
            echo "0 passed, 1 failed"
            exit 1
        fi
    done
}
serve_lib_cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}

# start_server NAME [options...]: start amuse serve in the background on a free port; sets PORT,
# URL, SERVER_PID; the log is $TMP/NAME.log. Waits (bounded) for "ready".
start_server() {
    local name=$1
    shift
    # Polling off unless a test asks for it (--poll-interval-s wins over the environment): a
    # reload in the background would reset the per-model counters other tests read.
    AMUSE_POLL_INTERVAL_S=${AMUSE_POLL_INTERVAL_S:-0} "$AMUSE" serve --host 127.0.0.1 --port 0 --repository "$REPO" --db "$TMP/keys.db" \
        --model-threads 1 "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 1 600); do
        grep -q '^amuse: ready' "$TMP/$name.log" && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/$name.log" | head -n 1)
    if [ -z "$PORT" ] || ! grep -q '^amuse: ready' "$TMP/$name.log"; then
        bad "server $name did not start: $(tail -n 5 "$TMP/$name.log")"
        return 1
    fi
    URL="http://127.0.0.1:$PORT"
}

# stop_server: SIGTERM, wait (bounded), return the exit status.
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
        return 99
    fi
    wait "$SERVER_PID"
}

# req METHOD PATH KEY [BODY-FILE]: prints the HTTP status; body in $TMP/body, headers in $TMP/hdr.
req() {
    local args=(-s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --max-time 30 -X "$1")
    [ -n "$3" ] && args+=(-H "Authorization: Bearer $3")
    [ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$4")
    curl "${args[@]}" "$URL$2"
}

# expect NAME STATUS NEEDLE METHOD PATH KEY [BODY]: status matches and the body contains NEEDLE.
expect() {
    local name=$1 want=$2 needle=$3
    shift 3
    local got
    got=$(req "$@")
    if [ "$got" != "$want" ]; then
        bad "$name: status $got, expected $want: $(head -c 300 "$TMP/body")"
    elif ! grep -qF -- "$needle" "$TMP/body"; then
        bad "$name: body does not contain '$needle': $(head -c 300 "$TMP/body")"
    else
        ok "$name ($got): $(head -c 140 "$TMP/body")"
    fi
}

# train_tiny_model DIR [SAMPLES] [UNITS]: a small Dense model of Fashion-MNIST (input 28x28x1,
# outputs probabilities and label), trained in a few seconds on SAMPLES t10k images.
train_tiny_model() {
    local data=/usr/share/datasets/fashion-mnist samples=${2:-256} units=${3:-16}
    cat >"$TMP/tiny-recipe.json" <<JSON
{
  "name": "tiny-dnn",
  "input": {"type": "image", "color": "grey", "invert": "auto"},
  "labels": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"],
  "model": {"class_name": "Sequential", "config": {"name": "tiny_dnn", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 28, 28, 1]}},
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": $units, "activation": "relu"}},
    {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}
  ]}},
  "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.003}},
              "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
  "fit": {"batch_size": 64, "epochs": 1, "validation_split": 0.2, "seed": 1},
  "data": {"format": "idx",
           "train_images": "$data/t10k-images-idx3-ubyte.gz",
           "train_labels": "$data/t10k-labels-idx1-ubyte.gz"}
}
JSON
    if ! "$AMUSE" train "$TMP/tiny-recipe.json" -o "$1" --train-limit "$samples" --epochs 1 \
        --threads 2 --no-eval -q >"$TMP/tiny-train.out" 2>&1; then
        bad "train the served model: $(tail -n 3 "$TMP/tiny-train.out")"
        return 1
    fi
}

# fp32_request FILE: a V2 infer body for the tiny model (one grey 28x28 image, asks for the label).
fp32_request() {
    /usr/bin/python3 -c '
import json, sys
json.dump({"inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32",
           "data": [0.5] * 784}], "outputs": [{"name": "label"}]}, open(sys.argv[1], "w"))
' "$1"
}
