#!/usr/bin/env bash
# cli_serve_replicas.sh - two `amuse serve` replicas behind nginx, sharing one PostgreSQL database
# (a throwaway cluster, tests/pg_lib.sh) and one model repository directory, as docs/SCALING.md
# describes. Checks: keys made with `amuse keys --db postgres://...` work on both replicas; a key
# revoked there is refused by both within their key cache's bound; a model version dropped into the shared
# repository is picked up by both; traffic through nginx reaches both; a replica killed with
# SIGKILL mid-run loses no request beyond those in flight on it (nginx retries a request it
# could not send, and marks the replica down); and the usage counts in PostgreSQL add up to the
# requests each replica answered (all of the survivor's, which flushes on SIGTERM; the killed
# one's up to its last flush).
#
# usage: bash cli_serve_replicas.sh <path to amuse> <fixtures dir>
# Needs dataset-fashion-mnist, curl, python3, nginx and PostgreSQL; exits 77 (skipped) with a
# message when nginx or the PostgreSQL server is not installed. Only 127.0.0.1 and unix sockets
# in the temporary directory are used; every wait is bounded.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
# shellcheck source=pg_lib.sh
. "$SRC/tests/pg_lib.sh"
# shellcheck source=nginx_lib.sh
. "$SRC/tests/nginx_lib.sh"

if ! nginx_find; then
    echo "SKIP nginx is not installed (scripts/deps.sh installs it)"
    exit 77
fi
if ! pg_find_bin; then
    echo "SKIP PostgreSQL is not installed (no initdb/pg_ctl; scripts/deps.sh installs postgresql)"
    exit 77
fi
if ! "$AMUSE" --version | grep -q postgres; then
    echo "SKIP this amuse was built without PostgreSQL (libpq-dev)"
    exit 77
fi

serve_lib_init serve-replicas
serve_lib_require_data
chmod 711 "$TMP" # the cluster (and nginx's workers) run as another user when this runs as root
cleanup_all() {
    nginx_stop
    pg_stop_cluster "$TMP/pg"
    serve_lib_cleanup
}
trap cleanup_all EXIT
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# ------------------------------------------------------------------ the shared parts

pg_start_cluster "$TMP/pg" fast || { bad "start PostgreSQL"; finish; }
DB=$PG_URL
REPO="$TMP/repo"
mkdir -p "$REPO/fashion"
train_tiny_model "$REPO/fashion/1" 256 16 || finish
fp32_request "$TMP/fp32.json"

KEY=$("$AMUSE" keys create --tenant acme --scope admin --db "$DB" 2>"$TMP/keys.err")
check "amuse keys create --db postgres://..." $? "$(cat "$TMP/keys.err")"
DOOMED=$("$AMUSE" keys create --tenant acme --scope infer --db "$DB" 2>>"$TMP/keys.err")
DOOMED_ID=$(echo "$DOOMED" | cut -d_ -f2)

# Two replicas: same repository (polled every second), same database, usage flushed every second.
start_replica() { # NAME: sets <NAME>_PORT and <NAME>_PID
    start_server "$1" --db "$DB" --poll-interval-s 1 --usage-flush-s 1 --threads 8 || finish
    grep -q "had no API key" "$TMP/$1.log" &&
        bad "$1 made its own admin key: it does not see the shared key table"
    printf -v "${1}_PORT" %s "$PORT"
    printf -v "${1}_PID" %s "$SERVER_PID"
}
start_replica a
start_replica b
URL_A="http://127.0.0.1:$a_PORT"
URL_B="http://127.0.0.1:$b_PORT"

# ------------------------------------------------------------------ nginx in front

nginx_start "$TMP/nginx" "$a_PORT" "$b_PORT" 2>"$TMP/nginx.err" ||
    { bad "nginx did not start: $(cat "$TMP/nginx.err")"; finish; }
ok "nginx in front of replicas on ports $a_PORT and $b_PORT"
URL_N="http://127.0.0.1:$NGINX_PORT"

# ------------------------------------------------------------------ shared keys and repository

URL=$URL_A expect "replica a: the key made with amuse keys works" 200 '"model_name": "fashion"' \
    POST /v2/models/fashion/infer "$DOOMED" "$TMP/fp32.json"
URL=$URL_B expect "replica b: the same key works" 200 '"model_name": "fashion"' \
    POST /v2/models/fashion/infer "$DOOMED" "$TMP/fp32.json"
