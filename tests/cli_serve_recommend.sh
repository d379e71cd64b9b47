#!/usr/bin/env bash
# cli_serve_recommend.sh - recommendations from a real `amuse serve` on a loopback port: a tiny
# two-taste-groups recommender trained here (`amuse recommend train`) loads as a model kind;
# GET /v1/recommendations favours the user's own group and explains itself, a user the model
# does not know gets a cold-start answer that says so, a like given with the request changes the
# list, tags filter, GET /v1/items/{id}/similar stays in-group, the admin stats route carries the
# model's eval.json figures, another tenant's key cannot reach the model, a retrained version is
# picked up by a reload, and bad input gets a 4xx in OpenAI's error shape.
#
# usage: bash cli_serve_recommend.sh <path to amuse> <fixtures dir>
# Needs curl and python3 (stdlib only). Every wait is bounded; only 127.0.0.1 is used.
set -u

AMUSE=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve_lib.sh"
serve_lib_init cli-serve-recommend
for need in /usr/bin/curl "$PYTHON"; do
    [ -x "$need" ] || { bad "needs $need"; echo "$passed passed, $failed failed"; exit 1; }
done

# Two taste groups: users a<u> rate films A0..A5 except A<u>, users b<u> likewise B0..B5.
groups() {
    local g G u i
    for g in a b; do
        G=$(echo $g | tr ab AB)
        for u in 0 1 2 3 4 5; do
            for i in 0 1 2 3 4 5; do
                [ $i = $u ] || printf '%s%s\t%s%s\t%s\t%s\n' $g $u $G $i $(( (u + i) % 5 + 1 )) $((1000 + u * 10 + i))
            done
        done
    done
}
groups >"$TMP/events.tsv"
{ # the retrained version's data: one user more, a fan of three dramas
    groups
    for i in 1 2 3; do printf 'newcomer\tB%s\t5\t2000\n' $i; done
} >"$TMP/events2.tsv"
{
    for i in 0 1 2 3 4 5; do printf 'A%s\tAction film %s\tAction|Space\n' $i $i; done
    for i in 0 1 2 3 4 5; do printf 'B%s\tQuiet drama %s\tDrama\n' $i $i; done
} >"$TMP/items.tsv"

REPO="$TMP/repo"
mkdir -p "$REPO/films"
echo acme >"$REPO/films/tenants"
if ! "$AMUSE" recommend train --data "$TMP/events.tsv" --items "$TMP/items.tsv" --algo als \
    --factors 4 --alpha 2 --threads 1 --output "$REPO/films/1" >"$TMP/train.out" 2>&1; then
    bad "train the recommender: $(cat "$TMP/train.out")"
    echo "$passed passed, $failed failed"
    exit 1
fi
grep -q "held out (random split" "$TMP/train.out" && [ -s "$REPO/films/1/eval.json" ]
check "recommend train writes eval.json" $? "$(cat "$TMP/train.out")"
cp -r "$SRC/models/default/sentiment-en" "$REPO/"

ADMIN=$("$AMUSE" keys create --tenant ops --scope admin --db "$TMP/keys.db" 2>/dev/null)
ACME=$("$AMUSE" keys create --tenant acme --scope infer --db "$TMP/keys.db" 2>/dev/null)
BETA=$("$AMUSE" keys create --tenant beta --scope infer --db "$TMP/keys.db" 2>/dev/null)
start_server main || { echo "$passed passed, $failed failed"; exit 1; }
grep -q "model films version 1 loaded" "$TMP/main.log"
check "the recommender loads as a model kind" $? "$(grep films "$TMP/main.log")"

# json_check NAME PYTHON-EXPRESSION: evaluate it with r = the last body's JSON.
json_check() {
    "$PYTHON" - "$TMP/body" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = eval("(" + sys.argv[2] + ")")
sys.exit(0 if ok else 1)
PY
    check "$1" $? "$(head -c 400 "$TMP/body")"
}
R=/v1/recommendations

# The user's group first: a2 has seen every A film but A2.
expect "recommendations for a2" 200 '"cold_start": false' GET "$R?model=films&user=a2&k=3" "$ACME"
json_check "a2: A2 first, explained by another Action film; history folded in" \
    'r["data"][0]["id"] == "A2" and r["data"][0]["title"] == "Action film 2" and
     r["data"][0]["explanation"].startswith("because you liked Action film") and
     r["data"][0]["because"]["id"][0] == "A" and r["history"] == 5 and r["k"] == 3 and
     r["data"][0]["tags"] == ["Action", "Space"] and r["filter_seen"] is True'
expect "recommendations for b4" 200 '"object": "list"' GET "$R?model=films&user=b4&k=1" "$ACME"
json_check "b4: B4 first" 'r["data"][0]["id"] == "B4" and len(r["data"]) == 1'
expect "filter_seen=false keeps the user's own films" 200 '"filter_seen": false' \
    GET "$R?model=films&user=a2&k=5&filter_seen=false" "$ACME"
json_check "filter_seen=false: the top five are Action films" \
    'all(d["id"][0] == "A" for d in r["data"]) and len(r["data"]) == 5'
