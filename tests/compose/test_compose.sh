#!/usr/bin/env bash
# test_compose.sh GEN - runs compose.yaml for real, the way the README says,
# on one generation of the servers: GEN bookworm (RabbitMQ 3.10 +
# PostgreSQL 15, classic queues) or trixie (RabbitMQ 4.0 + PostgreSQL 17,
# quorum queues; SLUICE_COMPOSE_QUEUE_TYPE overrides), as stand-in images
# built from Debian packages (scripts/images.sh; no registry here).
#
# From a clean build context (the checkout's files, nothing built), with
# .env made from .env.example:
#   1. up --build: setup exits 0, every sluice service becomes healthy,
#      an event POSTed to the producer's HTTP door (source ingest, on its
#      published loopback port) is answered 202, events of every source
#      land in the warehouse, and the orders in the typed table its
#      projection declares; each service is connected as its own RabbitMQ
#      user and PostgreSQL role, and no password or token of the secret
#      files is in `docker inspect` of a container or in the logs;
#   2. alerts raised by the example rules are delivered by the notifier's
#      log channel;
#   3. --scale worker=3: three consumers on every source queue, and
#      Prometheus (profile monitoring, on for the whole test) scrapes each
#      of the three worker containers, the notifier and RabbitMQ, and
#      answers queries for the events stored and the alerts delivered;
#   4. a worker container SIGKILLed mid-stream, in the middle of storing
#      a batch (held there by a trigger) and holding unacked deliveries,
#      and started again: RabbitMQ's redelivered count of the source
#      queues rises (the kill handed work back), and once the producer has
#      stopped and the queues are drained, the warehouse holds every
#      confirmed event, each once;
#   5. SLUICE_WORKER_MODE=parallel SLUICE_WORKERS=2: two consumers per
#      queue, the next producer run stored in full;
#   6. down (volumes kept) with events still queued, then up: the warehouse
#      keeps its rows and the queued events are stored;
#   7. down -v leaves no container, network or volume of the project.
#
# Needs root (it starts dockerd if none answers), docker.io, docker-compose
# (or the compose v2 plugin), mmdebstrap, curl and jq. Its own compose project name
# (sluicect-GEN-<SLUICE_AMQP_PORT>) and no fixed host port: the published
# ports are 0, so the engine picks free ones.
set -euo pipefail

GEN=${1:?usage: test_compose.sh bookworm|trixie}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
PROJECT=sluicect-$GEN-${SLUICE_AMQP_PORT:-5672}
STEP_TIMEOUT=${SLUICE_COMPOSE_TIMEOUT:-240} # seconds for each awaited condition
# Classic queues on RabbitMQ 3.10 (.env.example's choice), quorum queues
# (delivery limit, dead-lettering) on RabbitMQ 4.0.
# sluice's image is built on the generation's Debian: rabbitmq-c 0.11 and
# libpq 15, or rabbitmq-c 0.15 and libpq 17.
case $GEN in
trixie) QUEUE_TYPE=${SLUICE_COMPOSE_QUEUE_TYPE:-quorum} RABBITMQ_C=0.15 ;;
*) QUEUE_TYPE=${SLUICE_COMPOSE_QUEUE_TYPE:-classic} RABBITMQ_C=0.11 ;;
esac
T0=$SECONDS

log() { printf '[%4ds] compose %s: %s\n' $((SECONDS - T0)) "$GEN" "$*"; }
fail() {
    printf 'FAIL compose %s: %s\n' "$GEN" "$*" >&2
    exit 1
}
# Any other command that fails ends the test (set -e): say which.
set -E
trap 'printf "FAIL compose %s: line %d: %s (exit %d)\n" "$GEN" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

"$ROOT/scripts/images.sh" engine
"$ROOT/scripts/images.sh" standins "$GEN"

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
else
    fail "neither 'docker compose' nor docker-compose is installed"
fi

