#!/usr/bin/env bash
# cli_serve_events.sh - user data on a real `amuse serve` (loopback, random port): POST /v1/events
# and /v1/items, GET /v1/items/{item} with review sentiment from the shipped sentiment model, the
# admin-only /v1/users/{user} routes, tenant walls (tenant A cannot read, delete or export B's
# users, items or events), idempotency, every bad input of the rules, no payload in the logs,
# delete-my-data with a scan of the database file and its -wal, and a batch that survives a kill -9
# of the server in the middle of its transaction all or nothing.
#
# usage: bash cli_serve_events.sh <path to amuse> <fixtures dir>
# Needs curl and python3 (stdlib only). Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-events
for need in /usr/bin/curl "$PYTHON"; do
    [ -x "$need" ] || { bad "needs $need"; echo "$passed passed, $failed failed"; exit 1; }
done
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

REPO="$TMP/repo"
mkdir -p "$REPO"
cp -r "$SRC/models/default/sentiment-en" "$REPO/"
DB="$TMP/keys.db"
key() { "$AMUSE" keys create --tenant "$1" --scope "$2" --db "$DB" 2>/dev/null; }
AI=$(key acme infer)
AA=$(key acme admin)
BI=$(key beta infer)
BA=$(key beta admin)
start_server main || finish

# json FILE EXPR: print a Python expression over the JSON document in FILE (as d).
json() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
NOW=$(date +%s)
U=zz-user-4417-quokka
SECRET="marmalade-zebra-7731 was a warm, funny and beautifully acted film"

# ------------------------------------------------------------------------------- events in
cat >"$TMP/batch1.json" <<JSON
{"events": [
  {"user": "$U", "item": "m1", "type": "rating", "value": 4.5, "timestamp": $((NOW - 300))},
  {"user": "$U", "item": "m2", "type": "play", "timestamp": $((NOW - 200))},
  {"user": "$U", "item": "m1", "type": "review", "text": "$SECRET", "timestamp": $((NOW - 100))},
  {"user": "other-user", "item": "m1", "type": "review", "text": "Not worth the ticket price, a boring mess.", "timestamp": $((NOW - 50))}
]}
JSON
expect "a batch goes in" 200 '"accepted": 4, "reviews": 2, "reviews_scored": 2' POST /v1/events "$AI" "$TMP/batch1.json"
cat >"$TMP/items.json" <<'JSON'
{"items": [{"id": "m1", "title": "Heat (1995)", "tags": ["Crime", "Drama"]}, {"id": "m3", "title": "Up"}]}
JSON
expect "items upsert: one new, one filled in" 200 '"created": 1, "updated": 1' POST /v1/items "$AI" "$TMP/items.json"
expect "an item with its reviews" 200 '"title": "Heat (1995)"' GET /v1/items/m1 "$AI"
cp "$TMP/body" "$TMP/m1.json"
got=$(json "$TMP/m1.json" '(d["tags"], d["events"], d["reviews"]["count"], d["reviews"]["scored"])')
[ "$got" = "(['Crime', 'Drama'], 3, 2, 2)" ]
check "the item counts its events and scored reviews" $? "$got"
# The mean is the mean of the two reviews' scores as /v1/text/sentiment gives them.
"$PYTHON" -c 'import json,sys; print(json.dumps({"model": "sentiment-en", "input": [sys.argv[1], "Not worth the ticket price, a boring mess."]}))' "$SECRET" >"$TMP/two.json"
expect "the same texts scored directly" 200 '"object": "list"' POST /v1/text/sentiment "$AI" "$TMP/two.json"
"$PYTHON" - "$TMP/m1.json" "$TMP/body" <<'PY'
import json, sys
item, direct = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
scores = [x["score"] for x in direct["data"]]
assert scores[0] > 0 > scores[1], scores
assert abs(item["reviews"]["sentiment_mean"] - sum(scores) / 2) < 1e-5, (item, scores)
PY
check "sentiment_mean is the mean of the reviews' scores" $? "$(cat "$TMP/m1.json")"
expect "an undeclared item was created without metadata" 200 '"title": null' GET /v1/items/m2 "$AI"

