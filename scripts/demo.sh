#!/usr/bin/env bash
# demo.sh BUILD_DIR - the demo pipeline: four simulated sources publish to
# RabbitMQ, one unified worker stores them in PostgreSQL and evaluates the
# example rules (config/rules.example.json), a notifier delivers the alerts
# through its log channel, then a few SQL queries and sluice-ctl status
# show what arrived. Each component logs in as its own RabbitMQ user and
# PostgreSQL role, which setup creates (docs/security.md), with passwords
# kept as files in the logs folder's secrets/.
# Expects the stack's SLUICE_AMQP_URL and SLUICE_PG_DSN (an administrator
# and a superuser, as scripts/stack.sh env prints them) in the environment
# (./run demo sets them).
set -euo pipefail

BUILD=${1:?usage: demo.sh BUILD_DIR}
COUNT=${SLUICE_DEMO_COUNT:-25000}
SOURCES=(profiles clickstream orders sensors)
TOTAL=$((COUNT * ${#SOURCES[@]}))
# A new seed each run makes new events (the same seed would make the same
# message ids, which the warehouse absorbs as duplicates).
SEED=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RULES=${SLUICE_DEMO_RULES:-$ROOT/config/rules.example.json}
LOGS=${SLUICE_STATE_DIR:-$ROOT/.run}/demo
mkdir -p "$LOGS"

# Passwords of the components' accounts (random, made once) and the URLs
# and DSNs with them: the stack's, with another login.
SECRETS=$LOGS/secrets
mkdir -p "$SECRETS"
chmod 700 "$SECRETS"
secret() {
  [ -s "$SECRETS/$1" ] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$SECRETS/$1"
  cat "$SECRETS/$1"
}
# login URL USER PASSWORD: URL (scheme://[userinfo@]rest) with USER:PASSWORD@.
login() { sed -E "s#^([a-z]+://)([^@/]*@)?#\1$2:$3@#" <<<"$1"; }
for who in producer worker notifier; do
  export "SLUICE_AMQP_${who^^}_PASSWORD_FILE=$SECRETS/amqp_${who}_password"
  login "$SLUICE_AMQP_URL" "sluice-$who" "$(secret "amqp_${who}_password")" >"$SECRETS/${who}_amqp_url"
done
for role in owner writer notifier reader; do
  export "SLUICE_PG_${role^^}_PASSWORD_FILE=$SECRETS/pg_${role}_password"
  login "$SLUICE_PG_DSN" "sluice_$role" "$(secret "pg_${role}_password")" >"$SECRETS/${role}_pg_dsn"
done
READER_DSN=$(cat "$SECRETS/reader_pg_dsn")

q() { psql "$READER_DSN" -X -q -v ON_ERROR_STOP=1 "$@"; }
say() { printf '\n==> %s\n' "$*"; }
stored() { q -At -c "SELECT count(*) FROM events WHERE msg_id LIKE '%-$SEED-%'"; }

say "declaring the topology, the components' accounts and the schema (sluice-setup)"
"$BUILD/broker-setup/sluice-setup" --log-level warn --projections "$ROOT/config/projections.conf"

say "running ${#SOURCES[@]} sources x $COUNT events -> RabbitMQ -> unified worker -> PostgreSQL"
"$BUILD/workers/sluice-worker" --stats-interval-ms 1000 --rules "$RULES" \
  --amqp-url-file "$SECRETS/worker_amqp_url" --pg-dsn-file "$SECRETS/writer_pg_dsn" \
  2>"$LOGS/worker.log" &
worker=$!
"$BUILD/notifier/sluice-notifier" --amqp-url-file "$SECRETS/notifier_amqp_url" \
  --pg-dsn-file "$SECRETS/notifier_pg_dsn" 2>"$LOGS/notifier.log" &
notifier=$!
trap 'kill "$worker" "$notifier" 2>/dev/null || true' EXIT
"$BUILD/producer/sluice-producer" --count "$COUNT" --seed "$SEED" \
  --amqp-url-file "$SECRETS/producer_amqp_url" 2>"$LOGS/producer.log" &
producer=$!

start=$(date +%s.%N)
while kill -0 "$producer" 2>/dev/null || [ "$(stored)" -lt "$TOTAL" ]; do
  sleep 1
  confirmed=$(grep -o 'confirmed=[0-9]*' "$LOGS/producer.log" | tail -1 | cut -d= -f2 || true)
  printf '    %5.1fs  published+confirmed %7s   stored in warehouse %7s / %s\n' \
    "$(echo "$(date +%s.%N) - $start" | bc)" "${confirmed:-0}" "$(stored)" "$TOTAL"
  if ! kill -0 "$worker" 2>/dev/null; then
    echo "demo: the worker stopped; see $LOGS/worker.log" >&2
    exit 1
  fi
  if ! kill -0 "$producer" 2>/dev/null && ! wait "$producer"; then
    echo "demo: the producer failed; see $LOGS/producer.log" >&2
    exit 1
  fi
done
kill -TERM "$worker"
wait "$worker" || { echo "demo: the worker failed; see $LOGS/worker.log" >&2; exit 1; }
# The notifier records each delivery; wait until this run's alerts are all out.
undelivered() { q -At -c "SELECT count(*) FROM alerts WHERE msg_id LIKE '%-$SEED-%' AND state NOT IN ('sent', 'failed')"; }
for _ in $(seq 1 60); do [ "$(undelivered)" -eq 0 ] && break; sleep 0.5; done
kill -TERM "$notifier"
wait "$notifier" || { echo "demo: the notifier failed; see $LOGS/notifier.log" >&2; exit 1; }
trap - EXIT

say "producer: $(grep ' done ' "$LOGS/producer.log" | sed 's/.*producer: done //')"
say "worker:   $(grep 'worker.0: stopped ' "$LOGS/worker.log" | sed 's/.*worker.0: stopped //')"

say "this run in the warehouse: rows per source, throughput and end-to-end latency"
q -c "
SELECT source, count(*) AS events,
       round(count(*) / greatest(extract(epoch FROM max(stored_at) - min(produced_at)), 0.001))
         AS events_per_s,
       round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY stored_at - produced_at))::numeric, 1) AS p50_ms,
       round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY stored_at - produced_at))::numeric, 1) AS p99_ms