# The clean build context: the checkout's tracked and new files as they are
# now, without build trees, .env or anything git ignores.
CTX=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compose.XXXXXX")
# --profile monitoring: Prometheus too, as the README starts it.
dc() { (cd "$CTX" && "${COMPOSE[@]}" -p "$PROJECT" --profile monitoring "$@"); }
cleanup() {
    local rc=$?
    if ((rc != 0)); then
        echo "---- state at failure" >&2
        dc ps >&2 || true
        dc logs --no-color --tail 40 >&2 || true
    fi
    dc down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$CTX"
    exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -C "$CTX" -xf -

# .env as the README says: .env.example, and the passwords made by
# scripts/compose-secrets.sh into $CTX/secrets. The stand-in images replace
# the official ones; host ports 0 = any free port.
sed -e "s/^\(RABBITMQ_MGMT_PORT\|RABBITMQ_PROMETHEUS_PORT\|POSTGRES_PORT\|PROMETHEUS_PORT\|SLUICE_INGEST_PORT\)=.*/\1=0/" \
    -e "s/^SLUICE_QUEUE_TYPE=.*/SLUICE_QUEUE_TYPE=$QUEUE_TYPE/" \
    -e "/^\(RABBITMQ_IMAGE\|POSTGRES_IMAGE\|PROMETHEUS_IMAGE\|SLUICE_DEBIAN\)=/d" \
    "$CTX/.env.example" >"$CTX/.env"
# sluice's image under a tag of this stack's own (the AMQP port, as the
# project name): test runs of other checkouts on the same engine build
# theirs meanwhile, and a shared tag would swap a container's binaries
# under it when compose recreates one.
"$ROOT/scripts/images.sh" env "$GEN" | sed "s/^SLUICE_IMAGE=.*/&-${SLUICE_AMQP_PORT:-5672}/" >>"$CTX/.env"
dc down -v --remove-orphans >/dev/null 2>&1 || true # a previous run's leftovers
(unset SLUICE_SECRETS_DIR && cd "$CTX" && scripts/compose-secrets.sh >/dev/null)

# ---- helpers
SOURCES=(profiles clickstream orders sensors ingest)
sql() { dc exec -T postgres psql -U sluice -d sluice -XtAq -c "$1"; }
# "name consumers messages" for every sluice source queue.
queues() {
    dc exec -T rabbitmq rabbitmqctl -q list_queues --no-table-headers name consumers messages |
        awk '$1 ~ /^sluice\.q\./ && $1 != "sluice.q.notifier" && $1 != "sluice.q.unrouted"'
}
rows() { sql "SELECT count(*) FROM events" | tr -d '[:space:]'; }
queued() { queues | awk '{ n += $3 } END { print n + 0 }'; }
# await DESCRIPTION COMMAND...: polls COMMAND every 2 s until it succeeds.
await() {
    local what=$1 deadline=$((SECONDS + STEP_TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "not within ${STEP_TIMEOUT}s: $what"
        sleep 2
    done
    log "$what"
}
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"; }
all_healthy() {
    local ids
    ids=$(dc ps -q "$@")
    [[ -n $ids ]] || return 1
    for id in $ids; do
        [[ $(health "$id") == healthy ]] || return 1
    done
}
setup_done() {
    local id
    id=$(dc ps -a -q setup) # -a: v2 lists only running containers without it
    [[ -n $id ]] && [[ $(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$id") == "exited 0" ]]
}
every_source_stored() {
    local s
    for s in "${SOURCES[@]}"; do
        (($(sql "SELECT count(*) FROM events WHERE source = '$s'") > 0)) || return 1
    done
}
# consumers_each N: every source queue has exactly N consumers.
consumers_each() {
    local got
    got=$(queues)
    [[ $(wc -l <<<"$got") -eq ${#SOURCES[@]} ]] && awk -v n="$1" '$2 != n { bad = 1 } END { exit bad }' <<<"$got"
}
# Sums the producer's "source summary" lines: prints "confirmed read".
producer_totals() {
    docker logs "$1" 2>&1 | awk '/source summary/ {
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^confirmed=/) { sub(/confirmed=/, "", $i); c += $i }
            if ($i ~ /^read=/) { sub(/read=/, "", $i); r += $i }
        }
        n++
    } END { if (n) print c, r }'
}
# stop_producer: stops it (SIGTERM: it waits for its confirms) and adds
# its totals to CONFIRMED and READ.
CONFIRMED=0
READ=0
stop_producer() {
    local id totals
    id=$(dc ps -q producer)
    dc stop producer >"$CTX/stop.log" 2>&1 || { cat "$CTX/stop.log" >&2; fail "stop producer failed"; }
    totals=$(producer_totals "$id")
    [[ -n $totals ]] || fail "the producer printed no source summary when stopped"
    [[ $(docker inspect -f '{{.State.ExitCode}}' "$id") == 0 ]] || fail "the producer exited non-zero"
    CONFIRMED=$((CONFIRMED + ${totals% *}))
    READ=$((READ + ${totals#* }))
    log "producer stopped: confirmed=${totals% *} (all runs: confirmed=$CONFIRMED read=$READ)"
}
# Drained: no source queue holds a message, ready or unacknowledged; as
# the workers acknowledge after committing, every batch is committed then.
# (Not "rows >= CONFIRMED" too: events lost would then read as a timeout
# rather than as check_complete's missing seqs.)
drained() {
    local got
    got=$(queues) && [[ $(wc -l <<<"$got") -eq ${#SOURCES[@]} ]] &&
        awk '{ n += $3 } END { exit n != 0 }' <<<"$got"
}
# The events the generators made, counted from the warehouse itself, not
# from the producer's report: message ids are SOURCE-SEED-SEQ and each
# producer run numbers its events 0, 1, 2, ... per source, so for every
# source and seed the seqs stored must be 0..highest, each once. Prints
# "expected gaps": the sum of (highest + 1), and the (source, seed) pairs
# with a seq missing or stored twice. The HTTP door's source (ingest) is
# no generator: its events are counted apart (INGESTED).
generated() {
    sql "SELECT coalesce(sum(hi + 1), 0), count(*) FILTER (WHERE n <> hi + 1 OR d <> n OR lo <> 0)
         FROM (SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
               FROM (SELECT source, substring(msg_id FROM '-([0-9]+)-[0-9]+\$') AS seed,
                            substring(msg_id FROM '-([0-9]+)\$')::bigint AS seq
                     FROM events WHERE source <> 'ingest') e
               GROUP BY source, seed) g" | tr '|' ' '
}
# Distinct events posted to the HTTP door and answered 202: however often
# the test posted its one body, its id (a digest of source and bytes) is one.
INGESTED=0
# The warehouse holds every generated event once: no gap in any source's
# and seed's seqs, each msg_id once, none rejected; and (a cross-check of
# the producer, not the expected total) between the events it confirmed
# and those it read.
check_complete() {
    local n distinct errors expected gaps ingested
    n=$(rows)
    distinct=$(sql "SELECT count(DISTINCT msg_id) FROM events" | tr -d '[:space:]')
    errors=$(sql "SELECT count(*) FROM ingest_errors" | tr -d '[:space:]')
    read -r expected gaps < <(generated)
    ((gaps == 0)) || fail "$1: $gaps (source, seed) pairs with a seq missing or doubled"
    ingested=$(sql "SELECT count(*) FROM events WHERE source = 'ingest'" | tr -d '[:space:]')
    ((ingested == INGESTED)) || fail "$1: $ingested events of the HTTP door, but $INGESTED were answered 202"
    ((n == expected + INGESTED)) ||
        fail "$1: $n rows, but the generators' seqs say $expected and the HTTP door took $INGESTED"
    ((n == distinct)) || fail "$1: $n rows for $distinct message ids"
    ((n >= CONFIRMED)) || fail "$1: $n rows, but $CONFIRMED events were confirmed"
    ((n <= READ)) || fail "$1: $n rows, more than the $READ events produced"
    ((errors == 0)) || fail "$1: $errors rows in ingest_errors"
    log "$1: $n rows, every generated event once, no seq missing"
}

# ---- 1. up --build
log "up --build (project $PROJECT, compose $("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'), $QUEUE_TYPE queues)"
dc up -d --build >"$CTX/up.log" 2>&1 || { cat "$CTX/up.log" >&2; fail "up --build failed"; }
image=$(sed -n 's/^SLUICE_IMAGE=//p' "$CTX/.env")
lib=$(docker run --rm --entrypoint dpkg-query "$image" -W -f '${Version}' librabbitmq4)
[[ $lib == "$RABBITMQ_C".* ]] || fail "image $image has rabbitmq-c $lib, expected $RABBITMQ_C"
log "image $image: Debian $(docker run --rm --entrypoint cat "$image" /etc/debian_version), rabbitmq-c $lib"
await "setup exited 0" setup_done
await "worker, producer and notifier healthy" all_healthy worker producer notifier
# The HTTP door (source ingest): an event posted on its published loopback
# port is answered 202 once RabbitMQ confirmed it.
ingest_post() {
    local addr token
    addr=$(dc port producer 8088 | tail -n 1)
    token=$(cat "$CTX/secrets/ingest_token")
    [[ -n $addr ]] || return 1
    [[ $(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
        --data '{"order_id":"compose-1","amount":12.5}' "http://$addr/v1/sources/ingest") == 202 ]]
}
await "an event posted to the HTTP door answered 202" ingest_post
INGESTED=1
await "events of every source in the warehouse" every_source_stored
# The declared projections (config/projections.conf, mounted into setup).
typed_rows() { [[ $(sql "SELECT count(*) FROM orders") -gt 0 ]]; }
await "orders projected into their typed table" typed_rows

# ---- 1b. least privilege: each service logs in as its own account, and no
# password is in `docker inspect` of a container or in the logs
passwords=$(cat "$CTX"/secrets/*_password "$CTX/secrets/ingest_token")
inspected=0
for id in $(dc ps -a -q); do
    inspect=$(docker inspect "$id")
    while read -r pw; do
        ! grep -qF -- "$pw" <<<"$inspect" ||
            fail "a password of $CTX/secrets is in docker inspect of $(docker inspect -f '{{.Name}}' "$id")"
    done <<<"$passwords"
    inspected=$((inspected + 1))
done
all_logs=$(dc logs --no-color 2>&1)
while read -r pw; do
    ! grep -qF -- "$pw" <<<"$all_logs" || fail "a password of $CTX/secrets is in the services' logs"
done <<<"$passwords"
log "no password in docker inspect of $inspected containers nor in their logs"
db_users() {
    sql "SELECT string_agg(DISTINCT usename, ',' ORDER BY usename) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" | tr -d '[:space:]'
}
[[ $(db_users) == sluice_notifier,sluice_writer ]] ||
    fail "PostgreSQL sessions are of '$(db_users)', not sluice_notifier and sluice_writer only"
mq_users() {
    dc exec -T rabbitmq rabbitmqctl -q list_connections --no-table-headers user |
        tr -d '\r' | sort -u | paste -sd, -
}
[[ $(mq_users) == sluice-notifier,sluice-producer,sluice-worker ]] ||
    fail "RabbitMQ connections are of '$(mq_users)', not the three components' own users"
log "each service connected as its own account (PostgreSQL: $(db_users); RabbitMQ: $(mq_users))"

# ---- 2. alerts through the notifier's log channel
# (grep reads everything: a grep -q quitting early would fail the pipe.)
notifier_logged() { dc logs --no-color notifier | grep -c ' notifier: alert rule=.* alert_id='; }
await "an alert delivered on the notifier's log channel" notifier_logged
alert_id=$(dc logs --no-color notifier | sed -n 's/.* notifier: alert rule=.* alert_id=\([^ ]*\) .*/\1/p' | sed -n 1p)
state=$(sql "SELECT state FROM alert_deliveries WHERE alert_id = '$alert_id' AND channel = 'log'" | tr -d '[:space:]')
[[ $state == sent ]] || fail "alert $alert_id is in the notifier's log but its log delivery is '$state'"
log "alert $alert_id logged and recorded as sent"

# ---- 3. three worker containers
dc up -d --no-recreate --scale worker=3 >/dev/null 2>&1 || fail "up --scale worker=3 failed"
await "--scale worker=3: 3 consumers on every source queue" consumers_each 3
await "3 worker containers healthy" all_healthy worker

# ---- 3b. Prometheus (monitoring profile) on its published loopback port
prom_get() {
    local addr
    addr=$(dc port prometheus 9090 | tail -n 1)
    [[ -n $addr ]] || return 1
    curl -fsS --max-time 5 -G "http://$addr$1" "${@:2}"
}
# "job up_count total_count" per scrape job, from /api/v1/targets.
prom_targets() {
    prom_get /api/v1/targets | jq -r '.data.activeTargets | group_by(.labels.job)[] |
        "\(.[0].labels.job) \(map(select(.health == "up")) | length) \(length)"'
}
# every_target_up: 3 worker replicas, the notifier and RabbitMQ, all up.
every_target_up() {
    local got
    got=$(prom_targets)
    grep -qx 'sluice-worker 3 3' <<<"$got" && grep -qx 'sluice-notifier 1 1' <<<"$got" &&
        grep -qx 'rabbitmq 1 1' <<<"$got"
}
# prom_positive QUERY: the query's first value is a number above 0.
prom_positive() {
    local v
    v=$(prom_get /api/v1/query --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty')
    [[ -n $v ]] && awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }'
}
await "Prometheus scrapes 3 workers, the notifier and RabbitMQ, all up" every_target_up
await "Prometheus: sum(sluice_events_stored_total) > 0" prom_positive 'sum(sluice_events_stored_total)'
await "Prometheus: sum(sluice_notifier_alerts_delivered_total) > 0" \
    prom_positive 'sum(sluice_notifier_alerts_delivered_total)'
await "Prometheus: RabbitMQ's rabbitmq_queues > 0" prom_positive 'sum(rabbitmq_queues)'
log "Prometheus targets: $(prom_targets | paste -sd, -)"

# ---- 4. SIGKILL one worker mid-stream, start it again
# The kill lands on a batch in hand: a gate (a trigger) holds every COPY
# into events until the test opens it, and the kill waits until the
# victim's PostgreSQL session is held there, inside its batch's
# transaction, and RabbitMQ shows the victim's channel holding
# unacknowledged deliveries. What it held comes back to the queues
# flagged redelivered: the redelivered count of the source queues (the
# management API's message_stats.redeliver, as harness_redelivered()
# reads it) must rise; and a worker that acknowledged before committing
# would lose the batch, which the end-state check then finds.
# mgmt_get PATH: the management API on its published loopback port, as
# the administrator.
mgmt_get() {
    local addr
    addr=$(dc port rabbitmq 15672 | tail -n 1)
    [[ -n $addr ]] || return 1
    curl -fsS --max-time 10 -u "$(sed -n 's/^RABBITMQ_USER=//p' "$CTX/.env"):$(cat "$CTX/secrets/rabbitmq_password")" \
        "http://$addr/api/$1"
}
# redelivered: message_stats.redeliver summed over the source queues
# (no message_stats until a queue had one).
redelivered() {
    local names
    names=$(printf 'sluice.q.%s\n' "${SOURCES[@]}" | jq -R . | jq -s .)
    mgmt_get 'queues/%2F?columns=name,message_stats' |
        jq --argjson names "$names" '[.[] | select(.name | IN($names[])) |
            .message_stats.redeliver // 0] | add // 0'
}
# holds_unacked IP: a channel of a connection from IP (one worker
# container) holds unacknowledged deliveries, as RabbitMQ says now (not
# the management API's statistics, which are up to 5 s old).
holds_unacked() {
    dc exec -T rabbitmq rabbitmqctl -q list_channels --no-table-headers name messages_unacknowledged |
        awk -v ip="$1" 'index($1, ip ":") == 1 && $NF > 0 { found = 1 } END { exit !found }'
}
# held_at_gate IP: the PostgreSQL session from IP waits at the gate, in
# the middle of storing a batch.
held_at_gate() {
    (($(sql "SELECT count(*) FROM pg_stat_activity
             WHERE client_addr = '$1' AND query LIKE 'COPY events %' AND wait_event = 'PgSleep'") > 0))
}
victim=$(dc ps -q worker | sed -n 1p)
victim_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$victim")
[[ -n $victim_ip ]] || fail "no IP address for worker ${victim:0:12}"
redelivered_before=$(redelivered)
[[ $redelivered_before =~ ^[0-9]+$ ]] || fail "no redelivered count from the management API: '$redelivered_before'"
# The gate: closed while public.compose_gate has a row. SECURITY DEFINER:
# the workers' role reads the table through the function only.
sql "CREATE TABLE public.compose_gate (closed boolean); INSERT INTO public.compose_gate VALUES (true);
     CREATE FUNCTION public.compose_gate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS \$\$
     BEGIN
         WHILE EXISTS (SELECT FROM public.compose_gate) LOOP PERFORM pg_sleep(0.05); END LOOP;
         RETURN NULL;
     END \$\$;
     CREATE TRIGGER compose_gate BEFORE INSERT ON events FOR EACH STATEMENT
         EXECUTE FUNCTION public.compose_gate()"
await "worker ${victim:0:12} ($victim_ip) held at the gate, storing a batch" held_at_gate "$victim_ip"
await "worker ${victim:0:12} holds unacknowledged deliveries" holds_unacked "$victim_ip"
docker kill -s KILL "$victim" >/dev/null
before=$(rows) # exact: no batch commits while the gate is closed
sql "DELETE FROM public.compose_gate"
log "worker ${victim:0:12} killed with SIGKILL at $before rows, $redelivered_before redelivered so far"
sql "DROP TRIGGER compose_gate ON events; DROP FUNCTION public.compose_gate(); DROP TABLE public.compose_gate"
# Struck mid-work: rows were stored before the kill, and the producer
# (running until stopped below) keeps making events after it.
((before > 0)) || fail "the worker was killed before anything was stored"
docker start "$victim" >/dev/null
await "the killed worker healthy again" all_healthy worker
await "3 consumers on every source queue again" consumers_each 3
stop_producer
await "queues drained" drained
(($(rows) > before)) || fail "nothing stored after the kill at $before rows: it struck no work"
# The management API's statistics lag (5 s): awaited, not read once.
redelivered_more() { (($(redelivered) > redelivered_before)); }
await "redelivered count of the source queues above its $redelivered_before before the kill" redelivered_more
log "the kill handed back deliveries in hand: $(redelivered) redelivered"
check_complete "after SIGKILL"

# ---- 5. parallel mode, two processes per queue
SLUICE_WORKER_MODE=parallel SLUICE_WORKERS=2 dc up -d --no-deps --scale worker=1 worker >/dev/null 2>&1 ||
    fail "parallel worker failed to start"
await "parallel, 2 workers: 2 consumers on every source queue" consumers_each 2
await "parallel worker healthy" all_healthy worker
start_rows=$(rows)
SLUICE_PRODUCER_SEED=2 dc up -d --no-deps producer >/dev/null 2>&1 || fail "producer (seed 2) did not start"
grew() { (($(rows) >= start_rows + 2000)); }
await "parallel workers store the new events" grew
stop_producer
await "queues drained" drained
check_complete "parallel mode"

# ---- 6. down with events queued, then up
dc stop worker >/dev/null 2>&1
SLUICE_PRODUCER_SEED=3 dc up -d --no-deps producer >/dev/null 2>&1 || fail "producer (seed 3) did not start"
some_queued() { (($(queued) >= 2000)); }
await "events queued with no worker" some_queued
stop_producer
kept_rows=$(rows)
kept_queued=$(queued)
dc down >/dev/null 2>&1 || fail "down failed"
[[ -z $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") ]] ||
    fail "containers left after down"
log "down with $kept_rows rows stored and $kept_queued events queued"
dc up -d --scale producer=0 >/dev/null 2>&1 || fail "up after down failed"
await "setup exited 0 again" setup_done
kept() { (($(rows) >= kept_rows)); }
await "the warehouse kept its rows" kept
await "queued events stored after up" drained
check_complete "after down and up"

# What RabbitMQ says is deprecated in how sluice uses it (notes, not failures).
dc logs --no-color rabbitmq | grep -i 'deprecated' | sed 's/^/note: /' || true

# ---- 7. down -v
dc down -v >/dev/null 2>&1 || fail "down -v failed"
label="label=com.docker.compose.project=$PROJECT"
[[ -z $(docker ps -aq --filter "$label") ]] || fail "down -v left containers"
[[ -z $(docker volume ls -q --filter "$label") ]] || fail "down -v left volumes"
[[ -z $(docker network ls -q --filter "$label") ]] || fail "down -v left networks"

log "down -v: no container, volume or network left"
log "passed in $((SECONDS - T0))s"