# --------------------------------------------------------------------- reading a user back
expect "an infer key may not read a person's events" 403 "" GET "/v1/users/$U/events" "$AI"
expect "the tenant's admin key reads them, newest first" 200 '"object": "list"' GET "/v1/users/$U/events?limit=2" "$AA"
cp "$TMP/body" "$TMP/page1.json"
got=$(json "$TMP/page1.json" '([e["type"] for e in d["data"]], d["next"] is not None)')
[ "$got" = "(['review', 'play'], True)" ]
check "page 1: the review, then the play, and a cursor" $? "$got"
NEXT=$(json "$TMP/page1.json" 'd["next"]')
expect "page 2 from the cursor" 200 '"next": null' GET "/v1/users/$U/events?limit=2&before=$NEXT" "$AA"
got=$(json "$TMP/body" '[(e["type"], e["value"]) for e in d["data"]]')
[ "$got" = "[('rating', 4.5)]" ]
check "page 2: the rating and nothing more" $? "$got"
expect "limit=0 is refused" 400 "limit" GET "/v1/users/$U/events?limit=0" "$AA"
expect "a bad cursor is refused" 400 "before" GET "/v1/users/$U/events?before=x" "$AA"
expect "an unknown user is a 404" 404 "no user" GET /v1/users/nobody/events "$AA"

# ----------------------------------------------------------------------------- tenant walls
cat >"$TMP/beta.json" <<JSON
{"events": [{"user": "$U", "item": "b-only-item", "type": "like"}]}
JSON
expect "beta posts for a user of the same name" 200 '"accepted": 1' POST /v1/events "$BI" "$TMP/beta.json"
expect "beta cannot read acme's item" 404 "no item" GET /v1/items/m1 "$BI"
expect "acme cannot read beta's item" 404 "no item" GET /v1/items/b-only-item "$AI"
expect "beta's admin sees only beta's events of the id" 200 '"b-only-item"' GET "/v1/users/$U/events" "$BA"
got=$(json "$TMP/body" 'len(d["data"])')
[ "$got" = 1 ]
check "beta's list holds one event, none of acme's" $? "$got"
expect "beta cannot export acme's other-user" 404 "no user" GET /v1/users/other-user/export "$BA"
expect "beta cannot delete acme's other-user" 404 "no user" DELETE /v1/users/other-user "$BA"
expect "acme's other-user is still there" 200 '"other-user"' GET /v1/users/other-user/export "$AA"

# ------------------------------------------------------------------------------ idempotency
cat >"$TMP/idem.json" <<JSON
{"events": [{"user": "idem-user", "item": "m1", "type": "like"}, {"user": "idem-user", "item": "m3", "type": "view"}]}
JSON
idem() { # idem KEY FILE: status; body in $TMP/body, headers in $TMP/hdr
    curl -s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $AI" \
        -H "Idempotency-Key: $1" -H 'Content-Type: application/json' --data-binary "@$2" "$URL/v1/events"
}
s1=$(idem order-42 "$TMP/idem.json"); cp "$TMP/body" "$TMP/idem1.out"
s2=$(idem order-42 "$TMP/idem.json")
[ "$s1" = 200 ] && [ "$s2" = 200 ] && cmp -s "$TMP/idem1.out" "$TMP/body" && grep -qi '^Idempotent-Replayed: true' "$TMP/hdr"
check "the same key and body replay the first reply" $? "$s1 $s2 $(cat "$TMP/idem1.out") / $(cat "$TMP/body")"
expect "the retry wrote nothing" 200 '"object": "list"' GET /v1/users/idem-user/events "$AA"
got=$(json "$TMP/body" 'len(d["data"])')
[ "$got" = 2 ]
check "idem-user has 2 events, not 4" $? "$got"
sed 's/"view"/"play"/' "$TMP/idem.json" >"$TMP/idem2.json"
s3=$(idem order-42 "$TMP/idem2.json")
[ "$s3" = 409 ] && grep -q "different body" "$TMP/body"
check "the same key with another body is a 409" $? "$s3 $(cat "$TMP/body")"
# Eight racing retries of one new key: one batch is written, and every reply is its reply.
sed 's/idem-user/race-user/g' "$TMP/idem.json" >"$TMP/race.json"
RACERS=()
for i in 1 2 3 4 5 6 7 8; do
    curl -s -o "$TMP/race.$i" --max-time 30 -H "Authorization: Bearer $AI" -H "Idempotency-Key: race-7" \
        -H 'Content-Type: application/json' --data-binary "@$TMP/race.json" "$URL/v1/events" &
    RACERS+=($!)
