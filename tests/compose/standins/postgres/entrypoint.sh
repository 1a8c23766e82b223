#!/bin/sh
# Entry point of the postgres stand-in: on an empty data folder, creates the
# cluster with POSTGRES_USER as superuser (password POSTGRES_PASSWORD, or
# the contents of the file POSTGRES_PASSWORD_FILE, as the official image
# reads it) and the database POSTGRES_DB; then runs the server as postgres
# in the foreground.
set -eu
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    [ -z "${POSTGRES_PASSWORD:-}" ] ||
        { echo "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set" >&2; exit 1; }
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE must be set}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    gosu postgres initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        gosu postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
        gosu postgres createdb -U "$user" "$db"
        gosu postgres pg_ctl -D "$PGDATA" -w stop >/dev/null
    fi
    echo "stand-in postgres: cluster created user=$user db=$db"
fi
if [ "$1" = postgres ]; then
    shift
    exec gosu postgres postgres -D "$PGDATA" "$@"
fi
exec "$@"
