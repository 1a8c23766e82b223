#!/usr/bin/env bash
# compose-secrets.sh - writes the files compose.yaml hands its services as
# Docker secrets, so no password is in .env, in a process environment or in
# `docker inspect`:
#   passwords (random, 24 letters, digits, '-' and '_'; kept if present):
#     rabbitmq_password         RabbitMQ administrator (RABBITMQ_USER): setup
#     postgres_password         PostgreSQL superuser (POSTGRES_USER): setup
#     amqp_{producer,worker,notifier}_password
#                               each component's RabbitMQ user
#     pg_{owner,writer,notifier,reader}_password
#                               the warehouse's roles (sluice_owner, ...)
#     ingest_token              bearer token of the producer's HTTP door
#   made from them (rewritten on every run):
#     rabbitmq_admin.conf       default_user/default_pass for RabbitMQ's
#                               first boot (its conf.d)
#     setup_amqp_url, setup_pg_dsn
#     {producer,worker,notifier}_amqp_url, {worker,notifier}_pg_dsn
#
# Usage: scripts/compose-secrets.sh     (from anywhere; after cp .env.example .env)
#
# The folder is ./secrets of the checkout, or SLUICE_SECRETS_DIR (compose
# reads the same variable): mode 700, so only its owner reaches it; the
# files in it are 644, because Docker bind-mounts each one and the
# containers read them as unprivileged users. Users and the database come
# from .env (else .env.example). To rotate a password, see docs/security.md:
# replace its file, run this again, then `docker compose up -d`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
dir=${SLUICE_SECRETS_DIR:-$root/secrets}
env_file=$root/.env
[[ -f $env_file ]] || env_file=$root/.env.example
setting() { sed -n "s/^$1=//p" "$env_file" | tail -n 1; }
rabbit_user=$(setting RABBITMQ_USER)
pg_user=$(setting POSTGRES_USER)
pg_db=$(setting POSTGRES_DB)
rabbit_user=${rabbit_user:-sluice} pg_user=${pg_user:-sluice} pg_db=${pg_db:-sluice}

umask 077
mkdir -p "$dir"
chmod 700 "$dir"

# write NAME TEXT: the file NAME holding TEXT, readable by the containers.
write() {
    local tmp
    tmp=$(mktemp "$dir/.$1.XXXXXX")
    printf '%s\n' "$2" >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$dir/$1"
}
# password NAME: the password in file NAME, made if missing.
password() {
    local file=$dir/$1 pw
    if [[ ! -s $file ]]; then
        pw=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
        write "$1" "$pw"
    fi
    pw=$(head -n 1 "$file")
    [[ $pw =~ ^[A-Za-z0-9._~-]+$ ]] ||
        { echo "compose-secrets: $file: use letters, digits, '.', '_', '~' and '-' only (it goes into URLs)" >&2; exit 2; }
    printf '%s' "$pw"
}

admin=$(password rabbitmq_password)
superuser=$(password postgres_password)
producer=$(password amqp_producer_password)
worker=$(password amqp_worker_password)
notifier=$(password amqp_notifier_password)
password pg_owner_password >/dev/null
writer_pg=$(password pg_writer_password)
notifier_pg=$(password pg_notifier_password)
password pg_reader_password >/dev/null
password ingest_token >/dev/null

write rabbitmq_admin.conf "default_user = $rabbit_user
default_pass = $admin"
# Both PostgreSQL servers: libpq connects to whichever takes writes, so the
# sluice services follow a failover to postgres-standby (profile ha; without
# it the second name is never needed while postgres is up).
pg_hosts="postgres:5432,postgres-standby:5432"
pg_options="target_session_attrs=read-write&connect_timeout=10"
write setup_amqp_url "amqp://$rabbit_user:$admin@rabbitmq:5672"
write setup_pg_dsn "postgresql://$pg_user:$superuser@$pg_hosts/$pg_db?$pg_options"
write producer_amqp_url "amqp://sluice-producer:$producer@rabbitmq:5672"
write worker_amqp_url "amqp://sluice-worker:$worker@rabbitmq:5672"
write notifier_amqp_url "amqp://sluice-notifier:$notifier@rabbitmq:5672"
write worker_pg_dsn "postgresql://sluice_writer:$writer_pg@$pg_hosts/$pg_db?$pg_options"
write notifier_pg_dsn "postgresql://sluice_notifier:$notifier_pg@$pg_hosts/$pg_db?$pg_options"
echo "compose-secrets: secrets in $dir"
