#!/usr/bin/env bash
# test_http_ingest: the HTTP door (adapter http_server) against the stack's
# RabbitMQ and PostgreSQL, with curl as the clients and a worker storing:
#
#  - each body form (one object, an array, NDJSON by Content-Type and
#    sniffed, gzip) is answered 202 and stored once; an invalid event in a
#    batch gets 400 naming it, and nothing of that batch is stored;
#  - bearer tokens (from a file and from ${VAR}, both accepted) and HMAC
#    signatures: right, wrong and missing; refusals are 401, counted on
#    /metrics and logged once per client per minute; a source without auth
#    refuses to start (exit 2, one line) unless auth = none;
#  - a body over max_body_bytes gets 413 before it is sent (Content-Length)
#    or while it is (chunked); a rate over the source's gets 429;
#  - retries (Idempotency-Key, id_pointer, the event's bytes) store once;
#  - HTTPS with a throw-away CA;
#  - RabbitMQ stopped while clients post: every request is answered (202
#    or 503) and every event answered 202 is stored exactly once;
#  - the producer SIGKILLed while requests are in flight: every 202'd
#    event is stored, and the clients' retries with the same
#    Idempotency-Key add no rows;
#  - SIGTERM while requests wait for confirms: each is answered 503;
#  - a client sending one byte a second holds back no other client.
#
# Ports: the listener on SLUICE_HTTP_TEST_PORT (default 18780) and HTTPS on
# the next one. SLUICE_BIN_DIR names the build tree.
set -euo pipefail
: "${SLUICE_PG_DSN:?SLUICE_PG_DSN must name the stack (scripts/stack.sh env)}"
: "${SLUICE_AMQP_URL:?SLUICE_AMQP_URL must name the stack (scripts/stack.sh env)}"
BIN=${SLUICE_BIN_DIR:?SLUICE_BIN_DIR must name the build tree}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
STACK=$ROOT/scripts/stack.sh
PORT=${SLUICE_HTTP_TEST_PORT:-18780}
TLS_PORT=$((PORT + 1))
URL=http://127.0.0.1:$PORT
export SLUICE_METRICS_PORT=0 # workers would share one metrics port
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
WORK=$(mktemp -d /tmp/sluice-http-ingest-XXXXXX)
RUN=r$(date +%s%N)
producer_pid=
worker_pid=
client_pids=()
rabbit_down=0