done
wait "${RACERS[@]}" # not the server, which is a child too
got=$(cat "$TMP"/race.? | sort | uniq -c | wc -l)
[ "$got" = 1 ] && grep -q '"accepted": 2' "$TMP/race.1"
check "eight racing retries got one and the same reply" $? "$(cat "$TMP"/race.?)"
expect "... and wrote one batch" 200 '"race-user"' GET /v1/users/race-user/events "$AA"
got=$(json "$TMP/body" 'len(d["data"])')
[ "$got" = 2 ]
check "race-user has 2 events" $? "$got"
s4=$(idem "bad key" "$TMP/idem.json")
[ "$s4" = 400 ] && grep -q "Idempotency-Key" "$TMP/body"
check "a key with a space is refused" $? "$s4 $(cat "$TMP/body")"

# ------------------------------------------------------------------------------ bad input
bad_batch() { # NAME STATUS NEEDLE JSON-EVENTS
    printf '{"events": [{"user": "bad-user", "item": "m1", "type": "like"}, %s]}' "$4" >"$TMP/bad.json"
    expect "$1" "$2" "$3" POST /v1/events "$AI" "$TMP/bad.json"
}
bad_batch "rating out of range" 422 "events[1].value: rating 7 is outside 0.5..5" '{"user": "bad-user", "item": "m1", "type": "rating", "value": 7}'
bad_batch "rating without a value" 422 "events[1].value: a rating needs a value" '{"user": "bad-user", "item": "m1", "type": "rating"}'
bad_batch "timestamp in the future" 422 "events[1].timestamp:" "{\"user\": \"bad-user\", \"item\": \"m1\", \"type\": \"play\", \"timestamp\": $((NOW + 86400))}"
bad_batch "unknown type" 400 "events[1].type: 'buy'" '{"user": "bad-user", "item": "m1", "type": "buy"}'
bad_batch "unknown field" 400 "events[1].timestmap: unknown field" '{"user": "bad-user", "item": "m1", "type": "play", "timestmap": 5}'
bad_batch "review without text" 422 "events[1].text: a review needs its text" '{"user": "bad-user", "item": "m1", "type": "review"}'
bad_batch "text on a like" 422 "only review events carry text" '{"user": "bad-user", "item": "m1", "type": "like", "text": "hi"}'
bad_batch "an id with a space" 422 "events[1].user: white space" '{"user": "bad user", "item": "m1", "type": "like"}'
printf '{"events": [{"user": "bad-user", "item": "m1", "type": "review", "text": "good \xff\xfe bad"}]}' >"$TMP/utf8.json"
expect "invalid UTF-8 in a review" 422 "events[0].text: invalid UTF-8 at byte 5" POST /v1/events "$AI" "$TMP/utf8.json"
bad_batch "a review holding \\u0000 (it would be cut there)" 400 'may not contain \\u0000 (byte 130)' '{"user": "bad-user", "item": "m1", "type": "review", "text": "fine\u0000 hidden"}'
"$PYTHON" -c 'import json; print(json.dumps({"events": [{"user": "bad-user", "item": "m%d" % i, "type": "view"} for i in range(1001)]}))' >"$TMP/big.json"
expect "a batch over the cap" 413 "more than the 1000" POST /v1/events "$AI" "$TMP/big.json"
echo '{"events": []}' >"$TMP/empty.json"
expect "an empty batch" 400 "1 to 1000 events" POST /v1/events "$AI" "$TMP/empty.json"
echo '{"events": [' >"$TMP/trunc.json"
expect "not JSON" 400 "invalid JSON" POST /v1/events "$AI" "$TMP/trunc.json"
echo '{"events": [{"user": "x", "item": "y", "type": "like"}], "extra": 1}' >"$TMP/extra.json"
expect "an unknown top-level field" 400 "extra: unknown field" POST /v1/events "$AI" "$TMP/extra.json"
echo '{"items": [{"id": "m9", "tags": ["a|b"]}]}' >"$TMP/baditem.json"
expect "a tag holding the separator" 400 "items[0].tags[0]" POST /v1/items "$AI" "$TMP/baditem.json"
expect "a refused batch stored none of its good events" 404 "no user" GET /v1/users/bad-user/events "$AA"

