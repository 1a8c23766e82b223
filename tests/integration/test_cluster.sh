#!/usr/bin/env bash
# test_cluster: sluice on a three-node RabbitMQ cluster (scripts/cluster.sh)
# with quorum queues. A producer, a worker and the notifier get all three
# nodes' URLs;
# while they run, the node both are connected to is stopped the polite way
# and started again, then the node they moved to is killed (SIGKILL) and
# started again. Every event must end in the warehouse exactly once, the
# queues must end empty, every client must have moved to another node, and
# the notifier must still deliver an alert published afterwards.
#
# Needs the local stack's PostgreSQL (SLUICE_PG_DSN, as `./run test` sets);
# uses a database of its own (sluice_cluster_test) and a cluster of its own
# on SLUICE_CLUSTER_PORT (default here 5740, 5741, 5742), wiped afterwards.
# SLUICE_BIN_DIR names the build tree.
set -euo pipefail
# Workers that serve /metrics would share one port on this machine: off.
export SLUICE_METRICS_PORT=0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$(dirname "$HERE")")
BIN=${SLUICE_BIN_DIR:?SLUICE_BIN_DIR must name the build tree}
: "${SLUICE_PG_DSN:?start the stack: eval \"\$(scripts/stack.sh env)\" (./run test does)}"
export SLUICE_CLUSTER_PORT=${SLUICE_CLUSTER_PORT:-5740} SLUICE_CLUSTER_SIZE=3
unset SLUICE_CLUSTER_TLS_DIR
CLUSTER=$ROOT/scripts/cluster.sh

# The producer runs until stopped (4 sources x 500 events/s), so traffic
# goes on however long a node takes to come back; the expected total is
# what it reports as confirmed when it stops.
RATE=500
DB=sluice_cluster_test
WORK=$(mktemp -d /tmp/sluice-cluster-test-XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    "$CLUSTER" wipe >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=tests/integration/script_lib.sh
source "$HERE/script_lib.sh"

echo "== fresh database $DB and cluster on port $SLUICE_CLUSTER_PORT"
use_database "$DB"
"$CLUSTER" wipe >/dev/null
"$CLUSTER" start
eval "$("$CLUSTER" env)"
export SLUICE_AMQP_URL SLUICE_PG_DSN=$test_dsn
IFS=, read -r url1 url2 url3 <<<"$SLUICE_AMQP_URL"

"$BIN/broker-setup/sluice-setup" --queue-type quorum >"$WORK/setup.log" 2>&1 ||
    fail "sluice-setup --queue-type quorum failed"
queues=$("$CLUSTER" queues)
[[ $(grep -c $'^sluice\\.[a-z.]*\tquorum\t' <<<"$queues") == 7 ]] ||
    fail "expected 7 quorum queues (four sources, unrouted, notifier, dead), got: $queues"
# The source, unrouted and notifier queues dead-letter after the delivery limit.
limited=$(grep -c 'x-delivery-limit",20}' <<<"$queues" || true)
(( limited == 6 )) || fail "expected 6 queues with x-delivery-limit 20, got: $queues"
# Another queue type or delivery limit is a configuration conflict: exit 2,
# one line naming the argument.
expect_conflict() {
    local arg=$1 rc=0
    shift
    "$BIN/broker-setup/sluice-setup" "$@" >"$WORK/conflict.out" 2>&1 || rc=$?
    (( rc == 2 )) || fail "sluice-setup $*: exit $rc, not 2: $(cat "$WORK/conflict.out")"
    grep -q "^sluice-setup: queue .* exists with other arguments: .*inequivalent arg '$arg'" \
        "$WORK/conflict.out" || fail "sluice-setup $*: no line naming $arg: $(cat "$WORK/conflict.out")"
}
expect_conflict x-queue-type --queue-type classic
expect_conflict x-delivery-limit --queue-type quorum --delivery-limit 5

echo "== producer, worker and notifier on all three nodes"
"$BIN/notifier/sluice-notifier" --heartbeat 5 >"$WORK/notifier.log" 2>&1 &
PIDS+=($!)
notifier=$!
"$BIN/workers/sluice-worker" --idle-exit-ms 6000 --heartbeat 5 --stats-interval-ms 2000 \
    >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
worker=$!
"$BIN/producer/sluice-producer" --count 0 --rate "$RATE" --heartbeat 5 --seed 7 \
    >"$WORK/producer.log" 2>&1 &
PIDS+=($!)
producer=$!
wait_until 60 "the worker to consume from node 1" log_has worker "url=$(redacted "$url1")"
wait_until 60 "the producer to connect to node 1" log_has producer "url=$(redacted "$url1")"
wait_until 60 "the notifier to consume from node 1" log_has notifier "url=$(redacted "$url1")"
wait_until 60 "2000 stored events" stored_at_least 2000

echo "== stopping node 1 (both clients' node) at $(stored) stored events"
"$CLUSTER" stop-node 1
at_stop=$(stored)
wait_until 60 "progress without node 1" stored_at_least $((at_stop + 2000))
log_has producer "url=$(redacted "$url2")" || fail "the producer did not move to node 2"
log_has worker "url=$(redacted "$url2")" || fail "the worker did not move to node 2"
"$CLUSTER" start-node 1
running "$producer" || fail "the producer stopped"

echo "== killing node 2 (SIGKILL) at $(stored) stored events"
"$CLUSTER" kill-node 2
at_kill=$(stored)
wait_until 60 "progress without node 2" stored_at_least $((at_kill + 2000))
log_has producer "url=$(redacted "$url3")" || fail "the producer did not move to node 3"
log_has worker "url=$(redacted "$url3")" || fail "the worker did not move to node 3"
wait_until 60 "the notifier to move off node 2" log_has notifier "url=$(redacted "$url3")"
"$CLUSTER" start-node 2
at_back=$(stored)
wait_until 60 "progress with every node back" stored_at_least $((at_back + 2000))

echo "== an alert after the failovers reaches the notifier"
amqp-publish --url "$url1" -e sluice.alerts -r alert.warning.cluster_test -p \
    -C application/json \
    -b '{"alert_id":"cluster_test:1","rule":"cluster_test","severity":"warning","source":"orders","message":"after failover"}' ||
    fail "amqp-publish of an alert failed"
wait_until 60 "the notifier to deliver the alert" log_has notifier "alert rule=cluster_test"
kill -TERM "$notifier"
wait_until 30 "the notifier to stop" exited "$notifier"
wait "$notifier" || fail "the notifier exited $?"

drain_and_check "$producer" "$worker"
PIDS=()
# How the clients moved (the timestamps give each failover's gap).
grep -h -E "producer: (connected|connection lost|done)|worker: (consuming|not ready|stopped)|notifier: (consuming|not ready)" \
    "$WORK/producer.log" "$WORK/worker.log" "$WORK/notifier.log" | sort | sed 's/^/   /'
echo "PASS: $TOTAL confirmed events, each stored once, through a node stop and a node crash"
psql -X -q "$admin_dsn" -c "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
