#!/usr/bin/env bash
# shellcheck disable=SC2016  # sh -c '...' bodies expand in the child shell
#
# stack.sh - sluice's backing services on this machine, without Docker:
# RabbitMQ (management plugin on) and PostgreSQL 15 from Debian 12's
# packages, listening on 127.0.0.1 only, all state in one folder.
#
# Usage: scripts/stack.sh VERB
#   start         start both servers if needed; return once both answer
#   stop          stop both servers (fine if nothing runs)
#   restart       stop, then start
#   status        one line per server; exit 0 if both answer, 3 otherwise
#   env           print `export SLUICE_..._URL/DSN=...` lines, for eval
#   start-rabbit, stop-rabbit, start-pg, stop-pg
#                 one server only (the fault tests kill and revive them)
#   block-publishers, unblock-publishers
#                 raise or clear RabbitMQ's memory alarm, which stops it
#                 reading from publishing connections (a fault test's
#                 way to hold messages unconfirmed; a restart clears it)
#
# Environment:
#   SLUICE_STATE_DIR      state folder (default: <checkout>/.run; as root, when
#                         the rabbitmq or postgres user cannot reach the
#                         checkout, /var/tmp/sluice-state-<checksum of its path>)
#   SLUICE_AMQP_PORT      AMQP listener (default 5680)
#   SLUICE_MGMT_PORT      RabbitMQ management HTTP API (default 15680)
#   SLUICE_PG_PORT        PostgreSQL (default 5440)
#   SLUICE_START_TIMEOUT  seconds to wait for each server (default 90)
# Derived from the AMQP port, so stacks on different ports never meet:
#   node name sluice-<AMQP port>@localhost, Erlang distribution port
#   AMQP + 20000, and a private epmd on AMQP + 30000 that `stop` shuts down.
#
# State folder layout:
#   stack.lock                  serialises start/stop calls on this folder
#   rabbitmq/                   owned by the rabbitmq user when run as root
#     home/.erlang.cookie       HOME of the server and of every rabbitmqctl call
#     rabbitmq.conf             listeners; rewritten on every start
#     enabled_plugins           [rabbitmq_management].
#     rabbitmq-env.conf         empty: keeps /etc/rabbitmq/rabbitmq-env.conf out
#     mnesia/<node>/            node database (queues, exchanges, users)
#     mnesia/<node>.pid         pid file of the running node
#     log/<node>.log            server log
#     log/console.log           the server's stdout and stderr
#   postgres/                   owned by the postgres user when run as root
#     data/                     PGDATA: superuser `sluice`, trust auth, UTF8,
#                               database `sluice`; data/sluice.conf holds the
#                               listen settings and is rewritten on every start
#     socket/                   unix socket directory
#     postgres.log              server log
#     initdb.log                output of the one-time initdb
#
# Run as root, the servers run as the rabbitmq and postgres system users
# (PostgreSQL refuses to run as root), so those users must be able to
# reach the state folder. Run as anyone else, they run as that user.

set -euo pipefail
umask 022

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
CHECKOUT=$(dirname "$(dirname "$SCRIPT")")
RMQ_BIN=/usr/lib/rabbitmq/bin
PG_BIN=/usr/lib/postgresql/15/bin

# ---------------------------------------------------------------- helpers

usage() {
    sed -n '/^# Usage:/,/^# State folder layout/{/^# State folder/d;s/^# \{0,1\}//;p}' \
        "$SCRIPT"
}

note() { echo "$*"; }
die() { echo "stack.sh: $*" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "$SCRIPT")/lib.sh"

