#!/usr/bin/env bash
# test_pg_failover: the warehouse survives its primary. A PostgreSQL
# primary with a synchronous standby (scripts/pg-standby.sh), two workers
# and the notifier on the multi-host DSN (target_session_attrs=read-write).
#
# 1. Crash: 100,000 events are published, then drained; in the middle of
#    the drain the primary is SIGKILLed, and once every worker has found
#    the standby read-only, the standby is promoted. Each worker logs the
#    outage once (its later attempts at debug level) and goes on with the
#    new primary.
# 2. The old primary comes back as a synchronous standby of the new one
#    (a fresh copy), 40,000 more events are drained, and in the middle the
#    new primary turns read-only (default_transaction_read_only, as a
#    fenced or demoted primary): the workers get SQLSTATE 25006, store
#    nothing there, do not dead-letter or reject anything, and go on once
#    the old primary is promoted again.
# First, with neither server up, sluice-ctl's error names both hosts on one
# line and not the DSN's password.
# At the end every event is stored exactly once (no gap in the generator's
# ids), the queues are empty, nothing is dead-lettered or recorded as an
# ingest error, and every alert of the rule is raised once and written
# once by the notifier's log channel.
#
# Runs its own PostgreSQL servers on SLUICE_FAILOVER_PG_PORT (default 5770)
# and the next port, and uses the stack's RabbitMQ (SLUICE_AMQP_URL,
# SLUICE_MGMT_URL). SLUICE_BIN_DIR names the build tree.
set -euo pipefail
NAME=pg-failover
# shellcheck source=tests/integration/pg_failover_lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/pg_failover_lib.sh"

PER=25000 # events per source in part 1: 100,000 in all
PER2=10000 # in part 2: 40,000
TOTAL=$((4 * PER))

echo "== a multi-host DSN with a password, neither host up: one line naming both, no password"
rc=0
SLUICE_PG_DSN="postgresql://sluice:Pw-$$-secret@127.0.0.1:$PORT_A,127.0.0.1:$PORT_B/sluice?target_session_attrs=read-write" \
    "$BIN/ctl/sluice-ctl" status >/dev/null 2>"$WORK/nohost.log" || rc=$?
(( rc == 1 )) || fail "sluice-ctl status with no server up: exit $rc, not 1"
(( $(wc -l <"$WORK/nohost.log") == 1 )) || fail "more than one line: $(cat "$WORK/nohost.log")"
grep -q "port $PORT_A failed.*port $PORT_B failed" "$WORK/nohost.log" ||
    fail "the error does not name both servers: $(cat "$WORK/nohost.log")"
! grep -q "Pw-$$-secret" "$WORK/nohost.log" || fail "the password is in the error"

echo "== a primary on $PORT_A with a synchronous standby on $PORT_B"
start_pair sync
[[ $(sql_at "$PORT_A" "SHOW synchronous_standby_names") == "sluice_$PORT_B" ]] ||
    fail "the primary does not wait for the standby"
write_rules
publish 31 "$PER"

echo "== notifier and two workers on $SLUICE_PG_DSN"
"$BIN/notifier/sluice-notifier" --heartbeat 5 --log-level debug >"$WORK/notifier.log" 2>&1 &
PIDS+=($!)
notifier=$!
start_workers() {
    "$BIN/workers/sluice-worker" --workers 2 --rules "$WORK/rules.json" --idle-exit-ms 3000 \
        --log-level debug >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    workers=$!
}
start_workers workers1
stored_b_at_least() { (( $(stored_at "$PORT_B") >= $1 )); }
wait_until 120 "20000 events on the standby" stored_b_at_least 20000

