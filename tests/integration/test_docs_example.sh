#!/usr/bin/env bash
# test_docs_example: the README's "Your own source, an event, a query, a
# rule" runs as written. The config file, the rules file, the commands and
# the query are taken from README.md (the fenced block after each
# "<!-- example: NAME -->" line) and run in a scratch folder where `build`
# is the build tree and `scripts` the checkout's, against the local stack:
#   - the piped event is stored once under source shop, the pushed one under
#     hooks (curl's 202 came after the broker's confirm), and the query
#     shows both;
#   - the rule fires and the notifier delivers the alert on its log channel;
#   - piping the same line again stores nothing new (the stdin adapter's ids
#     derive from source, line number and content).
set -euo pipefail
: "${SLUICE_PG_DSN:?SLUICE_PG_DSN must name the stack (scripts/stack.sh env)}"
BIN=${SLUICE_BIN_DIR:?SLUICE_BIN_DIR must name the build tree}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
README=$ROOT/README.md
WORK=$(mktemp -d /tmp/sluice-docs-example-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

HERE=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tests/integration/script_lib.sh
source "$HERE/script_lib.sh"

# example NAME: the fenced block after README's "<!-- example: NAME -->".
example() {
    local text
    text=$(awk -v m="<!-- example: $1 -->" '
        $0 == m { want = 1; next }
        want && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$README")
    [[ -n $text ]] || fail "README.md has no example '$1'"
    printf '%s\n' "$text"
}

sql() { psql "$SLUICE_PG_DSN" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }


# A stack that ran this before holds the event and its alert: forget both,
# so that this run has to store and deliver them again.
sql "DELETE FROM alert_deliveries WHERE alert_id IN
       (SELECT alert_id FROM alerts WHERE rule = 'big_order' AND source = 'shop');
     DELETE FROM alerts WHERE rule = 'big_order' AND source = 'shop';
     DELETE FROM event_ids WHERE msg_id IN
       (SELECT msg_id FROM events WHERE source IN ('shop', 'hooks'));
     DELETE FROM events WHERE source IN ('shop', 'hooks')" >/dev/null

example shop.conf >"$WORK/shop.conf"
example rules.json >"$WORK/rules.json"
ln -s "$BIN" "$WORK/build"
ln -s "$ROOT/scripts" "$WORK/scripts"
cd "$WORK"
# The worker's /metrics tells when the second copy was absorbed; the
# notifier serves none, so the two never want the same port.
metrics_port=${SLUICE_METRICS_PORT:-9650}
export SLUICE_METRICS_PORT=$metrics_port

# As the README runs them: its lines in this shell, so that the worker it
# starts with & is this shell's job.
eval "$(example run)" >run.log 2>&1
pids+=("$!")
kill -0 "${pids[0]}" 2>/dev/null || fail "the README's worker is not running"
build/notifier/sluice-notifier --metrics-port 0 >notifier.log 2>&1 &
pids+=("$!")
eval "$(example push)" >push.log 2>&1 || fail "the README's push failed: $(cat push.log)"
pids+=("$!")
grep -q '"accepted":1' push.log || fail "curl did not get the door's 202 answer: $(cat push.log)"

stored() { [[ $(sql "SELECT count(*) FROM events WHERE source = 'shop' AND payload->>'order_id' = 'A-1'") == "$1" ]]; }
wait_until 30 "the piped event stored" stored 1
pushed() { [[ $(sql "SELECT count(*) FROM events WHERE source = 'hooks' AND payload->>'order_id' = 'B-7'") == 1 ]]; }
wait_until 30 "the pushed event stored" pushed
out=$(eval "$(example query)") || fail "the README's query failed"
grep -q 'A-1' <<<"$out" && grep -q '1250' <<<"$out" && grep -q 'B-7' <<<"$out" ||
    fail "the README's query does not show both events: $out"

delivered() {
    [[ $(sql "SELECT count(*) FROM alerts a JOIN alert_deliveries d USING (alert_id)
              WHERE a.rule = 'big_order' AND a.source = 'shop' AND d.channel = 'log' AND d.state = 'sent'") == 1 ]]
}
wait_until 30 "the rule's alert delivered on the log channel" delivered

# The same line again: the same message id, so no second row.
producer_line=$(example run | grep -A1 '^echo ')
eval "$producer_line" >>run.log 2>&1 || fail "piping the event again failed"
duplicates() {
    curl -fsS "http://127.0.0.1:$metrics_port/metrics" |
        awk '$1 == "sluice_events_duplicate_total{source=\"shop\"}" && $2 >= 1 { found = 1 } END { exit !found }'
}
wait_until 30 "the second copy counted as a duplicate by the worker" duplicates
stored 1 || fail "piping the same event again stored it twice"
echo "test_docs_example: README example ran: piped and pushed events stored once, queried, alert delivered, re-run absorbed"
