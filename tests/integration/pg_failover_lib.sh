# shellcheck shell=bash
# pg_failover_lib.sh - what the PostgreSQL failover tests share; sourced,
# not run. A pair of PostgreSQL servers of the test's own (a primary from
# scripts/stack.sh start-pg and a streaming standby from
# scripts/pg-standby.sh) in a scratch state folder, the stack's RabbitMQ
# for the queues, and the checks every such test ends with.
#
# The sourcing script sets NAME (its name, for the scratch folder) first.
# Environment: SLUICE_BIN_DIR (the build tree), SLUICE_AMQP_URL and
# SLUICE_MGMT_URL (the stack's RabbitMQ, as `./run test` sets them),
# SLUICE_FAILOVER_PG_PORT (the primary's port, default 5770; the standby
# listens on the next one).

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$(dirname "$HERE")")
BIN=${SLUICE_BIN_DIR:?SLUICE_BIN_DIR must name the build tree}
: "${SLUICE_AMQP_URL:?start the stack: eval \"\$(scripts/stack.sh env)\" (./run test does)}"
: "${SLUICE_MGMT_URL:?start the stack: eval \"\$(scripts/stack.sh env)\" (./run test does)}"
# Workers that serve /metrics would share one port on this machine: off.
export SLUICE_METRICS_PORT=0

PORT_A=${SLUICE_FAILOVER_PG_PORT:-5770}
PORT_B=$((PORT_A + 1))
WORK=$(mktemp -d "/tmp/sluice-$NAME-XXXXXX")
# As root the servers run as the postgres user, who must reach the state.
chmod 755 "$WORK"
export SLUICE_STATE_DIR=$WORK/state SLUICE_PG_PORT=$PORT_A SLUICE_PG_STANDBY_PORT=$PORT_B
STANDBY=$ROOT/scripts/pg-standby.sh
STACK=$ROOT/scripts/stack.sh
PIDS=()

