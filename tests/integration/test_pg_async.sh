#!/usr/bin/env bash
# test_pg_async: what a failover to an asynchronous standby loses. The
# primary does not wait for its standby at commit, so the worker acks a
# batch the standby may not have yet. The test makes that lag certain and
# measurable: the standby stops receiving WAL (pg-standby.sh detach, as if
# the network to it were cut) while a worker goes on storing; the worker is
# stopped (SIGTERM: it acks all it committed), the primary SIGKILLed, the
# standby promoted, and a worker drains the rest.
#
# The events lost are then exactly those the primary committed beyond the
# standby's last received WAL: acked, so gone from RabbitMQ, and never
# replicated. The test asserts the lost set equals (events on the primary
# at the kill) minus (events on the standby at promotion), that it is not
# empty, and that everything else is stored once - what docs/scaling.md
# states for asynchronous standbys.
#
# Runs its own PostgreSQL servers on SLUICE_FAILOVER_PG_PORT (default 5770)
# and the next port, and uses the stack's RabbitMQ.
set -euo pipefail
NAME=pg-async
export LC_ALL=C # sort and comm agree on the order of ids
# shellcheck source=tests/integration/pg_failover_lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/pg_failover_lib.sh"

PER=10000 # events per source: 40,000 in all
TOTAL=$((4 * PER))

echo "== a primary on $PORT_A with an asynchronous standby on $PORT_B"
start_pair async
[[ -z $(sql_at "$PORT_A" "SHOW synchronous_standby_names") ]] ||
    fail "the primary waits for its standby: not asynchronous"
publish 41 "$PER"
"$BIN/workers/sluice-worker" --workers 1 --metrics-port 0 >"$WORK/worker1.log" 2>&1 &
PIDS+=($!)
worker=$!
stored_b_at_least() { (( $(stored_at "$PORT_B") >= $1 )); }
stored_a_at_least() { (( $(stored_at "$PORT_A") >= $1 )); }
wait_until 120 "4000 events on the standby" stored_b_at_least 4000

echo "== the standby stops receiving WAL; the worker goes on storing and acking"
"$STANDBY" detach >>"$WORK/pair.log"
replayed_all() {
    [[ $(sql_at "$PORT_B" "SELECT pg_last_wal_replay_lsn() = pg_last_wal_receive_lsn()") == t ]]
}
wait_until 60 "the standby to replay what it received" replayed_all
on_standby=$(stored_at "$PORT_B")
standby_lsn=$(sql_at "$PORT_B" "SELECT pg_last_wal_receive_lsn()")
wait_until 120 "2000 more events on the primary" stored_a_at_least $((on_standby + 2000))
kill -TERM "$worker"
wait_until 60 "the worker to stop" exited "$worker"
wait "$worker" || fail "the worker exited $?"
# Everything on the primary is now acked: the worker acks each batch it
# committed before it exits.
on_primary=$(stored_at "$PORT_A")
sql_at "$PORT_A" "SELECT msg_id FROM events ORDER BY 1" >"$WORK/primary.ids"
primary_lsn=$(sql_at "$PORT_A" "SELECT pg_current_wal_lsn()")
lag_bytes=$(sql_at "$PORT_A" "SELECT pg_wal_lsn_diff('$primary_lsn', '$standby_lsn')")
echo "   primary: $on_primary events at $primary_lsn; standby: $on_standby at $standby_lsn" \
    "($lag_bytes bytes of WAL behind)"

echo "== SIGKILL of the primary, promotion of the standby, drain"
"$STANDBY" kill "$PORT_A" >>"$WORK/pair.log"
"$STANDBY" promote "$PORT_B" >>"$WORK/pair.log"
(( $(stored_at "$PORT_B") == on_standby )) || fail "the promoted standby holds another count"
sql_at "$PORT_B" "SELECT msg_id FROM events ORDER BY 1" >"$WORK/standby.ids"
"$BIN/workers/sluice-worker" --workers 1 --metrics-port 0 --idle-exit-ms 3000 \
    >"$WORK/worker2.log" 2>&1 &
PIDS+=($!)
worker=$!
wait_until 300 "the worker to drain the queues" exited "$worker"
wait "$worker" || fail "the worker exited $?"
PIDS=()

final=$(sql "SELECT count(*) FROM events")
distinct=$(sql "SELECT count(DISTINCT msg_id) FROM events")
lost=$((TOTAL - final))
committed_beyond=$((on_primary - on_standby))
echo "== lost: $lost of $TOTAL acked events; the primary had committed $committed_beyond" \
    "beyond the standby's WAL"
(( final == distinct )) || fail "$((final - distinct)) events stored twice"
(( committed_beyond > 0 )) || fail "the standby was not behind: the test proves nothing"
(( lost == committed_beyond )) ||
    fail "lost $lost, but the primary had committed $committed_beyond beyond the standby"
# The very events: those on the old primary and not on the promoted
# standby, and no others.
sql "SELECT msg_id FROM events ORDER BY 1" >"$WORK/final.ids"
for s in profiles clickstream orders sensors; do
    for ((i = 0; i < PER; i++)); do echo "$s-41-$i"; done
done | sort >"$WORK/published.ids"
comm -23 "$WORK/published.ids" <(sort "$WORK/final.ids") >"$WORK/lost.ids"
comm -23 <(sort "$WORK/primary.ids") <(sort "$WORK/standby.ids") >"$WORK/expected-lost.ids"
cmp -s "$WORK/lost.ids" "$WORK/expected-lost.ids" ||
    fail "the lost events are not those the primary committed beyond the standby"
(( $(wc -l <"$WORK/lost.ids") == lost )) || fail "lost ids and counts disagree"
status=$("$BIN/ctl/sluice-ctl" status --json 2>"$WORK/ctl.log") || fail "sluice-ctl status failed"
[[ $(jq '[.sources[].queue.ready] | add' <<<"$status") == 0 ]] || fail "queues not empty"
echo "PASS: an asynchronous standby's failover lost $lost acked events, exactly those committed" \
    "beyond its WAL ($lag_bytes bytes)"