cleanup() {
    local p
    for p in "${client_pids[@]}" $producer_pid $worker_pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ((rabbit_down == 0)) || "$STACK" start-rabbit >/dev/null 2>&1 || true
    [[ -n ${SLUICE_KEEP_WORK:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

HERE=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=tests/integration/script_lib.sh
source "$HERE/script_lib.sh"
# On a failure, script_lib's fail shows this too.
on_fail() { echo "last row count: $(cat "$WORK/rows.seen" 2>/dev/null)"; }

sql() { psql "$SLUICE_PG_DSN" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }


# post OUT URL CURL-ARGS...: the status code (000: no answer) into OUT.code,
# the answer's body and headers into OUT.body and OUT.headers.
post() {
    local out=$1 url=$2
    shift 2
    curl -s -o "$out.body" -D "$out.headers" -w '%{http_code}' --max-time 60 -X POST "$@" \
        "$url" >"$out.code" 2>/dev/null || true
}

# expect CODE DESCRIPTION URL CURL-ARGS...: posts and checks the status.
expect() {
    local want=$1 what=$2 url=$3
    shift 3
    post "$WORK/last" "$url" "$@"
    [[ $(<"$WORK/last.code") == "$want" ]] ||
        fail "$what: HTTP $(<"$WORK/last.code"), expected $want; body: $(cat "$WORK/last.body" 2>/dev/null)"
    echo "   $want: $what"
}

# rows WHERE: events of this run matching a condition on payload p.
rows() { sql "SELECT count(*) FROM events WHERE payload->>'run' = '$RUN' AND ($1)"; }
rows_are() { # WHERE N: exactly N such rows (the count seen is kept for messages)
    rows "$1" >"$WORK/rows.seen"
    [[ $(<"$WORK/rows.seen") == "$2" ]]
}

metric() { # NAME{LABELS}: its value on the listener's /metrics
    curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

start_producer() {
    "$BIN/producer/sluice-producer" --config "$CONF" --shutdown-timeout-ms 2000 \
        >>"$WORK/producer.log" 2>&1 &
    producer_pid=$!
    wait_until 30 "the producer listening" curl -sf -o /dev/null --max-time 2 "$URL/healthz"
}

start_worker() {
    "$BIN/workers/sluice-worker" --config "$CONF" >>"$WORK/worker.log" 2>&1 &
    worker_pid=$!
}

# ------------------------------------------------------------ set-up
echo "== configuration, certificates, setup"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=sluice test CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=wrong CA" -keyout "$WORK/wrong.key" -out "$WORK/wrong.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -out "$WORK/server.pem" \
    -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n') 2>/dev/null
printf '# rotated tokens: the old one goes once clients moved\nold-token\nnew-token\n' \
    >"$WORK/tokens"
printf 'hook-secret\n' >"$WORK/secret"
export HX_ENV_TOKEN=env-token
CONF=$WORK/sluice.conf
cat >"$CONF" <<EOF
[source hx_tok]
adapter = http_server
port = $PORT
token = \${HX_ENV_TOKEN}
tokens_file = $WORK/tokens

[source hx_sig]
adapter = http_server
port = $PORT
path = /hooks/sig
hmac_secret_file = $WORK/secret

[source hx_open]
adapter = http_server
port = $PORT
auth = none
id_pointer = /id
max_body_bytes = 4096
confirm_timeout_ms = 3000

[source hx_rate]
adapter = http_server
port = $PORT
auth = none
rate = 20

[source hx_small]
adapter = http_server
port = $PORT
auth = none
max_pending_bytes = 65536

[source hx_tls]
adapter = http_server
port = $TLS_PORT
auth = none
tls_cert_file = $WORK/server.pem
tls_key_file = $WORK/server.key
EOF
"$BIN/broker-setup/sluice-setup" --config "$CONF" >"$WORK/setup.log" 2>&1 || fail "sluice-setup failed"

echo "== a source without auth refuses to start"
cat >"$WORK/noauth.conf" <<EOF
[source hx_noauth]
adapter = http_server
port = $PORT
EOF
rc=0
out=$("$BIN/producer/sluice-producer" --config "$WORK/noauth.conf" 2>&1) || rc=$?
((rc == 2)) || fail "a source without auth: exit $rc, expected 2 ($out)"
[[ $(wc -l <<<"$out") -eq 1 && $out == *"auth = none"* ]] || fail "not one line naming auth = none: $out"
echo "   exit 2: $out"
# refused NAME WANT CONFIG: a producer with CONFIG exits 2, one line matching WANT.
refused() {
    local rc=0 out
    printf '%s\n' "$3" >"$WORK/bad.conf"
    out=$("$BIN/producer/sluice-producer" --config "$WORK/bad.conf" 2>&1) || rc=$?
    ((rc == 2)) || fail "$1: exit $rc, expected 2 ($out)"
    [[ $(wc -l <<<"$out") -eq 1 && $out == *"$2"* ]] || fail "$1: not one line with '$2': $out"
    echo "   exit 2 ($1): ${out#*: }"
}
refused "two sources, one path" "already another source's" "$(printf '[source hx_a]\nadapter = http_server\nport = %s\nauth = none\npath = /in\n[source hx_b]\nadapter = http_server\nport = %s\nauth = none\npath = /in' "$PORT" "$PORT")"
refused "auth = none beside a token" "auth = none beside" "$(printf '[source hx_a]\nadapter = http_server\nport = %s\nauth = none\ntoken = x' "$PORT")"
refused "a certificate without its key" "needs both tls_cert_file and tls_key_file" "$(printf '[source hx_a]\nadapter = http_server\nport = %s\nauth = none\ntls_cert_file = %s' "$PORT" "$WORK/server.pem")"
# shellcheck disable=SC2016 # the ${VAR} is for the producer to expand
refused "an unset token variable" "HX_UNSET_TOKEN, which is not set" "$(printf '[source hx_a]\nadapter = http_server\nport = %s\ntoken = ${HX_UNSET_TOKEN}' "$PORT")"

start_producer
start_worker
OPEN=$URL/v1/sources/hx_open
ev() { printf '{"run":"%s","case":"%s","i":%s}' "$RUN" "$1" "$2"; }

# ------------------------------------------------------------ bodies
echo "== body forms"
expect 202 "one object" "$OPEN" --data-binary "$(ev object 0)"
grep -q '"accepted":1' "$WORK/last.body" || fail "202 without accepted=1: $(<"$WORK/last.body")"
expect 202 "an array of three" "$OPEN" -H 'Content-Type: application/json' \
    --data-binary "[$(ev array 0), $(ev array 1),$(ev array 2)]"
expect 202 "NDJSON by Content-Type" "$OPEN" -H 'Content-Type: application/x-ndjson' \
    --data-binary "$(ev ndjson 0)"$'\n'"$(ev ndjson 1)"$'\n'
expect 202 "NDJSON sniffed" "$OPEN" --data-binary "$(ev sniffed 0)"$'\n'"$(ev sniffed 1)"
printf '%s\n%s\n' "$(ev gzip 0)" "$(ev gzip 1)" | gzip >"$WORK/body.gz"
expect 202 "NDJSON, gzip" "$OPEN" -H 'Content-Encoding: gzip' --data-binary @"$WORK/body.gz"
expect 400 "gzip that is not" "$OPEN" -H 'Content-Encoding: gzip' --data-binary "$(ev badgz 0)"
expect 400 "one invalid event in a batch of four" "$OPEN" -H 'Content-Type: application/x-ndjson' \
    --data-binary "$(ev invalid 0)"$'\n''[1]'$'\n'"$(ev invalid 2)"$'\n''{"run":"'"$RUN"'","case":"invalid",'
for want in '"index":1,"reason":"not_an_object"' '"index":3,"reason":"invalid_json"' '"invalid":2'; do
    grep -qF "$want" "$WORK/last.body" || fail "400 does not name $want: $(<"$WORK/last.body")"
done
expect 400 "invalid UTF-8" "$OPEN" --data-binary $'{"run":"x","bad":"\xff"}'
grep -qF '"reason":"invalid_utf8"' "$WORK/last.body" || fail "no invalid_utf8: $(<"$WORK/last.body")"
expect 400 "empty body" "$OPEN" --data-binary ''
expect 405 "GET on a source" "$OPEN" -X GET
expect 404 "an unknown path" "$URL/v1/sources/nope" --data-binary '{}'
# A sentinel after the refused batch: once it is stored, so would the batch be.
expect 202 "sentinel" "$OPEN" --data-binary "$(ev sentinel 0)"
wait_until 30 "the body forms stored" rows_are "payload->>'case' = 'sentinel'" 1
for c in object:1 array:3 ndjson:2 sniffed:2 gzip:2 invalid:0; do
    n=$(rows "payload->>'case' = '${c%%:*}'")
    [[ $n == "${c##*:}" ]] || fail "case ${c%%:*}: $n rows, expected ${c##*:}"
done
echo "   stored: 1 object, 3 of the array, 2+2 NDJSON, 2 gzip, none of the refused batch"

# ------------------------------------------------------------ auth
echo "== bearer tokens and signatures"
TOK=$URL/v1/sources/hx_tok
for t in old-token new-token env-token; do
    expect 202 "bearer $t" "$TOK" -H "Authorization: Bearer $t" --data-binary "$(ev "tok-$t" 0)"
done
before=$(metric 'sluice_http_auth_failures_total{source="hx_tok"}')
expect 401 "a wrong token" "$TOK" -H "Authorization: Bearer nope" --data-binary "$(ev tokbad 0)"
grep -qi '^WWW-Authenticate: Bearer' "$WORK/last.headers" || fail "401 without WWW-Authenticate"
expect 401 "no token" "$TOK" --data-binary "$(ev tokbad 1)"
expect 401 "a token in another scheme" "$TOK" -H "Authorization: Basic new-token" \
    --data-binary "$(ev tokbad 2)"
after=$(metric 'sluice_http_auth_failures_total{source="hx_tok"}')
((after - before == 3)) || fail "auth failures counted $before -> $after, expected +3"
logged=$(grep -c 'http request refused source=hx_tok client=127.0.0.1' "$WORK/producer.log")
((logged == 1)) || fail "three refusals from one client logged $logged times, expected once"
echo "   3 refusals counted on /metrics, logged once"
SIG=$URL/hooks/sig
body=$(ev sig 0)
sig=$(printf %s "$body" | openssl dgst -sha256 -hmac hook-secret | awk '{print $NF}')
expect 202 "a right signature" "$SIG" -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body"
expect 401 "a signature of other bytes" "$SIG" -H "X-Hub-Signature-256: sha256=$sig" \
    --data-binary "$(ev sig 1)"
wrong=$(printf %s "$body" | openssl dgst -sha256 -hmac other-secret | awk '{print $NF}')
expect 401 "a signature under another secret" "$SIG" -H "X-Hub-Signature-256: sha256=$wrong" \
    --data-binary "$body"
expect 401 "no signature" "$SIG" --data-binary "$body"
expect 404 "the signed source at its default path" "$URL/v1/sources/hx_sig" --data-binary "$body"

# ------------------------------------------------------------ limits
echo "== sizes and rates"
head -c 5000 /dev/zero | tr '\0' ' ' >"$WORK/big"
printf '{}' >>"$WORK/big"
expect 413 "5000 bytes over max_body_bytes 4096 (Content-Length)" "$OPEN" --data-binary @"$WORK/big"
# A client that announces a large body is answered before sending any of
# it; a chunked body is counted as it comes and kept no further than the
# bound, answered 413 at its end, and cut off unanswered once it goes on
# past twice the bound. (Raw sockets: curl keeps sending a body the server
# stopped reading, and the connection's reset can overtake the answer.)
python3 - "$PORT" <<'PY' || fail "a body over max_body_bytes not refused as it should"
import socket, sys
def ask(head, chunks):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(head)
    for c in chunks:
        s.sendall(c)
    status = s.recv(200).split(b"\r\n")[0]  # times out if the server waits for more
    s.close()
    return status
head = b"POST /v1/sources/hx_open HTTP/1.1\r\nHost: x\r\n"
got = ask(head + b"Content-Length: 100000000\r\n\r\n", [])
if b" 413 " not in got:
    sys.exit(f"announced 100 MB: expected 413 before the body, got {got!r}")
chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
got = ask(head + b"Transfer-Encoding: chunked\r\n\r\n", [chunk, chunk, b"0\r\n\r\n"])
if b" 413 " not in got:
    sys.exit(f"chunked 8 KiB: expected 413, got {got!r}")
got = ask(head + b"Transfer-Encoding: chunked\r\n\r\n", [chunk] * 3)
if got != b"":
    sys.exit(f"chunked 12 KiB and more to come: expected the connection cut, got {got!r}")
PY
echo "   413 before a body announced too large; chunked: 413 at its end, cut off past twice the bound"
printf '{"run":"%s","case":"gzbomb","pad":"%s"}' "$RUN" "$(head -c 6000 /dev/zero | tr '\0' a)" |
    gzip >"$WORK/bomb.gz"
expect 413 "a small gzip that inflates over max_body_bytes" "$OPEN" -H 'Content-Encoding: gzip' \
    --data-binary @"$WORK/bomb.gz"
RATE=$URL/v1/sources/hx_rate
batch=$(for i in $(seq 0 14); do ev rate "$i"; echo; done)
expect 202 "15 events under a rate of 20/s" "$RATE" --data-binary "$batch"
# 15 more at once need 15 of the bucket's at most 20 tokens, refilled at
# 20/s: one of ten quick tries gets 429 however slow this machine is.
for try in $(seq 1 10); do
    post "$WORK/last" "$RATE" --data-binary "$batch"
    [[ $(<"$WORK/last.code") != 429 ]] || break
done
[[ $(<"$WORK/last.code") == 429 ]] || fail "ten batches of 15 at a rate of 20/s: no 429"
echo "   429: batch $try of 15 more"
ra=$(awk 'tolower($1) == "retry-after:" { print $2 + 0 }' "$WORK/last.headers")
((ra >= 1)) || fail "429 without Retry-After"
echo "   Retry-After: $ra"

# ------------------------------------------------------------ ids
echo "== retries store once"
for attempt in 1 2; do
    expect 202 "the same Idempotency-Key, attempt $attempt" "$OPEN" -H "Idempotency-Key: k-$RUN" \
        --data-binary "$(ev idem 0)"$'\n'"$(ev idem 1)"
    expect 202 "the same id_pointer member, attempt $attempt" "$OPEN" \
        --data-binary "{\"run\":\"$RUN\",\"case\":\"idptr\",\"id\":\"order-$RUN\",\"try\":$attempt}"
    expect 202 "the same bytes, attempt $attempt" "$OPEN" --data-binary "$(ev bytes 0)"
done
expect 202 "sentinel" "$OPEN" --data-binary "$(ev sentinel 1)"
wait_until 30 "the retries stored" rows_are "payload->>'case' = 'sentinel'" 2
for c in idem:2 idptr:1 bytes:1; do
    n=$(rows "payload->>'case' = '${c%%:*}'")
    [[ $n == "${c##*:}" ]] || fail "retried ${c%%:*}: $n rows, expected ${c##*:}"
done
echo "   Idempotency-Key: 2 rows of 2 events sent twice; id_pointer and bytes: 1 row each"

# ------------------------------------------------------------ no queue
echo "== an event no queue takes: 503, then stored once when the queue is back"
# Without hx_open's queue and sluice.q.unrouted the broker returns the
# event (mandatory): the producer holds it unconfirmed and publishes it
# again until a queue takes it, so the client must get 503, never a 2xx,
# and its retry with the same Idempotency-Key must not store it twice.
[[ ${SLUICE_AMQP_URL%%,*} =~ ^amqps?://(([^:@/]*)(:([^@/]*))?@)? ]] || fail "cannot read SLUICE_AMQP_URL"
MGMT_AUTH=${BASH_REMATCH[2]:-guest}:${BASH_REMATCH[4]:-guest}
mgmt_delete_queue() {
    curl -fsS -u "$MGMT_AUTH" -X DELETE "${SLUICE_MGMT_URL%/}/api/queues/%2F/$1" >/dev/null ||
        fail "deleting queue $1 through the management API"
}
mgmt_delete_queue sluice.q.hx_open
mgmt_delete_queue sluice.q.unrouted
expect 503 "no queue takes the event" "$OPEN" -H "Idempotency-Key: nq-$RUN" --data-binary "$(ev noqueue 0)"
ra=$(awk 'tolower($1) == "retry-after:" { print $2 + 0 }' "$WORK/last.headers")
((ra >= 1)) || fail "503 without Retry-After"
log_has producer "message returned" || fail "the producer did not log the returned event"
(($(rows "payload->>'case' = 'noqueue'") == 0)) || fail "an event answered 503 for want of a queue is stored already"
"$BIN/broker-setup/sluice-setup" --config "$CONF" >>"$WORK/setup.log" 2>&1 || fail "sluice-setup failed"
# The held copy goes out again by itself (backoff of at most 30 s) and
# the worker, its consumer cancelled with the queue, consumes it again.
wait_until 60 "the held event stored once the queue is back" rows_are "payload->>'case' = 'noqueue'" 1
expect 202 "the client's retry, same Idempotency-Key" "$OPEN" -H "Idempotency-Key: nq-$RUN" \
    --data-binary "$(ev noqueue 0)"
expect 202 "sentinel" "$OPEN" --data-binary "$(ev sentinel-nq 1)"
wait_until 30 "the sentinel stored" rows_are "payload->>'case' = 'sentinel-nq'" 1
rows_are "payload->>'case' = 'noqueue'" 1 || fail "the event answered 503, then 202, is stored $(<"$WORK/rows.seen") times"
echo "   503 with Retry-After $ra; stored once when the queue was back; the retry added nothing"

# ------------------------------------------------------------ TLS
echo "== HTTPS"
expect 202 "HTTPS with the CA" "https://localhost:$TLS_PORT/v1/sources/hx_tls" \
    --cacert "$WORK/ca.pem" --data-binary "$(ev tls 0)"
rc=0
curl -s -o /dev/null --max-time 10 --cacert "$WORK/wrong.pem" -X POST --data-binary "$(ev tls 1)" \
    "https://localhost:$TLS_PORT/v1/sources/hx_tls" || rc=$?
((rc == 60)) || fail "HTTPS against another CA: curl exit $rc, expected 60 (certificate refused)"
echo "   refused by curl with another CA (exit 60)"
wait_until 30 "the HTTPS event stored" rows_are "payload->>'case' = 'tls'" 1

# ------------------------------------------------------------ metrics
echo "== /metrics and /healthz"
[[ $(curl -s "$URL/healthz") == ok ]] || fail "/healthz is not ok"
n=$(metric 'sluice_http_requests_total{source="hx_open",code="202"}')
((n >= 12)) || fail "202s of hx_open on /metrics: $n"
n=$(metric 'sluice_http_confirm_seconds_count{source="hx_open"}')
((n >= 12)) || fail "confirm histogram count of hx_open: $n"
n=$(metric 'sluice_http_events_accepted_total{source="hx_open"}')
((n >= 20)) || fail "events accepted of hx_open: $n"
echo "   requests by code, events, bytes and the time to confirm are there"

# ------------------------------------------------------------ slow client
echo "== a client sending one byte a second holds back no other"
python3 - "$PORT" "$RUN" >"$WORK/slow.out" 2>&1 <<'PY' &
import socket, sys, time
body = ('{"run":"%s","case":"slow"}' % sys.argv[2]).encode()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(b"POST /v1/sources/hx_open HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
print("started", flush=True)
for i in range(len(body)):
    s.sendall(body[i:i + 1])
    time.sleep(0.25 if i < 4 else 1)
print(s.recv(200).split(b"\r\n")[0].decode())
PY
slow=$!
client_pids+=("$slow")
wait_until 10 "the slow client started" grep -q started "$WORK/slow.out"
started=$SECONDS
for i in $(seq 0 19); do
    t0=$(date +%s%N)
    expect 202 "fast request $i beside the slow one" "$OPEN" --data-binary "$(ev fast "$i")" >/dev/null
    ms=$((($(date +%s%N) - t0) / 1000000))
    ((ms < 2000)) || fail "fast request $i took $ms ms beside a slow client"
done
kill -0 "$slow" 2>/dev/null || fail "the slow client finished before the fast ones: not a test"
echo "   20 requests answered 202 in under 2 s each while the slow one was sending ($((SECONDS - started)) s)"
wait "$slow" || fail "the slow client failed: $(cat "$WORK/slow.out")"
client_pids=()
grep -q ' 202 ' "$WORK/slow.out" || fail "the slow client got $(cat "$WORK/slow.out")"
echo "   the slow client, once done, got 202 too"

# ------------------------------------------------------------ clients
# client NAME SOURCE-URL EVENTS: posts batches with Idempotency-Key
# <run>-NAME-<n> until $WORK/stop exists (at most 2000), one line per request
# in NAME.status: key, status, start and end (ns). Bodies are kept in
# bodies/ for retries.
client() {
    local name=$1 url=$2 events=$3 i=0 key body t0 code
    mkdir -p "$WORK/bodies"
    while [[ ! -e $WORK/stop ]] && ((i < 2000)); do
        i=$((i + 1))
        key=$RUN-$name-$i # keys differ from run to run, as from client to client
        body=$(for j in $(seq 0 $((events - 1))); do
            printf '{"run":"%s","case":"%s","key":"%s","j":%d}\n' "$RUN" "$PHASE" "$key" "$j"
        done)
        printf '%s' "$body" >"$WORK/bodies/$key"
        t0=$(date +%s%N)
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST \
            -H "Idempotency-Key: $key" -H 'Content-Type: application/x-ndjson' \
            --data-binary "$body" "$url" 2>/dev/null) || true
        echo "$key $code $t0 $(date +%s%N)" >>"$WORK/$name.status"
        [[ $code != 000 ]] || sleep 0.1 # no listener: do not spin
    done
}
start_clients() { # PHASE N URL EVENTS
    PHASE=$1
    rm -f "$WORK/stop"
    for c in $(seq 1 "$2"); do
        client "$1-c$c" "$3" "$4" &
        client_pids+=($!)
    done
}
stop_clients() {
    touch "$WORK/stop"
    local p
    for p in "${client_pids[@]}"; do wait "$p" || true; done
    client_pids=()
}
statuses() { cat "$WORK/$1"-c*.status 2>/dev/null; }
count_status() { statuses "$1" | awk -v c="$2" '$2 == c' | wc -l; }
at_least() { (($("${@:2}") >= $1)); } # at_least N COMMAND...: its output is N or more

# ------------------------------------------------------------ broker outage
echo "== RabbitMQ stopped while 4 clients post"
start_clients outage 4 "$OPEN" 5
wait_until 30 "some requests answered 202" at_least 8 count_status outage 202
"$STACK" stop-rabbit >"$WORK/stack.log" 2>&1
rabbit_down=1
stopped_at=$(date +%s%N) # the broker is gone by now
wait_until 60 "503s while the broker is away" at_least 4 count_status outage 503
"$STACK" start-rabbit >>"$WORK/stack.log" 2>&1
rabbit_down=0
restarted_at=$(date +%s%N)
after_restart() { statuses outage | awk -v t="$restarted_at" '$2 == 202 && $3 > t' | wc -l; }
wait_until 120 "202s again after the broker is back" at_least 8 after_restart
stop_clients
total=$(statuses outage | wc -l)
ok=$(count_status outage 202)
unavailable=$(count_status outage 503)
((ok + unavailable == total)) ||
    fail "requests not answered 202 or 503: $(statuses outage | awk '$2 != 202 && $2 != 503' | head -3)"
# Admitted, their events handed on, and then not confirmed: the fault
# struck them in flight (the later 503s are refusals at the door while
# the source is known to be stalled).
struck=$(grep -c 'answered 503 source=hx_open .*reason="the broker did not confirm' \
    "$WORK/producer.log" || true)
sent_before=$(statuses outage | awk -v t="$stopped_at" '$3 < t && $2 == 503' | wc -l)
((struck >= 1 && sent_before >= 1)) ||
    fail "no request was in flight when the broker stopped: the fault struck nothing"
echo "   $total requests: $ok answered 202, $unavailable 503 ($struck of them waiting for confirms when the broker went)"
kill -0 "$worker_pid" 2>/dev/null || start_worker
keys_ok=$(statuses outage | awk '$2 == 202 { printf "%s\x27%s\x27", (n++ ? "," : ""), $1 }')
wait_until 120 "every event answered 202 stored" rows_are \
    "payload->>'case' = 'outage' AND payload->>'key' IN ($keys_ok)" $((ok * 5))
dups=$(sql "SELECT count(*) - count(DISTINCT (payload->>'key', payload->>'j')) FROM events
            WHERE payload->>'run' = '$RUN' AND payload->>'case' = 'outage'")
((dups == 0)) || fail "$dups events of the outage stored twice"
echo "   all $((ok * 5)) events answered 202 stored, none twice"

# ------------------------------------------------------------ SIGKILL
echo "== the producer SIGKILLed while 6 clients post batches of 20"
start_clients kill 6 "$OPEN" 20
wait_until 30 "some requests answered 202" at_least 8 count_status kill 202
# Strike while requests wait for their confirms. The clients spend part of
# their time starting curl, between requests, so a kill may land in a gap:
# then the producer is started again and struck again, up to 5 times.
open_waiting() { metric 'sluice_http_requests_waiting{source="hx_open"}'; }
# struck_at NS: requests sent before NS, ended after it, not answered 202.
struck_at() { statuses kill | awk -v t="$1" '$3 < t && $4 >= t && $2 != 202' | wc -l; }
struck=0
kills=0
while ((struck == 0 && kills < 5)); do
    wait_until 30 "requests waiting for confirms" at_least 2 open_waiting
    killed_at=$(date +%s%N)
    kill -9 "$producer_pid"
    wait "$producer_pid" 2>/dev/null || true
    kills=$((kills + 1))
    refused=$(count_status kill 000)
    wait_until 30 "requests refused while the producer is gone" at_least $((refused + 4)) count_status kill 000
    start_producer
    restarted_at=$(date +%s%N)
    struck=$(struck_at "$killed_at")
done
((struck >= 1)) || fail "$kills kills, none while a request was in flight: the fault struck nothing"
after_kill() { statuses kill | awk -v t="$restarted_at" '$2 == 202 && $3 > t' | wc -l; }
wait_until 60 "202s from the new producer" at_least 4 after_kill
stop_clients
total=$(statuses kill | wc -l)
ok=$(count_status kill 202)
echo "   $total requests: $ok answered 202, $struck in flight at the kill and unanswered ($kills kill(s))"
# The clients retry every request not answered 202 with its Idempotency-Key,
# and a few that were answered 202, as a client that lost the answer would.
retry() { # KEY
    local code
    for _ in $(seq 1 20); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST \
            -H "Idempotency-Key: $1" -H 'Content-Type: application/x-ndjson' \
            --data-binary @"$WORK/bodies/$1" "$OPEN" 2>/dev/null) || true
        [[ $code == 202 ]] && return 0
        sleep 0.5
    done
    fail "retrying $1 was never answered 202 (last $code)"
}
for key in $(statuses kill | awk '$2 != 202 { print $1 }'); do retry "$key"; done
for key in $(statuses kill | awk '$2 == 202 { print $1 }' | head -n 10); do retry "$key"; done
wait_until 120 "every request of the kill stored" rows_are "payload->>'case' = 'kill'" $((total * 20))
dups=$(sql "SELECT count(*) - count(DISTINCT (payload->>'key', payload->>'j')) FROM events
            WHERE payload->>'run' = '$RUN' AND payload->>'case' = 'kill'")
((dups == 0)) || fail "$dups events of the kill stored twice"
echo "   all $((total * 20)) events stored once, after $((total - ok)) retries and 10 repeats of 202s"

# ------------------------------------------------------------ SIGTERM
echo "== SIGTERM while requests wait for their confirms"
"$STACK" stop-rabbit >>"$WORK/stack.log" 2>&1
rabbit_down=1
wait_until 30 "the producer seeing the broker gone" grep -q 'connection lost\|broker unavailable' \
    "$WORK/producer.log"
# Bytes waiting for confirms are bounded: with 40 kB of one request
# waiting, 40 kB more are refused at once.
pad=$(head -c 900 /dev/zero | tr '\0' p)
for i in $(seq 0 39); do printf '{"run":"%s","case":"small","i":%d,"pad":"%s"}\n' "$RUN" "$i" "$pad"; done >"$WORK/small"
post "$WORK/small1" "$URL/v1/sources/hx_small" --data-binary @"$WORK/small" &
client_pids+=($!)
small_waiting() { metric 'sluice_http_requests_waiting{source="hx_small"}'; }
wait_until 30 "a 40 kB request waiting" at_least 1 small_waiting
t0=$SECONDS
expect 503 "40 kB more with 40 kB of 64 kB waiting" "$URL/v1/sources/hx_small" --data-binary @"$WORK/small"
grep -q 'buffer full' "$WORK/last.body" || fail "503 not for a full buffer: $(<"$WORK/last.body")"
grep -qi '^Retry-After:' "$WORK/last.headers" || fail "503 for a full buffer without Retry-After"
((SECONDS - t0 < 5)) || fail "the full buffer's 503 took $((SECONDS - t0)) s"
for i in 1 2 3 4 5 6; do
    post "$WORK/term$i" "$TOK" -H "Authorization: Bearer new-token" --data-binary "$(ev term "$i")" &
    client_pids+=($!)
done
waiting() { metric 'sluice_http_requests_waiting{source="hx_tok"}'; }
wait_until 30 "six requests waiting" at_least 6 waiting
t0=$SECONDS
kill -TERM "$producer_pid"
for p in "${client_pids[@]}"; do wait "$p" || true; done
client_pids=()
for i in 1 2 3 4 5 6; do
    [[ $(<"$WORK/term$i.code") == 503 ]] ||
        fail "request $i in flight at SIGTERM: HTTP $(<"$WORK/term$i.code"), expected 503"
    grep -qi '^Retry-After:' "$WORK/term$i.headers" || fail "503 at SIGTERM without Retry-After"
done
[[ $(<"$WORK/small1.code") == 503 ]] ||
    fail "the 40 kB request in flight at SIGTERM: HTTP $(<"$WORK/small1.code"), expected 503"
((SECONDS - t0 < 9)) || fail "the answers came from the confirm timeout, not the shutdown"
wait "$producer_pid" || true
producer_pid=
echo "   six requests answered 503 with Retry-After within $((SECONDS - t0)) s of SIGTERM"
"$STACK" start-rabbit >>"$WORK/stack.log" 2>&1
rabbit_down=0

# A sanitizer build reports into the logs of processes whose exit codes
# this test does not judge (killed, stopped with requests unconfirmed).
! grep -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$WORK/producer.log" ||
    fail "a sanitizer report in the producer's log"

echo "PASS: test_http_ingest"
