# shellcheck shell=bash disable=SC2016  # sh -c '...' bodies expand in the child shell
# lib.sh - helpers shared by stack.sh and cluster.sh; sourced, not run.
# The sourcing script sets CHECKOUT (the checkout's root) first.

# as_user USER CMD...: run CMD as USER (only root can switch; anyone else
# runs everything as themselves, USER then being their own name).
as_user() {
    local user=$1; shift
    if (( EUID == 0 )); then
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

# write_as USER FILE: stdin into FILE, owned by USER.
write_as() {
    as_user "$1" sh -c 'cat > "$1"' sh "$2"
}

port_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' bash "$1" 2>/dev/null
}

# default_state_dir USER...: <checkout>/.run, unless we are root and one of
# the service USERs cannot reach the checkout (a clone under /root, say):
# then a folder of its own under /var/tmp, named after the checkout so two
# checkouts never share one.
default_state_dir() {
    local dir=$CHECKOUT/.run user
    if (( EUID == 0 )); then
        for user in "$@"; do
            if ! runuser -u "$user" -- test -x "$CHECKOUT" 2>/dev/null; then
                dir=/var/tmp/sluice-state-$(printf '%s' "$CHECKOUT" | cksum | cut -d' ' -f1)
                break
            fi
        done
    fi
    printf '%s\n' "$dir"
}
