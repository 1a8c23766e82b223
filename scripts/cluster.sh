#!/usr/bin/env bash
# shellcheck disable=SC2016  # sh -c '...' bodies expand in the child shell
#
# cluster.sh - a RabbitMQ cluster of several nodes on this machine, from
# Debian 12's package, without Docker: what the cluster failover test and
# the TLS test run against, and a way to try sluice on a cluster by hand.
# Follows scripts/stack.sh's conventions (loopback only, private epmd, all
# state in one folder, runs as root or as an ordinary user).
#
# Usage: scripts/cluster.sh VERB
#   start         start every node if needed and join them into one cluster;
#                 return once every node runs and the cluster has them all
#   stop          stop every node (the state stays: start brings it back)
#   stop-node N   stop node N (1-based) the polite way, as an operator would
#   kill-node N   stop node N with SIGKILL, as a crash would
#   start-node N  start node N again; return once it is back in the cluster
#   freeze-node N stop node N's Erlang VM with SIGSTOP: a hung node, whose
#                 connections stay open but answer nothing
#   thaw-node N   let a frozen node N run again (SIGCONT)
#   status        one line per node; exit 0 if all run, 3 otherwise
#   env           print `export SLUICE_AMQP_URL=...` with every node's URL
#   queues        name, type, ready messages, leader and arguments of every
#                 queue, tab-separated
#   wipe          stop every node and delete the cluster's state
#
# Environment:
#   SLUICE_CLUSTER_PORT    AMQP port of node 1 (default 5730); node N
#                          listens on that + N - 1
#   SLUICE_CLUSTER_SIZE    number of nodes (default 3)
#   SLUICE_CLUSTER_TLS_DIR if set: a folder with ca.pem, server.pem and
#                          server.key; the nodes then listen for amqps://
#                          only, and require a client certificate signed by
#                          ca.pem (read on every start of a node)
#   SLUICE_CLUSTER_MGMT    1: every node also serves the management API
#                          (rabbitmq_management) on its AMQP port + 10000,
#                          as RabbitMQ's own 5672/15672; with
#                          SLUICE_CLUSTER_TLS_DIR over https only, with the
#                          same certificate and client certificate rule
#                          (default 0: the plugin is not started)
#   SLUICE_STATE_DIR       as for stack.sh (default <checkout>/.run)
#   SLUICE_START_TIMEOUT   seconds to wait for each step (default 180)
# Derived from the ports, so clusters on different ports never meet:
#   node N is sluice-c<its AMQP port>@localhost with the management API (if
#   any) on its AMQP port + 10000, Erlang distribution on
#   its AMQP port + 20000; the cluster's private epmd listens on node 1's
#   port + 30000 (every node of a host registers with the same epmd).
#
# State folder layout (under SLUICE_STATE_DIR):
#   cluster-<port>/home/.erlang.cookie   the cookie every node shares
#   cluster-<port>/node<N>/              rabbitmq.conf, mnesia/, log/
#   cluster-<port>/node<N>/tls/          copies of the TLS files, if any

set -euo pipefail
umask 022

SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
CHECKOUT=$(dirname "$(dirname "$SCRIPT")")
RMQ_BIN=/usr/lib/rabbitmq/bin

usage() {
    sed -n '/^# Usage:/,/^# State folder layout/{/^# State folder/d;s/^# \{0,1\}//;p}' \
        "$SCRIPT"
}

