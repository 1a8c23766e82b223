#!/usr/bin/env bash
# shellcheck disable=SC2016  # sh -c '...' bodies expand in the child shell
#
# pg-standby.sh - a streaming standby of the local stack's PostgreSQL
# (scripts/stack.sh) on this machine, from Debian 12's package, without
# Docker: what the PostgreSQL failover tests run against, and a way to try
# a failover by hand. Follows stack.sh's conventions (loopback only, all
# state in one folder, runs as root or as an ordinary user) and works on
# the stack's state: start the stack's PostgreSQL first (stack.sh start-pg).
#
# Usage: scripts/pg-standby.sh VERB [ARG]
#   start [sync|async]  copy the stack's server (SLUICE_PG_PORT) with
#                 pg_basebackup -R into a standby on SLUICE_PG_STANDBY_PORT,
#                 start it and wait until it streams; with sync (the
#                 default) the primary then waits at every commit until the
#                 standby has the commit on disk (synchronous_standby_names,
#                 synchronous_commit = on): a failover loses nothing acked.
#                 With async it does not wait: see docs/scaling.md for
#                 what a failover then loses
#   promote [PORT]  the standby on PORT (default SLUICE_PG_STANDBY_PORT)
#                 becomes a primary and takes writes; it waits for no
#                 synchronous standby until one rejoins
#   kill [PORT]   SIGKILL the postmaster on PORT (default SLUICE_PG_PORT),
#                 as a crash would; returns once its processes are gone
#   rejoin [sync|async]  the stack's server, stopped or killed, comes back
#                 as a standby of the promoted one: its data folder is
#                 copied afresh from it (pg_basebackup) and it starts on
#                 SLUICE_PG_PORT; with sync the promoted one waits for it
#   detach        the standby stops receiving WAL (as if the network to the
#                 primary were cut); `attach` lets it stream again
#   attach        see detach
#   stop          stop the standby (fast shutdown)
#   status        role and WAL position of both servers; exit 3 if one is down
#   env           print `export SLUICE_PG_DSN=...` naming both servers, with
#                 target_session_attrs=read-write: libpq connects to
#                 whichever is the primary
#   wipe          stop the standby, delete its state, and drop the
#                 primary's wait for it
#
# Environment:
#   SLUICE_PG_PORT          the stack's PostgreSQL (default 5440)
#   SLUICE_PG_STANDBY_PORT  the standby (default 5441)
#   SLUICE_STATE_DIR        as for stack.sh (default <checkout>/.run)
#   SLUICE_START_TIMEOUT    seconds to wait for each step (default 90)
#
# State folder layout (under SLUICE_STATE_DIR):
#   postgres/data/                  the stack's server (stack.sh)
#   postgres-standby-<port>/data/   the standby's PGDATA; its sluice.conf
#                                   (port, socket) is written here, not by
#                                   stack.sh
#   postgres-standby-<port>/socket/ its unix socket directory
#   postgres-standby-<port>/postgres.log
# Each server streams under the name sluice_<its port> (application_name),
# the name synchronous_standby_names holds on the primary.

set -euo pipefail
umask 022

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
CHECKOUT=$(dirname "$(dirname "$SCRIPT")")
PG_BIN=/usr/lib/postgresql/15/bin

usage() {
    sed -n '/^# Usage:/,/^# State folder layout/{/^# State folder/d;s/^# \{0,1\}//;p}' \
        "$SCRIPT"
}

note() { echo "pg-standby: $*"; }
die() { echo "pg-standby.sh: $*" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "$SCRIPT")/lib.sh"