# hold_database write|read NAME: another connection to the database takes the write lock (BEGIN
# IMMEDIATE) or holds a read snapshot open, until `let_go NAME`. Returns once it holds it; no
# sleep decides anything (the waits are for files the holder and this script write).
hold_database() {
    "$PYTHON" - "$DB" "$1" "$TMP/$2.ready" "$TMP/$2.release" <<'PY' &
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
if sys.argv[2] == "write":
    c.execute("BEGIN IMMEDIATE")
else:
    c.execute("BEGIN")
    c.execute("SELECT COUNT(*) FROM ev_events").fetchall()
open(sys.argv[3], "w").close()
end = time.time() + 300
while not os.path.exists(sys.argv[4]) and time.time() < end:
    time.sleep(0.05)
c.execute("ROLLBACK")
PY
    eval "holder_$2=$!"
    for _ in $(seq 600); do [ -e "$TMP/$2.ready" ] && break; sleep 0.1; done
}
let_go() {
    touch "$TMP/$1.release"
    eval "wait \$holder_$1"
}

# A write lock held elsewhere (amuse events import of a large file, another process) past the
# busy timeout: 503 with Retry-After, not a 500; the same batch goes in once the lock is let go.
hold_database write lock
echo '{"events": [{"user": "lock-user", "item": "lock-item", "type": "like"}]}' >"$TMP/lock.json"
expect "a write lock held elsewhere: 503" 503 "database is locked" POST /v1/events "$AI" "$TMP/lock.json"
grep -qi '^Retry-After: 1' "$TMP/hdr"
check "... with Retry-After" $? "$(cat "$TMP/hdr")"
let_go lock
expect "the lock let go: the same batch goes in" 200 '"accepted": 1' POST /v1/events "$AI" "$TMP/lock.json"

# ---------------------------------------------------------------------- export, then delete
expect "export (the access request)" 200 '"object": "user_export"' GET "/v1/users/$U/export" "$AA"
"$PYTHON" - "$TMP/body" "$TMP/batch1.json" "$U" <<'PY'
import json, sys
exp, posted, user = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
mine = [e for e in posted["events"] if e["user"] == user]
assert exp["user"]["id"] == user, exp["user"]
got = [(e["item"], e["type"], e.get("value"), e.get("text"), e["timestamp"]) for e in exp["events"]]
want = [(e["item"], e["type"], e.get("value", None if e["type"] in ("rating", "review") else 1),
         e.get("text"), e["timestamp"]) for e in mine]
assert got == want, (got, want)
assert all(-1 <= e["sentiment"] <= 1 for e in exp["events"] if e["type"] == "review"), exp
PY
check "the export holds exactly what was posted for the user" $? "$(head -c 400 "$TMP/body")"
expect "an infer key may not delete" 403 "" DELETE "/v1/users/$U" "$AI"
expect "delete-my-data" 200 '"deleted": {"events": 3, "reviews": 1, "profile": 1}' DELETE "/v1/users/$U" "$AA"
expect "the user's events are gone" 404 "no user" GET "/v1/users/$U/events" "$AA"
expect "the export is gone" 404 "no user" GET "/v1/users/$U/export" "$AA"
expect "beta's user of the same name is untouched" 200 '"b-only-item"' GET "/v1/users/$U/events" "$BA"
got=$(curl -s -H "Authorization: Bearer $AI" "$URL/v1/items/m1" | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["events"], d["reviews"]["count"])')
[ "$got" = "3 1" ] # left: other-user's review, idem-user's and race-user's likes
check "the item's counts lost the user's rating and review" $? "$got"
# Beta's copy of the id is still in the file, so scan for acme's review text and for the id
# after beta deletes its user too.
expect "beta deletes its user" 200 '"events": 1' DELETE "/v1/users/$U" "$BA"
scan() { # scan NEEDLE: 0 when neither the database nor its -wal holds it
    ! grep -qaF -- "$1" "$DB" "$DB-wal" 2>/dev/null
}
scan "$U"; check "the database and its -wal hold no trace of the user id" $? "found $U"
scan "marmalade-zebra-7731"; check "... nor of the review text" $? "found the review"
grep -qaF "other-user" "$DB" "$DB-wal"
check "(the scan can see: another user's id is found)" $? "other-user not found"