note() { echo "cluster: $*"; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
source "$(dirname "$SCRIPT")/lib.sh"

configure() {
    STATE_DIR=${SLUICE_STATE_DIR:-$(default_state_dir rabbitmq)}
    [[ $STATE_DIR == /* ]] || STATE_DIR=$PWD/$STATE_DIR
    BASE_PORT=${SLUICE_CLUSTER_PORT:-5730}
    SIZE=${SLUICE_CLUSTER_SIZE:-3}
    START_TIMEOUT=${SLUICE_START_TIMEOUT:-180}
    TLS_DIR=${SLUICE_CLUSTER_TLS_DIR:-}
    MGMT=${SLUICE_CLUSTER_MGMT:-0}
    [[ $MGMT == [01] ]] || die "SLUICE_CLUSTER_MGMT must be 0 or 1, not '$MGMT'"
    local name value
    for name in BASE_PORT SIZE START_TIMEOUT; do
        value=${!name}
        [[ $value =~ ^[0-9]{1,5}$ ]] || die "bad $name '$value': a number expected"
        printf -v "$name" %d "$((10#$value))"
    done
    (( SIZE >= 1 && SIZE <= 9 )) || die "SLUICE_CLUSTER_SIZE must be 1 to 9, not $SIZE"
    (( BASE_PORT >= 1024 && BASE_PORT + SIZE <= 35535 )) ||
        die "SLUICE_CLUSTER_PORT must be 1024 to $((35535 - SIZE)) (epmd on it + 30000)"
    if [[ -n $TLS_DIR ]]; then
        [[ $TLS_DIR == /* ]] || TLS_DIR=$PWD/$TLS_DIR
        local f
        for f in ca.pem server.pem server.key; do
            [[ -r $TLS_DIR/$f ]] || die "SLUICE_CLUSTER_TLS_DIR: cannot read $TLS_DIR/$f"
        done
    fi
    if (( EUID == 0 )); then RMQ_USER=rabbitmq; else RMQ_USER=$(id -un); fi
    CLUSTER_DIR=$STATE_DIR/cluster-$BASE_PORT
    EPMD_PORT=$((BASE_PORT + 30000))
}

# node_vars N: the names and paths of node N, in NODE_* variables.
node_vars() {
    local n=$1
    if ! [[ $n =~ ^[1-9]$ ]] || (( n > SIZE )); then
        die "node must be 1 to $SIZE, not '$n'"
    fi
    NODE_PORT=$((BASE_PORT + n - 1))
    NODE_MGMT_PORT=$((NODE_PORT + 10000))
    NODE_NAME=sluice-c$NODE_PORT@localhost
    NODE_DIR=$CLUSTER_DIR/node$n
    NODE_PID=$NODE_DIR/mnesia/$NODE_NAME.pid
    NODE_LOG=$NODE_DIR/log/$NODE_NAME.log
    NODE_CONSOLE=$NODE_DIR/log/console.log
    NODE_ENV=(
        "HOME=$CLUSTER_DIR/home"
        "RABBITMQ_CONF_ENV_FILE=$NODE_DIR/rabbitmq-env.conf"
        "RABBITMQ_CONFIG_FILE=$NODE_DIR/rabbitmq.conf"
        "RABBITMQ_ADVANCED_CONFIG_FILE=$NODE_DIR/advanced.config"
        "RABBITMQ_ENABLED_PLUGINS_FILE=$NODE_DIR/enabled_plugins"
        "RABBITMQ_MNESIA_BASE=$NODE_DIR/mnesia"
        "RABBITMQ_LOG_BASE=$NODE_DIR/log"
        "RABBITMQ_PID_FILE=$NODE_PID"
        "RABBITMQ_NODENAME=$NODE_NAME"
        "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
        "RABBITMQ_NODE_PORT=$NODE_PORT"
        "RABBITMQ_DIST_PORT=$((NODE_PORT + 20000))"
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "ERL_EPMD_PORT=$EPMD_PORT"
        "ERL_EPMD_ADDRESS=127.0.0.1"
        "ERL_CRASH_DUMP=$NODE_DIR/log/erl_crash.dump"
    )
}

ctl() { as_user "$RMQ_USER" env "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmqctl" -n "$NODE_NAME" "$@"; }

node_pid() {
    local pid
    pid=$(cat "$NODE_PID" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

node_alive() {
    local pid
    pid=$(node_pid) && [[ $(ps -o comm= -p "$pid" 2>/dev/null) == beam* ]]
}

node_fail() {
    {
        echo "cluster.sh: node $NODE_NAME: $1"
        echo "cluster.sh: see $NODE_LOG and $NODE_CONSOLE"
        tail -n 15 "$NODE_LOG" 2>/dev/null | sed 's/^/  | /' || true
    } >&2
    exit 1
}

ensure_dirs() {
    mkdir -p "$CLUSTER_DIR" || die "cannot create $CLUSTER_DIR"
    if (( EUID == 0 )); then
        [[ $(stat -c %U "$CLUSTER_DIR") == "$RMQ_USER" ]] || chown -R "$RMQ_USER:" "$CLUSTER_DIR"
        as_user "$RMQ_USER" test -w "$CLUSTER_DIR" ||
            die "the $RMQ_USER user cannot reach $CLUSTER_DIR; set SLUICE_STATE_DIR elsewhere"
    fi
    as_user "$RMQ_USER" mkdir -p "$CLUSTER_DIR/home"
    local cookie=$CLUSTER_DIR/home/.erlang.cookie
    if [[ ! -s $cookie ]]; then
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F |
            as_user "$RMQ_USER" sh -c 'umask 077; cat > "$1"' sh "$cookie"
        as_user "$RMQ_USER" chmod 400 "$cookie"
    fi
}

node_prepare() {
    as_user "$RMQ_USER" mkdir -p "$NODE_DIR/mnesia" "$NODE_DIR/log"
    {
        echo "# Written by scripts/cluster.sh on every start; edits are lost."
        if [[ -n $TLS_DIR ]]; then
            as_user "$RMQ_USER" mkdir -p "$NODE_DIR/tls"
            local f
            for f in ca.pem server.pem server.key; do
                write_as "$RMQ_USER" "$NODE_DIR/tls/$f" <"$TLS_DIR/$f"
            done
            as_user "$RMQ_USER" chmod 600 "$NODE_DIR/tls/server.key"
            echo "listeners.tcp = none"
            echo "listeners.ssl.default = 127.0.0.1:$NODE_PORT"
            echo "ssl_options.cacertfile = $NODE_DIR/tls/ca.pem"
            echo "ssl_options.certfile = $NODE_DIR/tls/server.pem"
            echo "ssl_options.keyfile = $NODE_DIR/tls/server.key"
            echo "ssl_options.verify = verify_peer"
            echo "ssl_options.fail_if_no_peer_cert = true"
        else
            echo "listeners.tcp.default = 127.0.0.1:$NODE_PORT"
        fi
        if (( MGMT )) && [[ -n $TLS_DIR ]]; then
            # Only management.ssl: the plugin then opens no http listener.
            echo "management.ssl.ip = 127.0.0.1"
            echo "management.ssl.port = $NODE_MGMT_PORT"
            echo "management.ssl.cacertfile = $NODE_DIR/tls/ca.pem"
            echo "management.ssl.certfile = $NODE_DIR/tls/server.pem"
            echo "management.ssl.keyfile = $NODE_DIR/tls/server.key"
            echo "management.ssl.verify = verify_peer"
            echo "management.ssl.fail_if_no_peer_cert = true"
        elif (( MGMT )); then
            echo "management.tcp.ip = 127.0.0.1"
            echo "management.tcp.port = $NODE_MGMT_PORT"
        fi
        echo "log.console = false"
        echo "log.file.level = info"
    } | write_as "$RMQ_USER" "$NODE_DIR/rabbitmq.conf"
    if (( MGMT )); then
        echo '[rabbitmq_management].' | write_as "$RMQ_USER" "$NODE_DIR/enabled_plugins"
    else
        echo '[].' | write_as "$RMQ_USER" "$NODE_DIR/enabled_plugins"
    fi
    write_as "$RMQ_USER" "$NODE_DIR/rabbitmq-env.conf" </dev/null
    rm -f "$NODE_PID"
}

# node_launch N: start node N in the background unless it runs.
node_launch() {
    node_vars "$1"
    node_alive && return 0
    port_open "$NODE_PORT" && die "127.0.0.1:$NODE_PORT is already in use by another process"
    (( MGMT )) && port_open "$NODE_MGMT_PORT" &&
        die "127.0.0.1:$NODE_MGMT_PORT (management API) is already in use by another process"
    node_prepare
    note "starting node $NODE_NAME on 127.0.0.1:$NODE_PORT"
    local cmd=(env "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmq-server")
    (( EUID == 0 )) && cmd=(runuser -u "$RMQ_USER" -- "${cmd[@]}")
    echo "=== $(date '+%F %T') start" >>"$NODE_CONSOLE"
    setsid "${cmd[@]}" >>"$NODE_CONSOLE" 2>&1 </dev/null &
}

# node_wait N: until node N's application runs and its AMQP port (and its
# management API's, if any) answers.
node_wait() {
    node_vars "$1"
    local deadline=$((SECONDS + START_TIMEOUT)) rc=0 out
    until [[ -s $NODE_PID ]]; do
        (( SECONDS < deadline )) || node_fail "no pid file after ${START_TIMEOUT}s"
        sleep 0.2
    done
    out=$(ctl wait --timeout "$START_TIMEOUT" "$NODE_PID" 2>&1) || rc=$?
    (( rc == 0 )) || node_fail "rabbitmqctl wait: $(tail -n 1 <<<"$out")"
    until port_open "$NODE_PORT"; do
        node_alive || node_fail "the node exited"
        (( SECONDS < deadline )) || node_fail "AMQP port silent after ${START_TIMEOUT}s"
        sleep 0.2
    done
    until (( ! MGMT )) || port_open "$NODE_MGMT_PORT"; do
        node_alive || node_fail "the node exited"
        (( SECONDS < deadline )) ||
            node_fail "management API port $NODE_MGMT_PORT silent after ${START_TIMEOUT}s"
        sleep 0.2
    done
}

# The running nodes of the cluster, as the first node that answers sees them.
running_nodes() {
    local n out
    for ((n = 1; n <= SIZE; n++)); do
        node_vars "$n"
        node_alive || continue
        out=$(ctl cluster_status --formatter json 2>/dev/null) || continue
        grep -o '"running_nodes":\[[^]]*\]' <<<"$out" | grep -o 'sluice-c[0-9]*@localhost'
        return 0
    done
}

# join N: node N joins node 1's cluster unless it already belongs to it.
join() {
    local n=$1 first
    node_vars 1
    first=$NODE_NAME
    node_vars "$n"
    if ctl cluster_status --formatter json 2>/dev/null | grep -q "\"$first\""; then
        return 0
    fi
    note "node $NODE_NAME joins $first"
    # rabbitmqctl logs the joining node's transient errors on stderr: keep
    # them for a failure, not for every start.
    local out
    out=$({ ctl stop_app && ctl reset && ctl join_cluster "$first" && ctl start_app; } 2>&1) ||
        node_fail "joining $first failed: $(grep -v '^[[:space:]]*$' <<<"$out" | tail -n 3)"
}

# wait_clustered: until node 1 sees every node running.
wait_clustered() {
    local deadline=$((SECONDS + START_TIMEOUT)) want=$SIZE got
    until got=$(running_nodes | wc -l) && (( got == want )); do
        (( SECONDS < deadline )) || die "the cluster has $got of $want nodes running"
        sleep 0.5
    done
}

node_stop() {
    node_vars "$1"
    if ! node_alive; then
        note "node $NODE_NAME not running"
        return 0
    fi
    note "stopping node $NODE_NAME"
    ctl stop "$NODE_PID" >/dev/null 2>&1 || node_kill "$1"
    rm -f "$NODE_PID"
}

node_kill() {
    node_vars "$1"
    local pid i
    pid=$(node_pid) || return 0
    note "killing node $NODE_NAME (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$NODE_PID"
}

# signal_node N SIGNAL WHAT: send SIGNAL to node N's VM.
signal_node() {
    node_vars "$1"
    local pid
    if ! pid=$(node_pid) || ! node_alive; then
        die "node $NODE_NAME is not running"
    fi
    note "$3 node $NODE_NAME (pid $pid)"
    kill "-$2" "$pid"
}

do_start() {
    local n t0=$SECONDS
    ensure_dirs
    # Boot every node at once (a node that was clustered waits for its
    # peers while booting), then join the fresh ones to node 1.
    for ((n = 1; n <= SIZE; n++)); do node_launch "$n"; done
    for ((n = 1; n <= SIZE; n++)); do node_wait "$n"; done
    for ((n = 2; n <= SIZE; n++)); do join "$n"; done
    wait_clustered
    note "ready: $SIZE nodes on 127.0.0.1:$BASE_PORT-$((BASE_PORT + SIZE - 1)) ($((SECONDS - t0))s)"
}

do_stop() {
    local n
    for ((n = SIZE; n >= 1; n--)); do node_stop "$n"; done
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}

do_start_node() {
    ensure_dirs
    node_launch "$1"
    node_wait "$1"
    wait_clustered
    note "node $NODE_NAME is back in the cluster"
}

do_status() {
    local n rc=0 running
    running=$(running_nodes 2>/dev/null || true)
    for ((n = 1; n <= SIZE; n++)); do
        node_vars "$n"
        if node_alive && port_open "$NODE_PORT"; then
            echo "node $n: $NODE_NAME running on 127.0.0.1:$NODE_PORT"
        else
            echo "node $n: $NODE_NAME stopped"
            rc=3
        fi
    done
    echo "running in the cluster: $(echo "$running" | tr '\n' ' ')"
    return "$rc"
}

do_env() {
    # TLS: the certificate names localhost (hostname verification).
    local n urls=() base=amqp://guest:guest@127.0.0.1
    [[ -z $TLS_DIR ]] || base=amqps://guest:guest@localhost
    for ((n = 1; n <= SIZE; n++)); do
        node_vars "$n"
        urls+=("$base:$NODE_PORT")
    done
    local IFS=,
    echo "export SLUICE_AMQP_URL=${urls[*]}"
    if (( MGMT )); then
        node_vars 1
        if [[ -n $TLS_DIR ]]; then
            echo "export SLUICE_MGMT_URL=https://localhost:$NODE_MGMT_PORT/"
        else
            echo "export SLUICE_MGMT_URL=http://127.0.0.1:$NODE_MGMT_PORT/"
        fi
    fi
}

do_queues() {
    local n
    for ((n = 1; n <= SIZE; n++)); do
        node_vars "$n"
        node_alive || continue
        ctl list_queues --quiet --no-table-headers name type messages_ready leader \
            arguments 2>/dev/null &&
            return 0
    done
    die "no node answers"
}

main() {
    case ${1:-} in
        -h | --help | help) usage; return 0 ;;
        "") echo "cluster.sh: missing verb (see --help)" >&2; return 2 ;;
    esac
    local verb=$1 node=${2:-}
    case $verb in
        start | stop | status | env | queues | wipe) (( $# == 1 )) || { echo "cluster.sh: $verb takes no argument" >&2; return 2; } ;;
        stop-node | kill-node | start-node | freeze-node | thaw-node) (( $# == 2 )) || { echo "cluster.sh: $verb needs a node number" >&2; return 2; } ;;
        *) echo "cluster.sh: unknown verb '$verb' (see --help)" >&2; return 2 ;;
    esac
    configure
    if [[ -n $node ]] && { ! [[ $node =~ ^[1-9]$ ]] || (( node > SIZE )); }; then
        echo "cluster.sh: $verb: node must be 1 to $SIZE, not '$node'" >&2
        return 2
    fi
    [[ -x $RMQ_BIN/rabbitmq-server ]] ||
        die "$RMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
    cd /
    case $verb in
        start) do_start ;;
        stop) do_stop ;;
        stop-node) node_stop "$node" ;;
        kill-node) node_kill "$node" ;;
        start-node) do_start_node "$node" ;;
        freeze-node) signal_node "$node" STOP freezing ;;
        thaw-node) signal_node "$node" CONT thawing ;;
        status) do_status || return 3 ;;
        env) do_env ;;
        queues) do_queues ;;
        wipe) do_stop; rm -rf "$CLUSTER_DIR"; note "removed $CLUSTER_DIR" ;;
    esac
}

main "$@"
