#!/bin/sh
# Entry point of the rabbitmq stand-in: writes the default account from
# RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS into rabbitmq.conf (the
# server creates it on first boot only, as the official image does), then
# runs the server as the rabbitmq user in the foreground.
set -eu
conf=/etc/rabbitmq/rabbitmq.conf
{
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
        echo "default_user = $RABBITMQ_DEFAULT_USER"
        echo "default_pass = ${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is empty}"
    fi
} >"$conf"
chown rabbitmq:rabbitmq "$conf"
chmod 640 "$conf"
mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
if [ "$1" = rabbitmq-server ]; then
    shift
    # Logs to stdout, as the official image does.
    export RABBITMQ_LOGS=-
    exec gosu rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