FROM events WHERE msg_id LIKE '%-$SEED-%'
GROUP BY ROLLUP (source) ORDER BY source NULLS LAST;"

say "a query on semi-structured data: revenue by shipping country (orders of this run)"
q -c "
SELECT payload->'shipping'->>'country' AS country, count(*) AS orders,
       sum(jsonb_array_length(payload->'items')) AS items,
       round(sum((payload->>'total')::numeric), 2) AS revenue
FROM events WHERE source = 'orders' AND msg_id LIKE '%-$SEED-%'
GROUP BY 1 ORDER BY revenue DESC LIMIT 5;"

say "the same from a typed table declared in config/projections.conf (orders of this run)"
q -c "
SELECT country, count(*) AS orders, sum(item_count) AS items, round(sum(total), 2) AS revenue
FROM orders WHERE msg_id LIKE '%-$SEED-%'
GROUP BY 1 ORDER BY revenue DESC LIMIT 5;"

say "event detection: rules of $(basename "$RULES") that fired on this run (dedup windows suppress repeats)"
q -c "
SELECT rule, severity, count(*) AS alerts, count(*) FILTER (WHERE state = 'sent') AS delivered,
       (SELECT coalesce(sum(suppressed), 0) FROM alert_windows w WHERE w.rule = a.rule)
         AS suppressed_all_runs
FROM alerts a WHERE msg_id LIKE '%-$SEED-%' GROUP BY rule, severity ORDER BY rule;"
say "a few alerts as the notifier's log channel delivered them ($LOGS/notifier.log)"
grep " alert rule=.*-$SEED-" "$LOGS/notifier.log" | head -3 | sed 's/^/    /' || true

say "the pipeline at a glance: sluice-ctl status"
"$BUILD/ctl/sluice-ctl" status --log-level warn --pg-dsn-file "$SECRETS/reader_pg_dsn" |
  sed 's/^/    /' || true

say "all rows in the warehouse: $(q -At -c 'SELECT count(*) FROM events') events, $(q -At -c 'SELECT count(*) FROM ingest_errors') ingest errors"
echo "    query it yourself:  psql \"\$(cat $SECRETS/reader_pg_dsn)\"   (role sluice_reader)"
echo "    RabbitMQ management: ${SLUICE_MGMT_URL:-http://127.0.0.1:15680/} (guest/guest)"
echo "    logs: $LOGS"