expect "tags filter" 200 '"tags": "drama,Comedy"' GET "$R?model=films&user=a2&k=10&tags=drama,Comedy" "$ACME"
json_check "tags=drama,Comedy: only the six dramas" \
    'sorted(d["id"] for d in r["data"]) == ["B%d" % i for i in range(6)]'

# Cold start, and a like folded in for one request.
expect "an unknown user is a cold start" 200 '"cold_start": true' GET "$R?model=films&user=stranger&k=4" "$ACME"
json_check "cold start: popular items, said so" \
    'r["history"] == 0 and len(r["data"]) == 4 and
     all("popular with everyone" in d["explanation"] and d["because"] is None for d in r["data"])'
expect "a like changes the list" 200 '"liked": 2' GET "$R?model=films&user=stranger&k=3&liked=B1,B2" "$ACME"
json_check "liked B1,B2: no longer cold, dramas first, the likes filtered out" \
    'r["cold_start"] is False and all(d["id"][0] == "B" and d["id"] not in ("B1", "B2")
     for d in r["data"]) and r["data"][0]["explanation"].startswith("because you liked Quiet drama")'

# Similar items stay in their group; the user list.
expect "similar items" 200 '"item": {"id": "A1"' GET "/v1/items/A1/similar?model=films&k=4" "$ACME"
json_check "similar to A1: four other Action films" \
    'len(r["data"]) == 4 and all(d["id"][0] == "A" and d["id"] != "A1" for d in r["data"])'
expect "the model's users" 200 '"events": 5' GET "/v1/models/films/users?limit=3" "$ACME"
json_check "three users listed" 'len(r["data"]) == 3'

# k: capped and said so.
expect "a huge k is capped" 200 '"warning": "k capped at 100"' GET "$R?model=films&user=a2&k=100000000000000000000" "$ACME"
json_check "capped k: 100, the ask kept" 'r["k"] == 100 and r["k_requested"] > 100 and len(r["data"]) == 7'
expect "similar: a huge k is capped" 200 '"warning": "k capped at 100"' GET "/v1/items/A1/similar?model=films&k=5000" "$ACME"

# The admin stats route shows the served model's accuracy and bias figures.
expect "stats carry the evaluation" 200 '"recommender": {"algo": "als"' GET /v2/models/films/stats "$ADMIN"
json_check "stats: eval.json figures" \
    'all(k in r["model_stats"][0]["recommender"]["evaluation"] for k in
         ("precision", "ndcg", "coverage", "gini", "arp", "aplt", "novelty")) and
     r["model_stats"][0]["recommender"]["users"] == 12'
cp "$TMP/body" "$TMP/stats.json"
# The same figures are Prometheus gauges, so a dashboard can watch bias across retrains.
expect "metrics carry the evaluation" 200 'amuse_model_evaluation{model="films",figure="gini"}' GET /metrics "$ADMIN"
"$PYTHON" - "$TMP/stats.json" "$TMP/body" <<'PY'
import json, re, sys
e = json.load(open(sys.argv[1]))["model_stats"][0]["recommender"]["evaluation"]
got = dict(re.findall(r'^amuse_model_evaluation\{model="films",figure="(\w+)"\} (\S+)$',
                      open(sys.argv[2]).read(), re.M))
want = {"k": e["k"], "gini": e["gini"], "arp": e["arp"], "aplt": e["aplt"],
        "novelty": e["novelty"], "precision_at_k": e["precision"], "ndcg_at_k": e["ndcg"],
        "coverage_at_k": e["coverage"]}
sys.exit(0 if all(abs(float(got[f]) - v) <= 1e-5 * max(1, abs(v)) for f, v in want.items())
         else 1)
PY
check "metrics: the stats route's figures, as gauges" $? "$(grep amuse_model_evaluation "$TMP/body" | head -c 400)"

# Tenant walls: beta's key sees no such model, on every route.
expect "another tenant: recommendations 404" 404 "model 'films' is not loaded (GET /v1/models lists the models)" GET "$R?model=films&user=a2" "$BETA"
expect "another tenant: similar 404" 404 "model 'films' is not loaded (GET /v1/models lists the models)" GET "/v1/items/A1/similar?model=films" "$BETA"
expect "another tenant: users 404" 404 "model 'films' is not loaded (GET /v1/models lists the models)" GET "/v1/models/films/users" "$BETA"