echo "== SIGKILL of the primary in the middle of the drain"
"$STANDBY" kill "$PORT_A" >>"$WORK/pair.log"
at_kill=$(stored_at "$PORT_B")
echo "   the standby holds $at_kill of $TOTAL events"
(( at_kill > 0 && at_kill < TOTAL )) || fail "the primary was not killed mid-drain: $at_kill stored"
# Both workers see the outage, and try the standby, which refuses them (a
# standby is read-only); only then is it promoted.
both_found_read_only() {
    (( $(grep -c 'debug worker[.0-9]*: not ready, retrying attempt=.*read-only' "$WORK/workers1.log") >= 2 ))
}
wait_until 60 "the workers to find the standby read-only" both_found_read_only
"$STANDBY" promote "$PORT_B" >>"$WORK/pair.log"
wait_until 300 "the workers to drain the queues" exited "$workers"
wait "$workers" || fail "the workers exited $?"
grep "pool stopped" "$WORK/workers1.log" | sed 's/^/   /'
check_exactly_once 31 "$PER"
# One outage each: one warning, one "connected again", the attempts
# between at debug level.
warned=$(count_in workers1 ' warn worker[.0-9]*: not ready, retrying')
again=$(count_in workers1 'info worker[.0-9]*: connected again attempts=')
echo "   worker outage lines: warnings=$warned recoveries=$again"
grep -h "connected again" "$WORK/workers1.log" | sed 's/^/   /'
(( warned == 2 && again == 2 )) ||
    fail "expected one warning and one recovery per worker, got $warned and $again"
(( $(count_in notifier ' warn notifier: not ready, retrying') <= 1 )) ||
    fail "the notifier warned more than once about one outage"
(( $(count_in notifier ' warn notifier: destination cannot reach the ledger') <= 1 )) ||
    fail "the log destination warned more than once about one outage"

echo "== the old primary comes back as a synchronous standby of $PORT_B"
"$STANDBY" rejoin sync >>"$WORK/pair.log" 2>&1 || fail "rejoin failed"
[[ $(sql_at "$PORT_A" "SELECT pg_is_in_recovery()") == t ]] || fail "port $PORT_A is no standby"
publish 32 "$PER2"
start_workers workers2
wait_until 120 "part 2 under way" stored_b_at_least $((TOTAL + 2000))

echo "== the primary turns read-only in the middle of the drain"
sql_at "$PORT_B" "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
sql_at "$PORT_B" "SELECT pg_reload_conf()" >/dev/null
both_refused() { (( $(grep -c 'worker[.0-9]*: not ready, retrying .*25006' "$WORK/workers2.log") >= 2 )); }
wait_until 60 "both workers to get SQLSTATE 25006" both_refused
at_ro=$(stored_at "$PORT_B")
(( at_ro < TOTAL + 4 * PER2 )) || fail "part 2 was drained before the primary turned read-only"
# Fenced: stopped (its last WAL reaches the synchronous standby first),
# and the old primary promoted again.
"$STANDBY" stop >>"$WORK/pair.log"
"$STANDBY" promote "$PORT_A" >>"$WORK/pair.log"
wait_until 300 "the workers to drain part 2" exited "$workers"
wait "$workers" || fail "the workers exited $?"
grep -h -E "connected again|pool stopped" "$WORK/workers2.log" | sed 's/^/   /'
check_exactly_once 31 "$PER" 32 "$PER2"
# Nothing was treated as the events' fault.
! grep -q -E "event not stored|storing it row by row|dead-lettered" "$WORK/workers1.log" \
    "$WORK/workers2.log" || fail "a worker blamed the events for the failover"

expected_alerts=$(sql "SELECT count(*) FROM events WHERE source = 'orders'
                        AND (payload->>'total')::numeric > 1500")
alerts_logged() { (( $(count_in notifier 'alert rule=failover_big ') >= expected_alerts )); }
wait_until 60 "the notifier to write $expected_alerts alerts" alerts_logged
kill -TERM "$notifier"
wait_until 30 "the notifier to stop" exited "$notifier"
wait "$notifier" || fail "the notifier exited $?"
PIDS=()
check_alerts_once notifier
echo "PASS: $((TOTAL + 4 * PER2)) events stored once through a primary crash and a read-only primary"