"$AMUSE" keys revoke "$DOOMED_ID" --db "$DB" 2>"$TMP/revoke.err"
check "amuse keys revoke --db postgres://..." $? "$(cat "$TMP/revoke.err")"
# Each replica trusts a key it looked up for --key-cache-ms (1000 on PostgreSQL by default; the
# exact bound is test_serve's key_cache_bounds_revocation, with a clock handed in): within
# about that, both refuse it. Polled (bounded), so a busy machine cannot fail it.
for r in a b; do
    port_var="${r}_PORT"
    refused=0
    for i in $(seq 1 100); do
        code=$(URL="http://127.0.0.1:${!port_var}" req POST /v2/models/fashion/infer "$DOOMED" "$TMP/fp32.json")
        [ "$code" = 401 ] && refused=1 && break
        sleep 0.1
    done
    check "replica $r refuses the revoked key (after $((i - 1)) retries of 0.1 s)" \
        $((1 - refused)) "status $code"
done
URL=$URL_N expect "through nginx too" 401 "" POST /v2/models/fashion/infer "$DOOMED" "$TMP/fp32.json"

# A new version in the shared directory: both replicas poll it and serve it.
cp -r "$REPO/fashion/1" "$REPO/fashion/2.tmp" && mv "$REPO/fashion/2.tmp" "$REPO/fashion/2"
PROBES=0 # requests sent with KEY straight to a replica: they count in its usage too
for r in a b; do
    port_var="${r}_PORT"
    seen=0
    for _ in $(seq 1 200); do
        URL="http://127.0.0.1:${!port_var}" req POST /v2/models/fashion/infer "$KEY" "$TMP/fp32.json" >/dev/null
        PROBES=$((PROBES + 1))
        if grep -qF '"model_version": "2"' "$TMP/body"; then seen=1; break; fi
        sleep 0.1
    done
    check "replica $r serves version 2 from the shared repository" $((1 - seen)) \
        "$(head -c 200 "$TMP/body")"
done

# ------------------------------------------------------------------ traffic, and a replica killed

# usage_of KEY_ID: the key's requests as PostgreSQL holds them.
usage_of() { pg_sql "$TMP/pg" "SELECT coalesce(sum(requests), 0) FROM usage WHERE key_id = '$1'"; }
KEY_ID=$(echo "$KEY" | cut -d_ -f2)