# Bad input: a 4xx in OpenAI's shape that says what is wrong.
expect "k=0" 400 "k must be a whole number of at least 1" GET "$R?model=films&user=a2&k=0" "$ACME"
json_check "OpenAI's error shape" 'r["error"]["type"] == "invalid_request_error" and "message" in r["error"]'
expect "k not a number" 400 "not 'ten'" GET "$R?model=films&user=a2&k=ten" "$ACME"
expect "no user" 400 "user: give the user's id" GET "$R?model=films" "$ACME"
expect "no model" 400 "'model' is missing: name a recommender (GET /v1/models lists the models)" GET "$R?user=a2" "$ACME"
expect "unknown model" 404 "model 'nope' is not loaded (GET /v1/models lists the models)" GET "$R?model=nope&user=a2" "$ACME"
expect "not a recommender" 400 "model 'sentiment-en' is a sentiment model, not a recommender (GET /v1/recommendations needs one)" GET "$R?model=sentiment-en&user=a2" "$ACME"
expect "bad filter_seen" 400 "filter_seen must be true or false" GET "$R?model=films&user=a2&filter_seen=maybe" "$ACME"
expect "a liked item the model lacks" 400 "liked: item 'Z9' is not in model 'films'" GET "$R?model=films&user=a2&liked=B1,Z9" "$ACME"
expect "an empty liked id" 400 "liked: give item ids" GET "$R?model=films&user=a2&liked=B1,,B2" "$ACME"
expect "a user id that is not UTF-8" 400 "user: not UTF-8 (byte 1)" GET "$R?model=films&user=a%FF" "$ACME"
expect "tags that are not UTF-8" 400 "tags: not UTF-8 (byte 0)" GET "$R?model=films&user=a2&tags=%C3" "$ACME"
expect "bad debias" 400 "debias must be a number from 0 to 10" GET "$R?model=films&user=a2&debias=11" "$ACME"
expect "unknown item" 404 "item 'Z9' is not in model 'films'" GET "/v1/items/Z9/similar?model=films" "$ACME"
expect "no key" 401 "" GET "$R?model=films&user=a2" ""
echo '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}' >"$TMP/v2.json"
expect "V2 infer points to the routes" 400 "/v1/recommendations" POST /v2/models/films/infer "$ACME" "$TMP/v2.json"

# Reload: a retrained version 2 (item-kNN this time) knows the newcomer (three dramas).
expect "before: the newcomer is cold" 200 '"cold_start": true' GET "$R?model=films&user=newcomer&k=2" "$ACME"
if "$AMUSE" recommend train --data "$TMP/events2.tsv" --items "$TMP/items.tsv" --algo itemknn \
    --threads 1 --output "$TMP/v2model" >"$TMP/train2.out" 2>&1; then
    mv "$TMP/v2model" "$REPO/films/2"
else
    bad "retrain: $(cat "$TMP/train2.out")"
fi
expect "the admin load route reloads" 200 '"version": "2", "loaded": true' POST /v2/repository/models/films/load "$ADMIN"
expect "after: the newcomer is known" 200 '"history": 3' GET "$R?model=films&user=newcomer&k=2" "$ACME"
json_check "after: dramas for the newcomer" \
    'r["cold_start"] is False and all(d["id"] in ("B0", "B4", "B5") for d in r["data"])'
expect "stats: the new version's algorithm" 200 '"version": "2"' GET /v2/models/films/stats "$ADMIN"
json_check "stats after the reload: item-kNN, 13 users" \
    'r["model_stats"][0]["recommender"]["algo"] == "itemknn" and
     r["model_stats"][0]["recommender"]["users"] == 13'
# The event store feeds the recommender: a newcomer's likes posted as events count at once,
# and a user deleted through the store is forgotten by the trained model.
ACME_ADMIN=$("$AMUSE" keys create --tenant acme --scope admin --db "$TMP/keys.db" 2>/dev/null)
printf '{"events": [{"user": "fan", "item": "A1", "type": "like"}, {"user": "fan", "item": "A2", "type": "like"}, {"user": "fan", "item": "A3", "type": "rating", "value": 5}]}' >"$TMP/fan.json"
expect "before its events the fan is cold" 200 '"cold_start": true' GET "$R?model=films&user=fan&k=3" "$ACME"
expect "the fan's events are stored" 200 '"accepted": 3' POST /v1/events "$ACME" "$TMP/fan.json"
expect "after its events the fan is known" 200 '"history": 3' GET "$R?model=films&user=fan&k=3" "$ACME"
json_check "the fan gets the other A films" \
    'r["cold_start"] is False and sorted(d["id"] for d in r["data"]) == ["A0", "A4", "A5"]'
expect "b3 has trained factors" 200 '"cold_start": false' GET "$R?model=films&user=b3&k=3" "$ACME"
expect "deleting b3, who has no stored events" 404 "marked deleted all the same" \
    DELETE /v1/users/b3 "$ACME_ADMIN"
expect "after the delete b3 is cold" 200 '"cold_start": true' GET "$R?model=films&user=b3&k=3" "$ACME"
expect "the fan is deleted" 200 '"events": 3' DELETE /v1/users/fan "$ACME_ADMIN"
expect "and cold again" 200 '"cold_start": true' GET "$R?model=films&user=fan&k=3" "$ACME"
expect "still walled after the reload" 404 "model 'films' is not loaded (GET /v1/models lists the models)" GET "$R?model=films&user=a2" "$BETA"

stop_server
check "the server stops cleanly" $? "exit status $?"
if grep -q "runtime error\|AddressSanitizer" "$TMP"/*.log; then
    bad "a sanitizer report in a server log: $(grep -h "runtime error\|AddressSanitizer" "$TMP"/*.log | head -3)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