# A reader holding the log keeps the purge from finishing: the rows are gone but their old
# pages may still be in the -wal, so the reply is 503 with Retry-After and says to retry; the
# retry (which finds nothing) purges. The reader lets go only when this script says so.
echo '{"events": [{"user": "purge-user", "item": "m1", "type": "review", "text": "quokka-saffron-4410"}]}' >"$TMP/purge.json"
expect "a user to delete under a reader" 200 '"accepted": 1' POST /v1/events "$AI" "$TMP/purge.json"
hold_database read reader
expect "delete under a reader: 503, not yet purged" 503 "retry the delete to purge them" DELETE /v1/users/purge-user "$AA"
grep -qi '^Retry-After: 1' "$TMP/hdr"
check "... with Retry-After" $? "$(cat "$TMP/hdr")"
expect "the rows are gone all the same" 404 "no user" GET /v1/users/purge-user/events "$AA"
grep -qaF "quokka-saffron-4410" "$DB" "$DB-wal"
check "(before the purge the files still hold the review: the scan below can see it)" $? "not found"
let_go reader
expect "the retried delete purges" 404 "marked deleted all the same" DELETE /v1/users/purge-user "$AA"
scan "quokka-saffron-4410"; check "after the retry: no trace of the review in the files" $? "found it"

# ------------------------------------------------------------------------- nothing logged
grep -qF "$U" "$TMP/main.log" "$TMP/main.out"; [ $? -ne 0 ]
check "the access log holds no user id" $? "$(grep -F "$U" "$TMP/main.log" | head -2)"
grep -qF "marmalade" "$TMP/main.log" "$TMP/main.out"; [ $? -ne 0 ]
check "the logs hold no review text" $? "found it"
grep -qF '"path": "/v1/users/{user}/events"' "$TMP/main.log"
check "user routes are logged by their pattern" $? "$(grep users "$TMP/main.log" | head -2)"
stop_server
check "the server stops cleanly" $? "exit status $?"
scan "$U"; check "after shutdown: still no trace of the user id" $? "found $U"

# ------------------------------------------------------------- kill -9 inside a batch
start_server paused --debug-events-pause 1 || finish
echo '{"events": [{"user": "crash-user", "item": "m1", "type": "like"}]}' >"$TMP/one.json"
expect "a one-event batch is not paused and commits" 200 '"accepted": 1' POST /v1/events "$AI" "$TMP/one.json"
"$PYTHON" -c 'import json; print(json.dumps({"events": [{"user": "crash-user", "item": "c%d" % i, "type": "play"} for i in range(10)]}))' >"$TMP/ten.json"
curl -s -o /dev/null --max-time 60 -H "Authorization: Bearer $AI" -H 'Content-Type: application/json' \
    --data-binary "@$TMP/ten.json" "$URL/v1/events" &
CURL_PID=$!
for _ in $(seq 1 300); do
    grep -q "paused inside a batch" "$TMP/paused.log" && break
    sleep 0.1
done
grep -q "paused inside a batch" "$TMP/paused.log"
check "the batch stopped half-way inside its transaction" $? "$(tail -n 3 "$TMP/paused.log")"
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
wait "$CURL_PID" 2>/dev/null
start_server after || finish
expect "after kill -9 and restart the store opens" 200 '"crash-user"' GET /v1/users/crash-user/events "$AA"
got=$(json "$TMP/body" 'len(d["data"])')
[ "$got" = 1 ]
check "the committed event is there and the killed batch is absent, not half there" $? "$got events"
expect "none of the killed batch's items was created" 404 "no item" GET /v1/items/c0 "$AI"
expect "the server takes the batch again" 200 '"accepted": 10' POST /v1/events "$AI" "$TMP/ten.json"
stop_server
finish