# load N CONCURRENCY OUT [KILL_AFTER PID]: N inference requests through nginx from CONCURRENCY
# threads (keep-alive connections); statuses to OUT, one a line. With KILL_AFTER, SIGKILL PID
# once that many have been answered, while the others keep going.
load() {
    "$PYTHON" - "$NGINX_PORT" "$KEY" "$TMP/fp32.json" "$@" <<'PY'
import http.client, os, signal, sys, threading
port, key, body_file, n, conc, out = sys.argv[1:7]
kill_after, pid = (int(sys.argv[7]), int(sys.argv[8])) if len(sys.argv) > 8 else (None, None)
body = open(body_file, "rb").read()
n, conc = int(n), int(conc)
lock = threading.Lock()
state = {"next": 0, "done": 0, "killed": False}
statuses = []
def worker():
    conn = None
    while True:
        with lock:
            if state["next"] >= n:
                break
            state["next"] += 1
        status = 0
        for attempt in (1, 2):  # a dropped keep-alive connection to nginx is not a lost request
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
                conn.request("POST", "/v2/models/fashion/infer", body,
                             {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
                break
            except (http.client.HTTPException, OSError):
                conn = None
                if attempt == 2:
                    status = -1
        with lock:
            statuses.append(status)
            state["done"] += 1
            if kill_after is not None and not state["killed"] and state["done"] >= kill_after:
                state["killed"] = True
                os.kill(pid, signal.SIGKILL)
threads = [threading.Thread(target=worker) for _ in range(conc)]
for t in threads: t.start()
for t in threads: t.join()
with open(out, "w") as f:
    f.write("".join("%d\n" % s for s in statuses))
PY
}

CONC=6
N1=120
load "$N1" "$CONC" "$TMP/phase1.status"
ok1=$(grep -c '^200$' "$TMP/phase1.status")
check "phase 1: $N1 requests through nginx, all 200" $((ok1 != N1)) "$ok1 of $N1: $(sort "$TMP/phase1.status" | uniq -c | tr '\n' ' ')"
cp "$TMP/nginx/logs/access.log" "$TMP/access1.log"
to_a=$(grep -c "infer 200 \[127.0.0.1:$a_PORT\]" "$TMP/access1.log")
to_b=$(grep -c "infer 200 \[127.0.0.1:$b_PORT\]" "$TMP/access1.log")
check "phase 1: both replicas answered ($to_a on a, $to_b on b)" $((to_a == 0 || to_b == 0)) "nginx log: $(tail -n 3 "$TMP/access1.log")"

# Both flush every second: wait (bounded) until PostgreSQL holds every request made with KEY so
# far, the probes sent straight to the replicas included.
base=$((N1 + PROBES))
got=""
for _ in $(seq 1 300); do
    got=$(usage_of "$KEY_ID")
    [ "$got" = "$base" ] && break
    sleep 0.1
done
check "phase 1: usage in PostgreSQL reaches $N1 + $PROBES (both replicas flushed)" \
    $((got != base)) "got $got"

# Phase 2: kill -9 replica b after 40 of 240 answers.
N2=240
lines_before=$(wc -l <"$TMP/nginx/logs/access.log")
load "$N2" "$CONC" "$TMP/phase2.status" 40 "$b_PID"
wait "$b_PID" 2>/dev/null
kill -0 "$b_PID" 2>/dev/null
check "replica b was killed mid-run" $((1 - $?)) "still running"
tail -n +"$((lines_before + 1))" "$TMP/nginx/logs/access.log" >"$TMP/access2.log"
ok2=$(grep -c '^200$' "$TMP/phase2.status")
lost=$((N2 - ok2))
# A request lost is one nginx had sent to b when b died: logged 502 with b as its only upstream.
in_flight_b=$(grep -c "infer 502 \[127.0.0.1:$b_PORT\]" "$TMP/access2.log")
echo "     phase 2: $ok2 of $N2 answered 200; $lost lost; $in_flight_b in flight on b when killed"
check "phase 2: lost requests ($lost) are those in flight on b ($in_flight_b), at most $CONC" \
    $((lost != in_flight_b || lost > CONC)) "statuses: $(sort "$TMP/phase2.status" | uniq -c | tr '\n' ' ')"
after_kill_a=$(tail -n 20 "$TMP/access2.log" | grep -c "infer 200 \[127.0.0.1:$a_PORT\]")
check "after the kill, replica a answers everything" $((after_kill_a != 20)) "$(tail -n 5 "$TMP/access2.log")"
URL=$URL_N expect "nginx still serves with one replica" 200 '"model_name": "fashion"' \
    POST /v2/models/fashion/infer "$KEY" "$TMP/fp32.json"

# The database goes away: a key that is not in the replica's cache cannot be checked, which is
# 503 with Retry-After (not 401, which would tell clients their key is bad); when it is back, the
# replica reconnects by itself, and usage it could not flush meanwhile is flushed then (the
# totals below).
# A key no replica has looked up yet, so that its check needs the database.
FRESH=$("$AMUSE" keys create --tenant acme --scope infer --db "$DB" 2>/dev/null)
pg_stop_cluster "$TMP/pg"
URL=$URL_A expect "PostgreSQL down: 503, the key database is unavailable" 503 \
    "key database is unavailable" POST /v2/models/fashion/infer "$FRESH" "$TMP/fp32.json"
grep -qi "^Retry-After: 1" "$TMP/hdr"
check "PostgreSQL down: Retry-After: 1" $? "$(cat "$TMP/hdr")"
pg_restart_cluster "$TMP/pg" || bad "restart PostgreSQL"
URL=$URL_A expect "PostgreSQL back: the replica reconnects" 200 '"model_name": "fashion"' \
    POST /v2/models/fashion/infer "$FRESH" "$TMP/fp32.json"

# Usage: stop a cleanly (it flushes), then PostgreSQL holds base + every request a answered in
# phase 2 (the last check's request too) + what b flushed before it died, at most all b took.
SERVER_PID=$a_PID
stop_server
check "replica a stops cleanly on SIGTERM" $? "$(tail -n 3 "$TMP/a.log")"
# (+1: the request through nginx after the kill)
a2=$(($(grep -c "\[127.0.0.1:$a_PORT\]\|, 127.0.0.1:$a_PORT\]" "$TMP/access2.log") + 1))
b2=$(grep -c "\[127.0.0.1:$b_PORT\]\|\[127.0.0.1:$b_PORT, " "$TMP/access2.log")
total=$(usage_of "$KEY_ID")
echo "     usage in PostgreSQL: $total = $base (phase 1) + $a2 (a) + up to $b2 (b)"
check "usage in PostgreSQL adds up: $base + $a2 <= $total <= $base + $a2 + $b2" \
    $((total < base + a2 || total > base + a2 + b2)) "total $total"
list=$("$AMUSE" keys list --db "$DB" 2>&1)
echo "$list" | grep -q "$KEY_ID .* $total " 
check "amuse keys list --db postgres://... shows the total" $? "$list"

finish
