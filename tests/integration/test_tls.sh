#!/usr/bin/env bash
# shellcheck disable=SC2016  # sh -c '...' bodies expand in the child shell
# test_tls: sluice over TLS to both servers, with a throw-away CA made here.
# RabbitMQ (scripts/cluster.sh, one node) listens for amqps:// only and
# requires a client certificate; a PostgreSQL of this test's own has
# ssl = on and accepts only SSL connections (hostssl in pg_hba.conf).
#
#  - setup, producer and worker reach both through amqps:// and
#    sslmode=verify-full, with the CA and client certificate given in the
#    environment (never on the command line), and every event is stored;
#  - a wrong CA, a certificate that does not name the host, and a missing
#    client certificate are each refused with a clear error (exit 1), and
#    so is a wrong CA for PostgreSQL; inconsistent TLS settings exit 2;
#  - the management API listens on https only, signed by the test CA and
#    asking for a client certificate: sluice-ctl status and sluice-setup
#    (upgrading an older sluice.ingest by a policy) reach it with the
#    mgmt_* TLS settings, and are refused with a clear error with the
#    wrong CA, without a CA (the system store), or without a client
#    certificate.
#
# Ports: RabbitMQ SLUICE_TLS_AMQP_PORT (default 5750; management API
# +10000, Erlang distribution +20000, epmd +30000), PostgreSQL
# SLUICE_TLS_PG_PORT (default 5760).
# SLUICE_BIN_DIR names the build tree. Everything is removed afterwards.
set -euo pipefail
# Workers that serve /metrics would share one port on this machine: off.
export SLUICE_METRICS_PORT=0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(dirname "$(dirname "$HERE")")
BIN=${SLUICE_BIN_DIR:?SLUICE_BIN_DIR must name the build tree}
AMQP_PORT=${SLUICE_TLS_AMQP_PORT:-5750}
PG_PORT=${SLUICE_TLS_PG_PORT:-5760}
PG_BIN=/usr/lib/postgresql/15/bin
CLUSTER=$ROOT/scripts/cluster.sh
WORK=$(mktemp -d /tmp/sluice-tls-test-XXXXXX)
chmod 755 "$WORK" # the rabbitmq and postgres users read the certificates
PIDS=()
if (( EUID == 0 )); then PG_USER=postgres; else PG_USER=$(id -un); fi

