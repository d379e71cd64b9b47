#!/usr/bin/env bash
# cli_events.sh - `amuse events import|items` and `amuse recommend train --tenant`: CSV (quoted
# fields) and JSON lines go into one tenant of a real SQLite database; a bad line anywhere is an
# error naming file:line and the field, and stores nothing; reviews are scored with the shipped
# sentiment model; training reads the tenant's events and titles back.
#
# usage: bash cli_events.sh <path to amuse> <fixtures dir>
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/amuse-cli-events.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1: $3"; fi; }
DB="$TMP/data.db"

# fails NAME NEEDLE ARGS...: the command exits non-zero and says NEEDLE on stderr
fails() {
    local name=$1 needle=$2
    shift 2
    if "$AMUSE" "$@" >"$TMP/out" 2>"$TMP/err"; then
        bad "$name: exit 0, expected a failure"
    elif ! grep -qF -- "$needle" "$TMP/err"; then
        bad "$name: stderr lacks '$needle': $(head -c 300 "$TMP/err")"
    else
        ok "$name: $(head -n 1 "$TMP/err")"
    fi
}

NOW=$(date +%s)
cat >"$TMP/events.csv" <<CSV
user,item,type,value,timestamp,text
u1,m1,rating,4.5,1260759144,
u1,m2,review,,1260759179,"Warm, funny and ""beautifully"" acted."
u2,m1,play,,,
u2,m3,like,,$((NOW - 10)),
u3,m2,rating,1,1260759200,
CSV
"$AMUSE" events import --db "$DB" --tenant demo --sentiment-model "$SRC/models/default/sentiment-en/1" \
    "$TMP/events.csv" >"$TMP/out" 2>"$TMP/err"
check "CSV import" $? "$(cat "$TMP/err")"
grep -q "5 events (1 reviews, 1 scored) for tenant demo" "$TMP/out"
check "it counts events, reviews and scores" $? "$(cat "$TMP/out")"

printf 'id,title,tags\nm1,"Heat (1995)",Crime|Drama\nm2,"American President, The (1995)",Comedy\n' >"$TMP/items.csv"
"$AMUSE" events items --db "$DB" --tenant demo "$TMP/items.csv" >"$TMP/out" 2>"$TMP/err"
grep -q "2 items for tenant demo: 0 new, 2 updated" "$TMP/out"
check "items fill in the items the events created" $? "$(cat "$TMP/out" "$TMP/err")"
printf '{"id": "m4", "title": "Up (2009)", "tags": ["Animation", "Adventure"]}\n' >"$TMP/items.jsonl"
"$AMUSE" events items --db "$DB" --tenant demo "$TMP/items.jsonl" >"$TMP/out" 2>"$TMP/err"
grep -q "1 new, 0 updated" "$TMP/out"
check "items from JSON lines" $? "$(cat "$TMP/out" "$TMP/err")"
cat >"$TMP/events.jsonl" <<'JSONL'
{"user": "u3", "item": "m4", "type": "rating", "value": 5, "timestamp": 1260759300}

{"user": "u4", "item": "m4", "type": "view"}
JSONL
"$AMUSE" events import --db "$DB" --tenant demo "$TMP/events.jsonl" >"$TMP/out" 2>"$TMP/err"
grep -q "2 events (0 reviews, 0 scored)" "$TMP/out"
check "events from JSON lines (blank lines skipped)" $? "$(cat "$TMP/out" "$TMP/err")"

# The same file again, under another name: seen from its contents, nothing stored twice (the
# quick start's loader may run again); --again stores a second copy. Tenant demo2, so the
# counts of demo below stay as they are.
cp "$TMP/events.csv" "$TMP/renamed.csv"
"$AMUSE" events import --db "$DB" --tenant demo2 "$TMP/events.csv" >"$TMP/out" 2>"$TMP/err"
check "a first import into demo2" $? "$(cat "$TMP/err")"
"$AMUSE" events import --db "$DB" --tenant demo2 "$TMP/renamed.csv" >"$TMP/out" 2>"$TMP/err"
check "importing the same contents again succeeds" $? "$(cat "$TMP/err")"
grep -q "renamed.csv: already imported into tenant demo2 as batch import_[0-9a-f]\{16\} (5 events stored); nothing done" "$TMP/out"
check "... and stores nothing, saying so" $? "$(cat "$TMP/out")"
"$AMUSE" events import --db "$DB" --tenant demo2 --again "$TMP/renamed.csv" >"$TMP/out" 2>"$TMP/err"
grep -q "5 events (1 reviews, 0 scored) for tenant demo2, batch import_[0-9a-f]\{16\}_[0-9a-f]\{16\}" "$TMP/out"
check "--again stores a second copy under a batch of its own" $? "$(cat "$TMP/out" "$TMP/err")"
got=$(/usr/bin/python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*), COUNT(DISTINCT batch) FROM ev_events WHERE tenant = ?", ("demo2",)).fetchone())' "$DB")
[ "$got" = "(10, 2)" ]
check "demo2 holds the file twice, not three times" $? "$got"