configure() {
    STATE_DIR=${SLUICE_STATE_DIR:-$(default_state_dir postgres)}
    [[ $STATE_DIR == /* ]] || STATE_DIR=$PWD/$STATE_DIR
    PG_PORT=${SLUICE_PG_PORT:-5440}
    STANDBY_PORT=${SLUICE_PG_STANDBY_PORT:-5441}
    START_TIMEOUT=${SLUICE_START_TIMEOUT:-90}
    local name value
    for name in PG_PORT STANDBY_PORT START_TIMEOUT; do
        value=${!name}
        if ! [[ $value =~ ^[0-9]{1,5}$ ]] || (( 10#$value < 1 || 10#$value > 65535 )); then
            die "SLUICE_${name/STANDBY_PORT/PG_STANDBY_PORT} must be a number from 1 to 65535, not '$value'"
        fi
        printf -v "$name" %d "$((10#$value))"
    done
    (( PG_PORT != STANDBY_PORT )) || die "SLUICE_PG_STANDBY_PORT must differ from SLUICE_PG_PORT"
    if (( EUID == 0 )); then PG_USER=postgres; else PG_USER=$(id -un); fi
    PRIMARY_DATA=$STATE_DIR/postgres/data
    STANDBY_DIR=$STATE_DIR/postgres-standby-$STANDBY_PORT
    STANDBY_DATA=$STANDBY_DIR/data
}

pg_cmd() { as_user "$PG_USER" "$PG_BIN/$1" "${@:2}"; }

# psql_at PORT ARGS...: psql as sluice on the server on PORT.
psql_at() {
    local port=$1
    shift
    PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U sluice -d postgres "$@"
}

answering() { psql_at "$1" -c 'select 1' >/dev/null 2>&1; }

# in_recovery PORT: prints t (a standby) or f (a primary).
in_recovery() { psql_at "$1" -c 'select pg_is_in_recovery()'; }

# data_of PORT: the data folder of the server on PORT.
data_of() {
    if (( $1 == PG_PORT )); then echo "$PRIMARY_DATA"; else echo "$STANDBY_DATA"; fi
}

wait_until() {
    local what=$1 deadline=$((SECONDS + START_TIMEOUT))
    shift
    until "$@"; do
        (( SECONDS < deadline )) || die "waited ${START_TIMEOUT}s for $what"
        sleep 0.2
    done
}

# streaming_to PRIMARY NAME: the server on PRIMARY streams to NAME.
streaming_to() {
    [[ $(psql_at "$1" -c "select count(*) from pg_stat_replication
        where application_name = '$2' and state = 'streaming'" 2>/dev/null) == 1 ]]
}

# set_sync PORT NAMES: synchronous_standby_names on the server on PORT
# ('' for none), in force at once.
set_sync() {
    if [[ -n $2 ]]; then
        psql_at "$1" -c "alter system set synchronous_standby_names = '$2'" \
            -c 'select pg_reload_conf()' >/dev/null
    else
        psql_at "$1" -c 'alter system reset synchronous_standby_names' \
            -c 'select pg_reload_conf()' >/dev/null
    fi
}

# copy_from SOURCE_PORT DATA NAME PORT SOCKET: DATA becomes a standby of
# the server on SOURCE_PORT, streaming as NAME, to listen on PORT.
copy_from() {
    local source=$1 data=$2 name=$3 port=$4 sock=$5
    as_user "$PG_USER" mkdir -p "$data" "$sock"
    as_user "$PG_USER" chmod 700 "$data"
    note "copying the server on port $source into $data (pg_basebackup)"
    pg_cmd pg_basebackup -D "$data" -R -X stream -c fast \
        -d "host=127.0.0.1 port=$source user=sluice application_name=$name" ||
        die "pg_basebackup from port $source failed"
    # The copy carries its source's settings: its listen settings (stack.sh
    # writes the stack's own on start) and the primary's wait for a
    # synchronous standby, which a standby promoted later must not inherit.
    as_user "$PG_USER" sed -i '/^synchronous_standby_names/d' "$data/postgresql.auto.conf"
    (( ${#sock} + ${#port} + 10 <= 107 )) || sock=
    write_as "$PG_USER" "$data/sluice.conf" <<EOF
# Written by scripts/pg-standby.sh; a standby of port $source.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '${sock//\'/\'\'}'
max_connections = 200
shared_buffers = 128MB
EOF
}

# --------------------------------------------------------------- verbs

do_start() {
    local mode=${1:-sync} name=sluice_$STANDBY_PORT
    [[ $mode == sync || $mode == async ]] || die "start: sync or async, not '$mode'"
    answering "$PG_PORT" ||
        die "no PostgreSQL answers on 127.0.0.1:$PG_PORT: run scripts/stack.sh start-pg first"
    [[ $(in_recovery "$PG_PORT") == f ]] || die "the server on port $PG_PORT is not a primary"
    [[ $(psql_at "$PG_PORT" -c 'show wal_level') != minimal ]] ||
        die "the primary has wal_level = minimal; replica or logical is needed"
    if [[ -f $STANDBY_DATA/PG_VERSION ]]; then
        answering "$STANDBY_PORT" || pg_cmd pg_ctl start -s -w -t "$START_TIMEOUT" \
            -D "$STANDBY_DATA" -l "$STANDBY_DIR/postgres.log" || die "the standby did not start"
    else
        port_open "$STANDBY_PORT" && die "127.0.0.1:$STANDBY_PORT is already in use"
        mkdir -p "$STANDBY_DIR"
        (( EUID != 0 )) || chown "$PG_USER:" "$STANDBY_DIR"
        copy_from "$PG_PORT" "$STANDBY_DATA" "$name" "$STANDBY_PORT" "$STANDBY_DIR/socket"
        pg_cmd pg_ctl start -s -w -t "$START_TIMEOUT" -D "$STANDBY_DATA" \
            -l "$STANDBY_DIR/postgres.log" || die "the standby did not start; see $STANDBY_DIR/postgres.log"
    fi
    wait_until "the standby to stream from port $PG_PORT" streaming_to "$PG_PORT" "$name"
    if [[ $mode == sync ]]; then
        set_sync "$PG_PORT" "$name"
    else
        set_sync "$PG_PORT" ''
    fi
    note "standby up on 127.0.0.1:$STANDBY_PORT, streaming from $PG_PORT ($mode)"
}

do_promote() {
    local port=${1:-$STANDBY_PORT}
    answering "$port" || die "no PostgreSQL answers on 127.0.0.1:$port"
    if [[ $(in_recovery "$port") == t ]]; then
        note "promoting the server on port $port"
        [[ $(psql_at "$port" -c "select pg_promote(true, $START_TIMEOUT)") == t ]] ||
            die "pg_promote on port $port did not finish in ${START_TIMEOUT}s"
    fi
    # No standby is left to wait for; rejoin names one again.
    set_sync "$port" ''
    note "the server on port $port is a primary"
}

# runs_in DIR: a process works in DIR (a server's processes work in its
# data folder, and outlive a killed postmaster for a moment).
runs_in() {
    local cwd
    for cwd in /proc/[0-9]*/cwd; do
        [[ $(readlink "$cwd" 2>/dev/null) == "$1" ]] && return 0
    done
    return 1
}

do_kill() {
    local port=${1:-$PG_PORT} data pid i
    data=$(data_of "$port")
    pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || pid=
    if ! [[ $pid =~ ^[0-9]+$ ]]; then
        note "no server runs on port $port"
        return 0
    fi
    note "killing the postmaster on port $port (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    # Its children notice the postmaster's death and exit; a new server
    # on this folder refuses to start while any still holds its memory.
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null && ! runs_in "$data" && ! port_open "$port"; then
            return 0
        fi
        sleep 0.1
    done
    die "the server on port $port is still there after SIGKILL"
}

do_rejoin() {
    local mode=${1:-sync} name=sluice_$PG_PORT
    [[ $mode == sync || $mode == async ]] || die "rejoin: sync or async, not '$mode'"
    if ! answering "$STANDBY_PORT" || [[ $(in_recovery "$STANDBY_PORT") != f ]]; then
        die "the server on port $STANDBY_PORT is not a running primary: promote it first"
    fi
    if answering "$PG_PORT"; then
        pg_cmd pg_ctl stop -s -w -t 60 -m fast -D "$PRIMARY_DATA" || do_kill "$PG_PORT"
    fi
    # Its WAL may hold commits the new primary never had (an asynchronous
    # standby's failover): it cannot follow without rewinding, so it starts
    # again from a copy. The old folder goes.
    as_user "$PG_USER" rm -rf "$PRIMARY_DATA"
    copy_from "$STANDBY_PORT" "$PRIMARY_DATA" "$name" "$PG_PORT" "$STATE_DIR/postgres/socket"
    SLUICE_PG_PORT=$PG_PORT "$(dirname "$SCRIPT")/stack.sh" start-pg
    wait_until "port $PG_PORT to stream from port $STANDBY_PORT" \
        streaming_to "$STANDBY_PORT" "$name"
    if [[ $mode == sync ]]; then set_sync "$STANDBY_PORT" "$name"; fi
    note "the server on port $PG_PORT is a standby of port $STANDBY_PORT ($mode)"
}

# set_receiving CONNINFO: the standby's primary_conninfo (empty: receive
# nothing), in force at once.
set_receiving() {
    answering "$STANDBY_PORT" || die "no standby answers on 127.0.0.1:$STANDBY_PORT"
    psql_at "$STANDBY_PORT" -c "alter system set primary_conninfo = '$1'" \
        -c 'select pg_reload_conf()' >/dev/null
}

do_detach() {
    set_receiving ''
    # Until the walreceiver is gone, WAL may still arrive.
    wait_until "the standby's walreceiver to stop" \
        test "$(psql_at "$STANDBY_PORT" -c 'select count(*) from pg_stat_wal_receiver')" = 0
    note "the standby on port $STANDBY_PORT receives no WAL; it has" \
        "$(psql_at "$STANDBY_PORT" -c 'select pg_last_wal_receive_lsn()')"
}

do_attach() {
    set_receiving "host=127.0.0.1 port=$PG_PORT user=sluice application_name=sluice_$STANDBY_PORT"
    wait_until "the standby to stream again" streaming_to "$PG_PORT" "sluice_$STANDBY_PORT"
    note "the standby on port $STANDBY_PORT streams again"
}

do_stop() {
    if [[ -f $STANDBY_DATA/postmaster.pid ]] && pg_cmd pg_ctl status -D "$STANDBY_DATA" >/dev/null 2>&1; then
        note "stopping the standby on port $STANDBY_PORT"
        pg_cmd pg_ctl stop -s -w -t 60 -m fast -D "$STANDBY_DATA" || die "pg_ctl stop failed"
    else
        note "the standby on port $STANDBY_PORT is not running"
    fi
}

do_status() {
    local port rc=0 role
    for port in "$PG_PORT" "$STANDBY_PORT"; do
        if answering "$port"; then
            role=$(psql_at "$port" -c "select case when pg_is_in_recovery()
                then 'standby, received ' || coalesce(pg_last_wal_receive_lsn()::text, 'nothing')
                     || ', replayed ' || coalesce(pg_last_wal_replay_lsn()::text, 'nothing')
                else 'primary at ' || pg_current_wal_lsn() || ', waits for '''
                     || current_setting('synchronous_standby_names') || '''' end")
            echo "port $port: $role"
        else
            echo "port $port: down"
            rc=3
        fi
    done
    return "$rc"
}

do_env() {
    echo "export SLUICE_PG_DSN='postgresql://sluice@127.0.0.1:$PG_PORT,127.0.0.1:$STANDBY_PORT/sluice?target_session_attrs=read-write&connect_timeout=5'"
}

do_wipe() {
    do_stop
    if answering "$PG_PORT" && [[ $(in_recovery "$PG_PORT") == f ]] &&
        [[ $(psql_at "$PG_PORT" -c 'show synchronous_standby_names') == "sluice_$STANDBY_PORT" ]]; then
        set_sync "$PG_PORT" ''
    fi
    as_user "$PG_USER" rm -rf "$STANDBY_DIR" 2>/dev/null || rm -rf "$STANDBY_DIR"
    note "removed $STANDBY_DIR"
}

main() {
    case ${1:-} in
        -h | --help | help) usage; return 0 ;;
        "") echo "pg-standby.sh: missing verb (see --help)" >&2; return 2 ;;
    esac
    local verb=$1
    case $verb in
        start | promote | kill | rejoin) (( $# <= 2 )) || { echo "pg-standby.sh: $verb takes one argument at most" >&2; return 2; } ;;
        detach | attach | stop | status | env | wipe) (( $# == 1 )) || { echo "pg-standby.sh: $verb takes no argument" >&2; return 2; } ;;
        *) echo "pg-standby.sh: unknown verb '$verb' (see --help)" >&2; return 2 ;;
    esac
    configure
    if [[ $verb == promote || $verb == kill ]] && [[ -n ${2:-} ]] &&
        [[ $2 != "$PG_PORT" && $2 != "$STANDBY_PORT" ]]; then
        echo "pg-standby.sh: $verb: port $PG_PORT or $STANDBY_PORT, not '$2'" >&2
        return 2
    fi
    [[ -x $PG_BIN/pg_basebackup ]] || die "$PG_BIN/pg_basebackup not found (apt-get install postgresql-15)"
    cd /
    case $verb in
        start) do_start "${2:-}" ;;
        promote) do_promote "${2:-}" ;;
        kill) do_kill "${2:-}" ;;
        rejoin) do_rejoin "${2:-}" ;;
        detach) do_detach ;;
        attach) do_attach ;;
        stop) do_stop ;;
        status) do_status || return 3 ;;
        env) do_env ;;
        wipe) do_wipe ;;
    esac
}

main "$@"