# shellcheck source=tests/integration/script_lib.sh
source "$HERE/script_lib.sh"
on_fail() { "$STANDBY" status; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    "$STANDBY" wipe >/dev/null 2>&1 || true
    # Whichever server runs on the stack's folder of this test.
    "$STANDBY" kill "$PORT_A" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# sql_at PORT SQL: one value from the server on PORT (a standby answers
# reads too).
sql_at() {
    PGCONNECT_TIMEOUT=5 psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U sluice \
        -d sluice -c "$2"
}
stored_at() { sql_at "$1" "SELECT count(*) FROM events"; }
# sql SQL: on whichever server is the primary.
sql() { psql -X -q -tA -v ON_ERROR_STOP=1 "$SLUICE_PG_DSN" -c "$1"; }
count_in() { grep -c -- "$2" "$WORK/$1.log" || true; }

# start_pair sync|async: a fresh primary on PORT_A and a standby on PORT_B;
# SLUICE_PG_DSN then names both, sluice-setup has run against it, and the
# stack's queues that the test uses are empty.
start_pair() {
    "$STACK" start-pg >"$WORK/pair.log" 2>&1 || fail "the primary did not start"
    "$STANDBY" start "$1" >>"$WORK/pair.log" 2>&1 || fail "the standby did not start"
    eval "$("$STANDBY" env)"
    export SLUICE_PG_DSN
    [[ $SLUICE_PG_DSN == *",127.0.0.1:$PORT_B/"*"target_session_attrs=read-write"* ]] ||
        fail "pg-standby.sh env gave no multi-host DSN: $SLUICE_PG_DSN"
    "$BIN/broker-setup/sluice-setup" >"$WORK/setup.log" 2>&1 ||
        fail "sluice-setup on the multi-host DSN failed"
    local q
    for q in sluice.q.profiles sluice.q.clickstream sluice.q.orders sluice.q.sensors \
        sluice.q.unrouted sluice.q.notifier sluice.dead; do
        curl -fsS -o /dev/null -u guest:guest -X DELETE \
            "${SLUICE_MGMT_URL%/}/api/queues/%2F/$q/contents" || fail "cannot purge queue $q"
    done
}

# publish SEED PER_SOURCE: the generator's events for the four sources,
# confirmed; their ids are <source>-<seed>-<0..PER_SOURCE-1>.
publish() {
    "$BIN/producer/sluice-producer" --count "$2" --seed "$1" --progress-interval-ms 0 \
        >"$WORK/producer-$1.log" 2>&1 || fail "the producer failed"
    grep -q "done published=$(($2 * 4)) confirmed=$(($2 * 4)) outstanding=0" \
        "$WORK/producer-$1.log" || fail "the producer did not confirm every event"
}

# A rule that fires on a known subset (orders over 1500), one alert per
# event (no dedup), so the expected alerts can be counted in the warehouse.
write_rules() {
    cat >"$WORK/rules.json" <<'EOF'
{"rules": [{"name": "failover_big", "sources": ["orders"],
            "when": {"path": "total", "gt": 1500},
            "severity": "warning", "message": "order {order_id} of {total}"}]}
EOF
}

# check_exactly_once SEED PER_SOURCE...: every event of each (seed,
# count) published is stored once, with no gap in its ids, and nothing
# else is; no ingest errors, no dead letters, the source queues empty
# (sluice-ctl status, on the multi-host DSN).
check_exactly_once() {
    local total=0 expect=() seed n
    while (( $# )); do
        seed=$1 n=$2
        shift 2
        total=$((total + 4 * n))
        expect+=("('$seed', $n)")
    done
    local IFS=,
    local got
    got=$(sql "WITH want(seed, n) AS (VALUES ${expect[*]}),
        ids AS (SELECT source, split_part(msg_id, '-', 2) AS seed,
                       split_part(msg_id, '-', 3)::int AS seq FROM events)
        SELECT (SELECT count(*) FROM events) || ' ' || (SELECT count(DISTINCT msg_id) FROM events)
            || ' ' || (SELECT count(*) FROM (SELECT DISTINCT i.source, i.seed, i.seq FROM ids i
                       JOIN want w USING (seed) WHERE i.seq >= 0 AND i.seq < w.n) x)")
    unset IFS
    local rows distinct inrange
    read -r rows distinct inrange <<<"$got"
    echo "== warehouse: rows=$rows distinct=$distinct ids_in_range=$inrange expected=$total"
    (( rows == total && distinct == total && inrange == total )) ||
        fail "rows=$rows distinct=$distinct ids_in_range=$inrange, expected $total of each"
    local status
    status=$("$BIN/ctl/sluice-ctl" status --json 2>"$WORK/ctl.log") || fail "sluice-ctl status failed"
    [[ $(jq '[.sources[].queue.ready] | add' <<<"$status") == 0 ]] ||
        fail "source queues not empty: $(jq -c '[.sources[] | {source, queue}]' <<<"$status")"
    [[ $(jq '.dead_letters.messages' <<<"$status") == 0 ]] || fail "dead letters: $status"
    [[ $(jq '.ingest_errors | length' <<<"$status") == 0 ]] || fail "ingest errors: $status"
}

# check_alerts_once LOG: every event the rule matches raised one alert, and
# the notifier's log channel wrote each exactly once.
check_alerts_once() {
    local expected raised logged distinct
    expected=$(sql "SELECT count(*) FROM events WHERE source = 'orders'
                    AND (payload->>'total')::numeric > 1500")
    raised=$(sql "SELECT count(*) FROM alerts WHERE rule = 'failover_big'")
    logged=$(grep -c "alert rule=failover_big " "$WORK/$1.log" || true)
    distinct=$(grep -o "alert rule=failover_big .* alert_id=[^ ]*" "$WORK/$1.log" |
        sed 's/.*alert_id=//' | sort -u | wc -l)
    echo "== alerts: expected=$expected raised=$raised logged=$logged distinct_logged=$distinct"
    (( expected > 0 )) || fail "the rule matched no event: the test proves nothing"
    (( raised == expected && logged == expected && distinct == expected )) ||
        fail "alerts: expected=$expected raised=$raised logged=$logged distinct=$distinct"
    # Every logged id is one the warehouse says should fire.
    local stray
    stray=$(sql "SELECT count(*) FROM alerts WHERE rule = 'failover_big' AND msg_id NOT IN
                 (SELECT msg_id FROM events WHERE source = 'orders'
                  AND (payload->>'total')::numeric > 1500)")
    (( stray == 0 )) || fail "$stray alerts for events the rule does not match"
}