# Read the environment, validate it and derive every name and path.
configure() {
    STATE_DIR=${SLUICE_STATE_DIR:-$(default_state_dir rabbitmq postgres)}
    [[ $STATE_DIR == /* ]] || STATE_DIR=$PWD/$STATE_DIR
    AMQP_PORT=${SLUICE_AMQP_PORT:-5680}
    MGMT_PORT=${SLUICE_MGMT_PORT:-15680}
    PG_PORT=${SLUICE_PG_PORT:-5440}
    START_TIMEOUT=${SLUICE_START_TIMEOUT:-90}

    local name value
    for name in AMQP_PORT MGMT_PORT PG_PORT START_TIMEOUT; do
        value=${!name}
        if ! [[ $value =~ ^[0-9]{1,5}$ ]] || (( 10#$value < 1 || 10#$value > 65535 )); then
            die "SLUICE_$name must be a number from 1 to 65535, not '$value'"
        fi
        printf -v "$name" %d "$((10#$value))"
    done
    (( AMQP_PORT <= 35535 )) ||
        die "SLUICE_AMQP_PORT must be at most 35535 (epmd listens on it + 30000)"

    if (( EUID == 0 )); then
        RMQ_USER=rabbitmq PG_USER=postgres
    else
        RMQ_USER=$(id -un) PG_USER=$(id -un)
    fi

    RMQ_DIR=$STATE_DIR/rabbitmq
    RMQ_NODE=sluice-$AMQP_PORT@localhost
    RMQ_PID=$RMQ_DIR/mnesia/$RMQ_NODE.pid
    RMQ_LOG=$RMQ_DIR/log/$RMQ_NODE.log
    RMQ_CONSOLE=$RMQ_DIR/log/console.log
    DIST_PORT=$((AMQP_PORT + 20000))
    EPMD_PORT=$((AMQP_PORT + 30000))
    RMQ_LAUNCHER=        # pid of the server launched by this invocation
    RMQ_T0=$SECONDS      # when this invocation launched (or found) the node
    PG_LAUNCHED=         # set once this invocation ran pg_ctl start

    # Shared by the server and every rabbitmqctl call: same HOME (hence the
    # same cookie), node name and epmd; nothing read from /etc/rabbitmq.
    RMQ_ENV=(
        "HOME=$RMQ_DIR/home"
        "RABBITMQ_CONF_ENV_FILE=$RMQ_DIR/rabbitmq-env.conf"
        "RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq.conf"
        "RABBITMQ_ADVANCED_CONFIG_FILE=$RMQ_DIR/advanced.config"
        "RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/enabled_plugins"
        "RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia"
        "RABBITMQ_LOG_BASE=$RMQ_DIR/log"
        "RABBITMQ_PID_FILE=$RMQ_PID"
        "RABBITMQ_NODENAME=$RMQ_NODE"
        "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
        "RABBITMQ_NODE_PORT=$AMQP_PORT"
        "RABBITMQ_DIST_PORT=$DIST_PORT"
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "ERL_EPMD_PORT=$EPMD_PORT"
        "ERL_EPMD_ADDRESS=127.0.0.1"
        "ERL_CRASH_DUMP=$RMQ_DIR/log/erl_crash.dump"
    )

    PG_DIR=$STATE_DIR/postgres
    PG_DATA=$PG_DIR/data
    PG_SOCK=$PG_DIR/socket
    PG_LOG=$PG_DIR/postgres.log
}

check_binaries() {
    [[ -x $RMQ_BIN/rabbitmq-server ]] ||
        die "$RMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
    [[ -x $PG_BIN/pg_ctl ]] ||
        die "$PG_BIN/pg_ctl not found (apt-get install postgresql-15)"
    if (( EUID == 0 )); then
        getent passwd rabbitmq postgres >/dev/null ||
            die "the rabbitmq and postgres system users are missing"
    fi
}

# Serialise start/stop calls on one state folder (tests may run in
# parallel). Servers launched while holding it must not inherit fd 9.
take_lock() {
    ensure_state_dir
    [[ -e $STATE_DIR/stack.lock ]] || : >"$STATE_DIR/stack.lock"
    exec 9<"$STATE_DIR/stack.lock"
    flock -w $((START_TIMEOUT * 2)) 9 ||
        die "another stack.sh keeps $STATE_DIR/stack.lock locked"
}

ensure_state_dir() {
    mkdir -p "$STATE_DIR" ||
        die "cannot create $STATE_DIR"
    [[ -w $STATE_DIR ]] ||
        die "$STATE_DIR is not writable by $(id -un); set SLUICE_STATE_DIR"
}

# ensure_service_dir DIR USER: DIR exists, belongs to USER, and USER can
# reach it (as root the service users need search access to every parent).
ensure_service_dir() {
    local dir=$1 user=$2
    ensure_state_dir
    [[ -d $dir ]] || mkdir "$dir"
    if (( EUID == 0 )); then
        [[ $(stat -c %U "$dir") == "$user" ]] || chown -R "$user:" "$dir"
        as_user "$user" test -w "$dir" ||
            die "the $user user cannot reach $dir: every parent folder must be" \
                "searchable by others (inspect with: namei -l $dir);" \
                "chmod o+x the parents or set SLUICE_STATE_DIR elsewhere"
    else
        [[ -O $dir && -w $dir ]] ||
            die "$dir does not belong to $(id -un) (left by a run as root?);" \
                "remove it or set SLUICE_STATE_DIR elsewhere"
    fi
}

# --------------------------------------------------------------- RabbitMQ

rmq() { as_user "$RMQ_USER" env "${RMQ_ENV[@]}" "$@"; }
rmq_ctl() { rmq "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"; }

rabbit_pid() {
    local pid
    pid=$(cat "$RMQ_PID" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

# The Erlang VM named in the pid file is alive (booting or running).
rabbit_alive() {
    local pid
    pid=$(rabbit_pid) && [[ $(ps -o comm= -p "$pid" 2>/dev/null) == beam* ]]
}

# Our node is registered with our epmd (also works if the pid file is gone).
rabbit_registered() {
    local names
    names=$(epmd -port "$EPMD_PORT" -names 2>/dev/null) &&
        [[ $names == *"name sluice-$AMQP_PORT at port"* ]]
}

rabbit_answering() {
    port_open "$AMQP_PORT" &&
        curl -fsS -o /dev/null --max-time 5 -u guest:guest \
            "http://127.0.0.1:$MGMT_PORT/api/overview" 2>/dev/null
}

rabbit_fail() {
    {
        echo "stack.sh: RabbitMQ did not come up on 127.0.0.1:$AMQP_PORT: $1"
        echo "stack.sh: see $RMQ_LOG and $RMQ_CONSOLE"
        # A crash lands on the console; a slow boot shows in the node log.
        if rabbit_alive; then
            tail -n 15 "$RMQ_LOG"
        else
            tail -n 15 "$RMQ_CONSOLE"
        fi 2>/dev/null | sed 's/^/  | /' || true
    } >&2
    if ! rabbit_alive && ! rabbit_registered; then
        epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    fi
    exit 1
}

rabbit_prepare() {
    ensure_service_dir "$RMQ_DIR" "$RMQ_USER"
    as_user "$RMQ_USER" mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
    local cookie=$RMQ_DIR/home/.erlang.cookie
    # Created up front: the server and a concurrent `rabbitmqctl wait`
    # would otherwise each invent a different one.
    if [[ ! -s $cookie ]]; then
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F |
            as_user "$RMQ_USER" sh -c 'umask 077; cat > "$1"' sh "$cookie"
        as_user "$RMQ_USER" chmod 400 "$cookie"
    fi
    write_as "$RMQ_USER" "$RMQ_DIR/rabbitmq.conf" <<EOF
# Written by scripts/stack.sh on every start; edits are lost.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $MGMT_PORT
log.console = false
log.file.level = info
EOF
    echo '[rabbitmq_management].' | write_as "$RMQ_USER" "$RMQ_DIR/enabled_plugins"
    write_as "$RMQ_USER" "$RMQ_DIR/rabbitmq-env.conf" </dev/null
    rm -f "$RMQ_PID"
}

# Start the node in the background unless it is already up or booting.
rabbit_launch() {
    [[ -z $RMQ_LAUNCHER ]] || return 0
    rabbit_alive && return 0
    if rabbit_registered; then
        die "RabbitMQ: node $RMQ_NODE runs but $RMQ_PID is missing; run stop-rabbit first"
    fi
    local port
    for port in "$AMQP_PORT" "$MGMT_PORT"; do
        if port_open "$port"; then
            die "RabbitMQ: 127.0.0.1:$port is already in use by another process"
        fi
    done
    rabbit_prepare
    RMQ_T0=$SECONDS
    note "RabbitMQ: starting node $RMQ_NODE on 127.0.0.1:$AMQP_PORT"
    local cmd=(env "${RMQ_ENV[@]}" "$RMQ_BIN/rabbitmq-server")
    if (( EUID == 0 )); then
        cmd=(runuser -u "$RMQ_USER" -- "${cmd[@]}")
    fi
    echo "=== $(date '+%F %T') start" >>"$RMQ_CONSOLE"
    setsid "${cmd[@]}" >>"$RMQ_CONSOLE" 2>&1 </dev/null 9<&- &
    RMQ_LAUNCHER=$!
}

# Wait until the node has booted, accepts AMQP and its management API answers.
rabbit_wait() {
    local deadline=$((RMQ_T0 + START_TIMEOUT)) out
    while [[ ! -s $RMQ_PID ]]; do
        if [[ -n $RMQ_LAUNCHER ]] && ! kill -0 "$RMQ_LAUNCHER" 2>/dev/null; then
            rabbit_fail "the server exited during boot"
        fi
        (( SECONDS < deadline )) || rabbit_fail "no pid file after ${START_TIMEOUT}s"
        sleep 0.2
    done
    # --timeout alone does not bound the wait for the boot to finish.
    local left=$((deadline > SECONDS ? deadline - SECONDS : 1)) rc=0
    out=$(rmq timeout "$left" "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" \
        wait --timeout "$left" "$RMQ_PID" 2>&1) || rc=$?
    if (( rc == 124 )); then
        rabbit_fail "still booting after ${START_TIMEOUT}s"
    elif (( rc != 0 )); then
        rabbit_fail "rabbitmqctl wait: $(grep -v '^[[:space:]]*$' <<<"$out" | tail -n 1)"
    fi
    until rabbit_answering; do
        rabbit_alive || rabbit_fail "the server exited during boot"
        (( SECONDS < deadline )) ||
            rabbit_fail "AMQP port or management API silent after ${START_TIMEOUT}s"
        sleep 0.2
    done
}

rabbit_start() {
    if rabbit_alive && rabbit_answering; then
        note "RabbitMQ: already running on 127.0.0.1:$AMQP_PORT"
        return 0
    fi
    rabbit_launch
    rabbit_wait
    note "RabbitMQ: up on 127.0.0.1:$AMQP_PORT, management http://127.0.0.1:$MGMT_PORT/ ($((SECONDS - RMQ_T0))s)"
}

# Last resort when rabbitmqctl cannot reach the node.
rabbit_kill() {
    local pid i
    pid=$(rabbit_pid) || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}

rabbit_stop() {
    if rabbit_alive; then
        note "RabbitMQ: stopping $RMQ_NODE"
        rmq_ctl stop "$RMQ_PID" >/dev/null 2>&1 || rabbit_kill
    elif rabbit_registered; then
        note "RabbitMQ: stopping $RMQ_NODE (pid file missing)"
        rmq_ctl stop >/dev/null 2>&1 || true
        local i
        for ((i = 0; i < 150; i++)); do
            rabbit_registered || break
            sleep 0.2
        done
    else
        note "RabbitMQ: not running"
    fi
    rm -f "$RMQ_PID"
    # Our private epmd; it refuses to die while any node is registered.
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}

rabbit_status() {
    if rabbit_alive && rabbit_answering; then
        echo "rabbitmq: running on 127.0.0.1:$AMQP_PORT (management http://127.0.0.1:$MGMT_PORT/)"
    elif rabbit_alive; then
        echo "rabbitmq: not answering on 127.0.0.1:$AMQP_PORT (pid $(rabbit_pid); see $RMQ_LOG)"
        return 1
    else
        echo "rabbitmq: stopped (port $AMQP_PORT)"
        return 1
    fi
}

# ------------------------------------------------------------- PostgreSQL

pg_cmd() { as_user "$PG_USER" "$PG_BIN/$1" "${@:2}"; }

pg_psql() {
    PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$PG_PORT" -U sluice "$@"
}

# A postmaster runs on our data folder.
pg_running() {
    [[ -d $PG_DATA ]] && pg_cmd pg_ctl status -D "$PG_DATA" >/dev/null 2>&1
}

pg_answering() {
    PGCONNECT_TIMEOUT=5 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" \
        -U sluice -d "${1:-postgres}" &&
        pg_psql -d "${1:-postgres}" -tAc 'select 1' >/dev/null 2>&1
}

pg_fail() {
    {
        echo "stack.sh: PostgreSQL did not come up on 127.0.0.1:$PG_PORT: $1"
        echo "stack.sh: see $PG_LOG"
        tail -n 15 "$PG_LOG" 2>/dev/null | sed 's/^/  | /' || true
    } >&2
    exit 1
}

pg_init() {
    note "PostgreSQL: initialising $PG_DATA"
    pg_cmd initdb -D "$PG_DATA" -U sluice --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
        die "PostgreSQL: initdb failed; see $PG_DIR/initdb.log"
    as_user "$PG_USER" sh -c 'cat >> "$1"' sh "$PG_DATA/postgresql.conf" <<'EOF'

# sluice: listen settings are rewritten by scripts/stack.sh on every start.
include = 'sluice.conf'
EOF
}

pg_prepare() {
    ensure_service_dir "$PG_DIR" "$PG_USER"
    [[ -f $PG_DATA/PG_VERSION ]] || pg_init
    as_user "$PG_USER" mkdir -p "$PG_SOCK"
    # A unix socket path must fit in 107 bytes; past that, TCP only.
    local sock=$PG_SOCK
    if (( ${#PG_SOCK} + ${#PG_PORT} + 10 > 107 )); then
        echo "stack.sh: PostgreSQL: $PG_SOCK is too long for a unix socket; TCP only" >&2
        sock=
    fi
    write_as "$PG_USER" "$PG_DATA/sluice.conf" <<EOF
# Written by scripts/stack.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '${sock//\'/\'\'}'
max_connections = 200
shared_buffers = 128MB
EOF
}

pg_ensure_db() {
    local found
    found=$(pg_psql -d postgres -tAc \
        "select 1 from pg_database where datname = 'sluice'" 2>&1) ||
        pg_fail "psql: $found"
    if [[ $found != 1 ]]; then
        note "PostgreSQL: creating database sluice"
        pg_psql -d postgres -c 'create database sluice' ||
            pg_fail "could not create database sluice"
    fi
    pg_answering sluice || pg_fail "database sluice does not answer"
}

# Start the postmaster if none runs on our data folder, and wait until it
# answers. A postmaster that dies meanwhile (say, killed by a fault test
# just before) is replaced once.
pg_launch_once() {
    [[ -z $PG_LAUNCHED ]] || pg_fail "the server exited during start-up"
    PG_LAUNCHED=1
    if port_open "$PG_PORT"; then
        die "PostgreSQL: 127.0.0.1:$PG_PORT is already in use by another process"
    fi
    pg_prepare
    note "PostgreSQL: starting on 127.0.0.1:$PG_PORT"
    pg_cmd pg_ctl start -s -w -t "$START_TIMEOUT" -D "$PG_DATA" -l "$PG_LOG" 9<&- ||
        pg_fail "pg_ctl start failed"
}

pg_start() {
    local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
    if pg_running && pg_answering sluice; then
        note "PostgreSQL: already running on 127.0.0.1:$PG_PORT"
        return 0
    fi
    PG_LAUNCHED=
    until pg_running && pg_answering; do
        pg_running || { pg_launch_once; continue; }
        (( SECONDS < deadline )) || pg_fail "not answering after ${START_TIMEOUT}s"
        sleep 0.2
    done
    pg_ensure_db
    note "PostgreSQL: up on 127.0.0.1:$PG_PORT, database sluice ($((SECONDS - t0))s)"
}

pg_stop() {
    if pg_running; then
        note "PostgreSQL: stopping"
        pg_cmd pg_ctl stop -s -w -t 60 -m fast -D "$PG_DATA" ||
            die "PostgreSQL: pg_ctl stop failed; see $PG_LOG"
    else
        note "PostgreSQL: not running"
    fi
}

pg_status() {
    if pg_running && pg_answering sluice; then
        echo "postgresql: running on 127.0.0.1:$PG_PORT"
    elif pg_running; then
        echo "postgresql: not answering on 127.0.0.1:$PG_PORT (see $PG_LOG)"
        return 1
    else
        echo "postgresql: stopped (port $PG_PORT)"
        return 1
    fi
}

# ------------------------------------------------------------------ verbs

do_start() {
    # RabbitMQ boots slowest: launch it, bring PostgreSQL up meanwhile.
    local t0=$SECONDS
    rabbit_launch
    pg_start
    rabbit_start
    note "stack: ready ($((SECONDS - t0))s); state in $STATE_DIR"
}

do_stop() {
    rabbit_stop
    pg_stop
}

do_status() {
    local rc=0
    rabbit_status || rc=3
    pg_status || rc=3
    return "$rc"
}

do_env() {
    echo "export SLUICE_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT"
    echo "export SLUICE_PG_DSN=postgresql://sluice@127.0.0.1:$PG_PORT/sluice"
    echo "export SLUICE_MGMT_URL=http://127.0.0.1:$MGMT_PORT/"
}

main() {
    case ${1:-} in
        -h | --help | help) usage; return 0 ;;
        "") echo "stack.sh: missing verb (see --help)" >&2; return 2 ;;
    esac
    if (( $# > 1 )); then
        echo "stack.sh: one verb expected, got '$*' (see --help)" >&2
        return 2
    fi
    local verb=$1
    case $verb in
        start | stop | restart | status | env) ;;
        start-rabbit | stop-rabbit | start-pg | stop-pg) ;;
        block-publishers | unblock-publishers) ;;
        *) echo "stack.sh: unknown verb '$verb' (see --help)" >&2; return 2 ;;
    esac
    configure
    # Absolute paths from here on; a neutral working directory keeps
    # runuser'd commands from tripping over a cwd their user cannot enter.
    cd /
    if [[ $verb == env ]]; then
        do_env
        return 0
    fi
    check_binaries
    if [[ $verb == status ]]; then
        do_status || return 3
        return 0
    fi
    take_lock
    case $verb in
        start) do_start ;;
        stop) do_stop ;;
        restart) do_stop; do_start ;;
        start-rabbit) rabbit_start ;;
        stop-rabbit) rabbit_stop ;;
        start-pg) pg_start ;;
        stop-pg) pg_stop ;;
        # A watermark of 0 sets the memory alarm off at once.
        block-publishers) rmq_ctl set_vm_memory_high_watermark 0 >/dev/null ;;
        unblock-publishers) rmq_ctl set_vm_memory_high_watermark 0.4 >/dev/null ;;
    esac
}

main "$@"