# Every bad line names file:line and the field; nothing of the file is stored.
printf 'user,item,type,value\nu9,m1,like,\nu9,m1,rating,7\n' >"$TMP/range.csv"
fails "rating out of range" "range.csv:3: value: rating 7 is outside 0.5..5" events import --db "$DB" --tenant demo "$TMP/range.csv"
printf 'user,item,type,timestamp\nu9,m1,like,%s\n' $((NOW + 86400)) >"$TMP/future.csv"
fails "timestamp in the future" "future.csv:2: timestamp:" events import --db "$DB" --tenant demo "$TMP/future.csv"
printf 'user,item,type,text\nu9,m1,review,"good \xff bad"\n' >"$TMP/utf8.csv"
fails "invalid UTF-8 in a review" "utf8.csv:2: text: invalid UTF-8 at byte 5" events import --db "$DB" --tenant demo "$TMP/utf8.csv"
printf 'user,item,type\nu9,m1,like\nu9,m1,"unclosed\n' >"$TMP/quote.csv"
fails "an unclosed quote" "quote.csv:3: a quoted field is not closed" events import --db "$DB" --tenant demo "$TMP/quote.csv"
printf 'user,item,kind\nu9,m1,like\n' >"$TMP/header.csv"
fails "an unknown column" "header.csv:1: unknown column 'kind'" events import --db "$DB" --tenant demo "$TMP/header.csv"
printf 'user,item,type\nu9,m1\n' >"$TMP/short.csv"
fails "a short line" "short.csv:2: 2 fields, the header names 3" events import --db "$DB" --tenant demo "$TMP/short.csv"
printf '{"user": "u9", "item": "m1", "type": "like"}\n{"user": "u9", "item": "m1", "type": "like", "when": 5}\n' >"$TMP/field.jsonl"
fails "an unknown JSON field" "field.jsonl:2: when: unknown field" events import --db "$DB" --tenant demo "$TMP/field.jsonl"
printf '{"user": "u9", "item": "m1", "type": "like"}\nnot json\n' >"$TMP/notjson.jsonl"
fails "a line that is not JSON" "notjson.jsonl:2: invalid JSON at byte 0" events import --db "$DB" --tenant demo "$TMP/notjson.jsonl"
printf '{"user": "u9", "item": "m1", "type": "like"}\n[1]\n' >"$TMP/list.jsonl"
fails "a line that is a list" "list.jsonl:2: the document must be a JSON object" events import --db "$DB" --tenant demo "$TMP/list.jsonl"
printf '{"user": "u9", "item": "m1", "type": "review", "text": "fine\\u0000 hidden"}\n' >"$TMP/nul.jsonl"
fails "a review with \\u0000" "nul.jsonl:1: JSON strings may not contain \\u0000 (byte 60)" events import --db "$DB" --tenant demo "$TMP/nul.jsonl"
fails "a bad tenant name" "--tenant: 'a b'" events import --db "$DB" --tenant "a b" "$TMP/events.csv"
fails "a missing file" "cannot read the events" events import --db "$DB" --tenant demo "$TMP/none.csv"

# Training reads the tenant back: u9's good lines before each bad one were never stored.
"$AMUSE" recommend train --db "$DB" --tenant demo --algo pop --output "$TMP/model" >"$TMP/out" 2>"$TMP/err"
check "recommend train --tenant" $? "$(cat "$TMP/err")"
grep -q "trained pop on 7 events: 4 users, 4 items" "$TMP/out"
check "it sees the 7 stored events of 4 users (none of u9's)" $? "$(cat "$TMP/out")"
grep -q "m2	American President, The (1995)	Comedy" "$TMP/model/item_meta.tsv"
check "titles and tags come from the tenant's items" $? "$(cat "$TMP/model/item_meta.tsv" 2>&1 | head -3)"
fails "another tenant has no events" "tenant 'other' has no events" recommend train --db "$DB" --tenant other --algo pop --output "$TMP/m2"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
