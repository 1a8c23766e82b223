# shellcheck shell=bash
# script_lib.sh - what the scripted integration tests share; sourced, not
# run. The sourcing script sets WORK (its scratch folder: fail shows the
# last lines of each *.log there) first; it may define on_fail, run by fail
# before it exits, to show more.

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$WORK"/*.log; do
        [[ -e $f ]] || continue
        echo "--- $f (last lines)" >&2
        tail -n 25 "$f" >&2 || true
    done
    if declare -F on_fail >/dev/null; then on_fail >&2 || true; fi
    exit 1
}

# wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds.
wait_until() {
    local limit=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@"; do
        (( SECONDS < deadline )) || fail "waited ${limit}s for $what"
        sleep 0.2
    done
}

# A child that exited stays a zombie until `wait`: kill -0 would still succeed.
running() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [[ $st != Z ]]; }
exited() { ! running "$1"; }
# log_has NAME TEXT: $WORK/NAME.log holds TEXT.
log_has() { grep -q -- "$2" "$WORK/$1.log"; }
# An AMQP URL as the clients log it: without its password.
redacted() { sed -E 's#://([^:]*):[^@]*@#://\1@#' <<<"$1"; }

# use_database DB: a fresh database DB on the stack's PostgreSQL
# (SLUICE_PG_DSN); sets admin_dsn (the stack's DSN) and test_dsn (DB's),
# for sql, stored and stored_at_least.
use_database() {
    local db=$1
    admin_dsn=$SLUICE_PG_DSN
    test_dsn=$(sed -E "s#/[^/?]*(\?|$)#/$db\1#" <<<"${SLUICE_PG_DSN%/}" |
        sed -E "s#^(postgres(ql)?://[^/]*)\$#\1/$db#")
    [[ $test_dsn == *"/$db"* ]] || fail "cannot derive a DSN for $db from $SLUICE_PG_DSN"
    psql -X -q -v ON_ERROR_STOP=1 "$admin_dsn" -c "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db" 2>&1 | grep -v NOTICE || true
}
sql() { psql -X -q -tA -v ON_ERROR_STOP=1 "$test_dsn" -c "$1"; }
stored() { sql "SELECT count(*) FROM events"; }
stored_at_least() { (( $(stored) >= $1 )); }

# drain_and_check PRODUCER WORKER: stops the producer (SIGTERM: it waits for
# its confirms) and sets TOTAL to what it confirmed, lets the worker drain
# the queues and exit (idle_exit_ms), then checks that every confirmed
# event is stored once, none is an ingest error, and every queue of the
# cluster ($CLUSTER queues) is empty.
drain_and_check() {
    local producer=$1 worker=$2 done_line rows distinct errors queues
    echo "== stopping the producer (SIGTERM: waits for its confirms), draining the worker"
    kill -TERM "$producer"
    wait_until 120 "the producer to stop" exited "$producer"
    wait "$producer" || fail "the producer exited $?"
    done_line=$(grep "producer: done" "$WORK/producer.log") || fail "the producer logged no done line"
    TOTAL=$(sed -E 's/.* confirmed=([0-9]+) outstanding=0 .*/\1/;t;s/.*/x/' <<<"$done_line")
    [[ $TOTAL =~ ^[0-9]+$ ]] || fail "the producer stopped with unconfirmed events: $done_line"
    wait_until 300 "the worker to drain the queues" exited "$worker"
    wait "$worker" || fail "the worker exited $?"
    read -r rows distinct < <(sql "SELECT count(*), count(DISTINCT msg_id) FROM events" | tr '|' ' ')
    echo "== warehouse: rows=$rows distinct=$distinct expected=$TOTAL"
    (( rows == TOTAL && distinct == TOTAL )) || fail "rows=$rows distinct=$distinct, expected $TOTAL"
    errors=$(sql "SELECT count(*) FROM ingest_errors")
    (( errors == 0 )) || fail "$errors ingest_errors"
    queues=$("$CLUSTER" queues)
    if awk -F'\t' '$3 != 0 { bad = 1 } END { exit !bad }' <<<"$queues"; then
        fail "queues not empty: $queues"
    fi
}