fail() {
    echo "FAIL: $*" >&2
    for f in "$WORK"/*.log; do
        [[ -e $f ]] || continue
        echo "--- $f (last lines)" >&2
        tail -n 20 "$f" >&2 || true
    done
    exit 1
}

as_pg() { if (( EUID == 0 )); then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ ! -f $WORK/pg/PG_VERSION ]] ||
        as_pg "$PG_BIN/pg_ctl" stop -s -w -m immediate -D "$WORK/pg" >/dev/null 2>&1 || true
    SLUICE_CLUSTER_TLS_DIR='' "$CLUSTER" wipe >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export SLUICE_CLUSTER_PORT=$AMQP_PORT SLUICE_CLUSTER_SIZE=1 SLUICE_CLUSTER_MGMT=1
export SLUICE_CLUSTER_TLS_DIR=$WORK/server

# ------------------------------------------------------------ certificates
echo "== throw-away CAs and certificates"
# make_ca NAME: a self-signed CA in $WORK/NAME.pem / .key
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=sluice test $1" -keyout "$WORK/$1.key" -out "$WORK/$1.pem" 2>/dev/null
}
# make_cert CA OUT CN EXTENSIONS: a certificate signed by CA
make_cert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$3" \
        -keyout "$2.key" -out "$2.csr" 2>/dev/null
    openssl x509 -req -in "$2.csr" -CA "$WORK/$1.pem" -CAkey "$WORK/$1.key" -CAcreateserial \
        -days 2 -out "$2.pem" -extfile <(printf '%s\n' "$4") 2>/dev/null
    rm -f "$2.csr"
}
make_ca ca
make_ca wrong-ca
mkdir -p "$WORK/server"
make_cert ca "$WORK/server/server" localhost \
    $'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth'
cp "$WORK/ca.pem" "$WORK/server/ca.pem"
make_cert ca "$WORK/client" sluice-client 'extendedKeyUsage=clientAuth'
chmod 644 "$WORK"/*.pem "$WORK/server"/*.pem
chmod 600 "$WORK"/*.key "$WORK/server"/*.key

# ------------------------------------------------------------ the servers
command -v curl >/dev/null || { echo "SKIP: the curl command is needed"; exit 77; }
echo "== RabbitMQ with amqps:// only on localhost:$AMQP_PORT, https management API on +10000"
"$CLUSTER" wipe >/dev/null
"$CLUSTER" start

echo "== PostgreSQL with ssl = on, SSL connections only, on localhost:$PG_PORT"
mkdir "$WORK/pgtls"
cp "$WORK/server/server.pem" "$WORK/server/server.key" "$WORK/pgtls/"
(( EUID != 0 )) || chown -R "$PG_USER:" "$WORK/pgtls"
(( EUID != 0 )) || { mkdir "$WORK/pg" && chown "$PG_USER:" "$WORK/pg"; }
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U sluice --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$WORK/initdb.out" 2>&1 || { cat "$WORK/initdb.out" >&2; fail "initdb failed"; }
as_pg sh -c 'cat >> "$1/postgresql.conf"' sh "$WORK/pg" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
ssl = on
ssl_cert_file = '$WORK/pgtls/server.pem'
ssl_key_file = '$WORK/pgtls/server.key'
EOF
printf 'hostssl all all 127.0.0.1/32 trust\n' | as_pg sh -c 'cat > "$1/pg_hba.conf"' sh "$WORK/pg"
as_pg "$PG_BIN/pg_ctl" start -s -w -t 60 -D "$WORK/pg" -l "$WORK/pg/server.log" ||
    { cat "$WORK/pg/server.log" >&2; fail "PostgreSQL with ssl = on did not start"; }
PIDS=()
psql -X -q "host=localhost port=$PG_PORT user=sluice dbname=postgres sslmode=verify-full sslrootcert=$WORK/ca.pem" \
    -c "CREATE DATABASE sluice" || fail "cannot create the database over SSL"

# Secrets and paths through the environment, as a deployment gives them.
export SLUICE_AMQP_URL=amqps://guest:guest@localhost:$AMQP_PORT
export SLUICE_AMQP_CA_FILE=$WORK/ca.pem SLUICE_AMQP_CERT_FILE=$WORK/client.pem
export SLUICE_AMQP_KEY_FILE=$WORK/client.key
export SLUICE_PG_DSN="postgresql://sluice@localhost:$PG_PORT/sluice?sslmode=verify-full&sslrootcert=$WORK/ca.pem"
SETUP=$BIN/broker-setup/sluice-setup

# expect_refused CODE PATTERN WHAT ARGS...: sluice-setup ARGS exits CODE and
# its output matches PATTERN.
expect_refused() {
    local code=$1 pattern=$2 what=$3 rc=0 out
    shift 3
    out=$("$SETUP" "$@" 2>&1) || rc=$?
    (( rc == code )) || fail "$what: exit $rc, expected $code; output: $out"
    grep -qE -- "$pattern" <<<"$out" || fail "$what: no '$pattern' in: $out"
    echo "   refused as expected ($what): $(grep -E -- "$pattern" <<<"$out" | head -n 1 |
        sed -E 's/^.*(error|setup): //')"
}

echo "== sluice over TLS: setup, producer, worker"
"$SETUP" >"$WORK/setup.log" 2>&1 || fail "sluice-setup over TLS failed"
"$BIN/workers/sluice-worker" --idle-exit-ms 3000 >"$WORK/worker.log" 2>&1 &
worker=$!
PIDS+=("$worker")
"$BIN/producer/sluice-producer" --count 500 >"$WORK/producer.log" 2>&1 ||
    fail "the producer over TLS failed"
wait "$worker" || fail "the worker over TLS exited $?"
PIDS=()
# Exactly the 500 events per source asked for: every row once (rows and
# distinct ids), and each source's generator seqs 0..499 without a gap.
read -r rows distinct < <(psql -X -tA -F ' ' "$SLUICE_PG_DSN" \
    -c "SELECT count(*), count(DISTINCT msg_id) FROM events")
(( rows == 2000 && distinct == 2000 )) ||
    fail "$rows events ($distinct distinct) stored over TLS, expected 2000 once each"
gaps=$(psql -X -tA "$SLUICE_PG_DSN" -c "SELECT count(*) FROM (SELECT source,
    count(DISTINCT substring(msg_id FROM '-([0-9]+)\$')::int) AS n,
    max(substring(msg_id FROM '-([0-9]+)\$')::int) AS hi FROM events GROUP BY source) s
    WHERE n <> 500 OR hi <> 499")
[[ $gaps == 0 ]] || fail "$gaps sources lack some of their generator seqs 0..499"
echo "   2000 events stored through amqps:// and sslmode=verify-full"
ssl=$(psql -X -tA "$SLUICE_PG_DSN" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
[[ $ssl == t ]] || fail "pg_stat_ssl says this connection is not SSL"

echo "== refusals"
expect_refused 1 "not signed by a CA in amqp_ca_file" "RabbitMQ certificate from another CA" \
    --amqp-ca-file "$WORK/wrong-ca.pem"
expect_refused 1 "does not name host .127.0.0.1." "URL host not named by the certificate" \
    --amqp-url "amqps://guest:guest@127.0.0.1:$AMQP_PORT"
"$SETUP" --amqp-url "amqps://guest:guest@127.0.0.1:$AMQP_PORT" --amqp-verify-hostname false \
    >"$WORK/nohost.log" 2>&1 || fail "amqp_verify_hostname=false did not accept 127.0.0.1"
SLUICE_AMQP_CERT_FILE='' SLUICE_AMQP_KEY_FILE='' \
    expect_refused 1 "may require a client certificate" "no client certificate"
expect_refused 1 "cannot reach PostgreSQL.*certificate verify failed" \
    "PostgreSQL certificate from another CA" \
    --pg-dsn "postgresql://sluice@localhost:$PG_PORT/sluice?sslmode=verify-full&sslrootcert=$WORK/wrong-ca.pem"
expect_refused 1 "cannot reach PostgreSQL.*(no encryption|SSL off)" "PostgreSQL without SSL" \
    --pg-dsn "postgresql://sluice@localhost:$PG_PORT/sluice?sslmode=disable"
expect_refused 2 "^sluice-setup: amqp_cert_file is set but amqp_key_file is not" \
    "certificate without key" --amqp-key-file ""
expect_refused 2 "^sluice-setup: amqp_ca_file: cannot read $WORK/missing.pem" \
    "missing CA file" --amqp-ca-file "$WORK/missing.pem"

echo "== the management API over https: sluice-ctl status"
MGMT_URL=https://localhost:$((AMQP_PORT + 10000))/
export SLUICE_MGMT_URL=$MGMT_URL
CTL=$BIN/ctl/sluice-ctl
# The right CA and a client certificate: the queues come from the API.
"$CTL" status --json --mgmt-ca-file "$WORK/ca.pem" --mgmt-cert-file "$WORK/client.pem" \
    --mgmt-key-file "$WORK/client.key" >"$WORK/status.json" 2>"$WORK/status.log" ||
    fail "sluice-ctl status with mgmt_ca_file exited $?: $(cat "$WORK/status.log")"
grep -qE '"exists": ?true' "$WORK/status.json" ||
    fail "sluice-ctl status shows no queue from the management API: $(cat "$WORK/status.json")"
echo "   sluice-ctl status read the queues through $MGMT_URL with mgmt_ca_file"

# expect_ctl_refused PATTERN WHAT ARGS...: sluice-ctl status ARGS exits 1
# and says on its line for the queues why the API was not reached.
expect_ctl_refused() {
    local pattern=$1 what=$2 rc=0 out
    shift 2
    out=$("$CTL" status "$@" 2>&1 >/dev/null) || rc=$?
    (( rc == 1 )) || fail "status, $what: exit $rc, expected 1; output: $out"
    grep -qE -- "^sluice-ctl: status: queues: management API $MGMT_URL.*$pattern" <<<"$out" ||
        fail "status, $what: no '$pattern' in: $out"
    echo "   refused as expected ($what): $(grep -E -- "$pattern" <<<"$out" | head -n 1 |
        sed -E 's/^sluice-ctl: status: queues: //')"
}
CLIENT=(--mgmt-cert-file "$WORK/client.pem" --mgmt-key-file "$WORK/client.key")
expect_ctl_refused "not signed by a CA in mgmt_ca_file \\($WORK/wrong-ca.pem\\)" \
    "management API certificate from another CA" --mgmt-ca-file "$WORK/wrong-ca.pem" "${CLIENT[@]}"
SLUICE_AMQP_CA_FILE='' expect_ctl_refused "not signed by a CA in mgmt_ca_file \\(unset" \
    "no CA file: the system store" "${CLIENT[@]}"
expect_ctl_refused "may require a client certificate: mgmt_cert_file" \
    "no client certificate for the management API" --mgmt-ca-file "$WORK/ca.pem"
IP_URL=https://127.0.0.1:$((AMQP_PORT + 10000))/
SLUICE_MGMT_URL=$IP_URL MGMT_URL=$IP_URL expect_ctl_refused "does not name the URL's host" \
    "URL host not named by the management API's certificate" "${CLIENT[@]}"
"$CTL" status --mgmt-url "$IP_URL" --mgmt-verify-hostname false "${CLIENT[@]}" \
    >"$WORK/status-ip.log" 2>&1 ||
    fail "mgmt_verify_hostname=false did not accept 127.0.0.1: $(cat "$WORK/status-ip.log")"
rc=0
out=$("$CTL" status --mgmt-cert-file "$WORK/client.pem" 2>&1) || rc=$?
if (( rc != 2 )) ||
    ! grep -q "^sluice-ctl: mgmt_cert_file is set but mgmt_key_file is not" <<<"$out"; then
    fail "a management API certificate without its key: exit $rc: $out"
fi

echo "== the management API over https: sluice-setup upgrades an older sluice.ingest"
# A vhost where sluice.ingest is as setups before the alternate exchange
# declared it (no arguments), made through the API itself.
VHOST=sluice-tls-upgrade
api() {
    curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/ca.pem" --cert "$WORK/client.pem" \
        --key "$WORK/client.key" -u guest:guest -H 'Content-Type: application/json' \
        -X "$1" "${MGMT_URL}api/$2" ${3:+--data "$3"}
}
[[ $(api PUT "vhosts/$VHOST" '{}') == 20? ]] || fail "cannot create vhost $VHOST"
[[ $(api PUT "permissions/$VHOST/guest" '{"configure":".*","write":".*","read":".*"}') == 20? ]] ||
    fail "cannot grant guest vhost $VHOST"
[[ $(api PUT "exchanges/$VHOST/sluice.ingest" '{"type":"topic","durable":true}') == 20? ]] ||
    fail "cannot declare an older sluice.ingest in vhost $VHOST"
VHOST_URL=amqps://guest:guest@localhost:$AMQP_PORT/$VHOST
WRONG_CA="TLS: its certificate is not signed by a CA in mgmt_ca_file \\($WORK/wrong-ca.pem\\)"
expect_refused 1 "management API $MGMT_URL.*: $WRONG_CA" \
    "setup: management API certificate from another CA" \
    --amqp-url "$VHOST_URL" --mgmt-ca-file "$WORK/wrong-ca.pem" "${CLIENT[@]}"
expect_refused 1 "may require a client certificate: mgmt_cert_file" \
    "setup: no client certificate for the management API" --amqp-url "$VHOST_URL"
"$SETUP" --amqp-url "$VHOST_URL" --mgmt-ca-file "$WORK/ca.pem" "${CLIENT[@]}" \
    >"$WORK/setup-policy.log" 2>&1 || fail "sluice-setup through the https management API failed"
grep -q "policy set name=sluice-ingest-unrouted" "$WORK/setup-policy.log" ||
    fail "sluice-setup set no policy: $(cat "$WORK/setup-policy.log")"
[[ $(api GET "policies/$VHOST/sluice-ingest-unrouted") == 200 ]] ||
    fail "the policy sluice-ingest-unrouted is not in vhost $VHOST"
# Without mgmt_ca_file the API is verified with amqp_ca_file, as before the
# mgmt_* settings: setup looks at sluice.ingest through the API again.
"$SETUP" --amqp-url "$VHOST_URL" "${CLIENT[@]}" >"$WORK/setup-again.log" 2>&1 ||
    fail "sluice-setup, management API with amqp_ca_file: $(cat "$WORK/setup-again.log")"
grep -q "setting it by policy" "$WORK/setup-again.log" ||
    fail "the second sluice-setup did not go through the management API"
echo "   sluice-setup set its policy through $MGMT_URL (mgmt_ca_file, then amqp_ca_file)"
echo "PASS: TLS to RabbitMQ, its management API and PostgreSQL works;" \
    "bad certificates are refused"
