#!/usr/bin/env bash
# test_cluster_freeze: a hung RabbitMQ node, not a stopped one. On a
# three-node cluster (scripts/cluster.sh) with quorum queues, a producer
# and a worker with a 2 s heartbeat run on node 1; node 1 is frozen
# (SIGSTOP: its sockets stay open and say nothing) for longer than the
# heartbeat. The queues' leaders are on node 2. Both clients must notice the silence, move to another node and
# go on; then node 1 runs again (SIGCONT) and reads whatever the clients
# had sent it before they left. Every event the producer had confirmed must
# end in the warehouse exactly once (a copy node 1 still delivers is a
# no-op), and the queues must end empty.
#
# Needs the local stack's PostgreSQL (SLUICE_PG_DSN); uses a database of its
# own (sluice_freeze_test) and a cluster of its own on SLUICE_CLUSTER_PORT
# (default here 5775, 5776, 5777), wiped afterwards. The freeze stays well
# under Erlang's net_ticktime (60 s), so node 1 comes back into its cluster
# rather than into a partition. SLUICE_BIN_DIR names the build tree.
set -euo pipefail
export SLUICE_METRICS_PORT=0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$(dirname "$HERE")")
BIN=${SLUICE_BIN_DIR:?SLUICE_BIN_DIR must name the build tree}
: "${SLUICE_PG_DSN:?start the stack: eval \"\$(scripts/stack.sh env)\" (./run test does)}"
export SLUICE_CLUSTER_PORT=${SLUICE_CLUSTER_PORT:-5775} SLUICE_CLUSTER_SIZE=3
unset SLUICE_CLUSTER_TLS_DIR
CLUSTER=$ROOT/scripts/cluster.sh
HEARTBEAT=2
RATE=300 # events per second per source
DB=sluice_freeze_test
WORK=$(mktemp -d /tmp/sluice-freeze-test-XXXXXX)
PIDS=()

cleanup() {
    local pid
    "$CLUSTER" thaw-node 1 >/dev/null 2>&1 || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    "$CLUSTER" wipe >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=tests/integration/script_lib.sh
source "$HERE/script_lib.sh"
# moved LOG: the client's latest connection is to node 2 or 3.
moved() {
    local last
    last=$(grep -o -E "url=[^ ]*" "$WORK/$1.log" | tail -n 1)
    [[ $last == "url=$(redacted "$url2")" || $last == "url=$(redacted "$url3")" ]]
}

echo "== fresh database $DB and cluster on port $SLUICE_CLUSTER_PORT"
use_database "$DB"
"$CLUSTER" wipe >/dev/null
"$CLUSTER" start
eval "$("$CLUSTER" env)"
export SLUICE_AMQP_URL SLUICE_PG_DSN=$test_dsn
IFS=, read -r url1 url2 url3 <<<"$SLUICE_AMQP_URL"
# Declared through node 2, whose quorum queues then have their leaders
# there: the frozen node is the one the clients are connected to, not the
# queues' leader. (A hung leader is RabbitMQ's own failure detection to
# settle: its peers elect another once Erlang's distribution gives node 1
# up, after net_ticktime, 60 s by default; the clients meanwhile wait on
# confirms and deliveries, and lose nothing.)
"$BIN/broker-setup/sluice-setup" --amqp-url "$url2" --queue-type quorum >"$WORK/setup.log" 2>&1 ||
    fail "sluice-setup --queue-type quorum failed"
leaders=$("$CLUSTER" queues | awk -F'\t' '$1 ~ /^sluice\.q\./ { print $4 }' | sort -u)
[[ $leaders == "sluice-c$((SLUICE_CLUSTER_PORT + 1))@localhost" ]] ||
    fail "the source queues' leaders are not all on node 2: $leaders"

echo "== producer and worker on node 1, heartbeat ${HEARTBEAT}s"
"$BIN/workers/sluice-worker" --idle-exit-ms 6000 --heartbeat "$HEARTBEAT" \
    >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
worker=$!
"$BIN/producer/sluice-producer" --count 0 --rate "$RATE" --heartbeat "$HEARTBEAT" --seed 9 \
    >"$WORK/producer.log" 2>&1 &
PIDS+=($!)
producer=$!
wait_until 60 "the worker to consume from node 1" log_has worker "url=$(redacted "$url1")"
wait_until 60 "the producer to connect to node 1" log_has producer "url=$(redacted "$url1")"
wait_until 60 "1000 stored events" stored_at_least 1000

echo "== freezing node 1 (SIGSTOP) at $(stored) stored events"
"$CLUSTER" freeze-node 1
frozen_at=$SECONDS
at_freeze=$(stored)
wait_until 40 "the worker to leave the frozen node" moved worker
wait_until 40 "the producer to leave the frozen node" moved producer
wait_until 40 "progress while node 1 is frozen" stored_at_least $((at_freeze + 1000))
held=$((SECONDS - frozen_at))
(( held > HEARTBEAT )) || fail "node 1 was frozen ${held}s, not longer than the heartbeat"
"$CLUSTER" thaw-node 1
echo "   node 1 was frozen ${held}s; both clients moved"
running "$producer" || fail "the producer stopped"
at_thaw=$(stored)
wait_until 60 "progress with node 1 back" stored_at_least $((at_thaw + 1000))

drain_and_check "$producer" "$worker"
PIDS=()
grep -h -E "producer: (connected|connection lost|done)|worker[.0-9]*: (consuming|not ready|connected again|stopped)|supervisor: pool stopped" \
    "$WORK/producer.log" "$WORK/worker.log" | sort | sed 's/^/   /'
echo "PASS: $TOTAL confirmed events, each stored once, through a node frozen ${held}s"
psql -X -q "$admin_dsn" -c "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
