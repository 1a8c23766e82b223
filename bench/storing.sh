#!/usr/bin/env bash
# bench/storing.sh - what each part of storing an event costs PostgreSQL,
# and what the ways of lowering it would save: the same 100,000 events
# (the generator's four sources) COPYed in one session per variant, the
# variants alternating, each figure the median of --repeats of the
# session backend's own CPU (utime + stime, read from /proc/self/stat
# through pg_read_file, so the server must run Linux and the
# login be a superuser).
#
# Usage: bench/storing.sh [--repeats R] [--build DIR]
#
# Variants (CPU-s per 100,000 events):
#   plain            COPY into a bare jsonb table keyed by msg_id (the
#                    benchmark's pg_copy baseline, in one session)
#   ids              the idempotency key alone: COPY of the ids into a
#                    table like event_ids
#   ids_digest       the same keyed by a 16-byte digest of the id (uuid)
#   events           COPY into partitioned events, projections' trigger off
#   events_projected COPY into events with the demo's projections (what the
#                    worker's COPY costs besides the ids)
#   partition        COPY straight into the day's partition, projections'
#                    trigger off
#   partition_projected  the same with the projections' trigger on the
#                    partition (PostgreSQL then inserts in multi-row
#                    batches; into the partitioned parent, a statement
#                    trigger with a transition table makes it insert row
#                    by row)
#
# Works in a database sluice_storing of its own on SLUICE_PG_DSN's server
# (made again at every run); prints one line per variant. The server may
# run in a container on this machine or elsewhere; the CPU is its own.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
REPEATS=5
BUILD=$ROOT/build
while [ $# -gt 0 ]; do
  case $1 in
    --repeats) REPEATS=${2:?--repeats needs a number}; shift 2 ;;
    --build) BUILD=$(cd "${2:?--build needs a folder}" && pwd -P); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "storing: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
die() { echo "storing: $*" >&2; exit 1; }
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || die "--repeats must be a positive integer"
[[ ${SLUICE_PG_DSN:-} =~ ^postgres(ql)?://[^?]*/[^/?]*$ ]] ||
  die "SLUICE_PG_DSN must be a postgresql://.../DATABASE URI: eval \"\$(scripts/stack.sh env)\""
for b in broker-setup/sluice-setup bench/bench-pg-copy; do
  [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: build first (./run build)"
done
DSN=${SLUICE_PG_DSN%/*}/sluice_storing
q() { psql "$DSN" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
psql "$SLUICE_PG_DSN" -X -q -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS sluice_storing" -c "CREATE DATABASE sluice_storing"
[ "$(q -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" = t ] ||
  die "the login must be a superuser (it reads the backend's /proc/self/stat)"
"$BUILD/broker-setup/sluice-setup" --pg-dsn "$DSN" --amqp-url "${SLUICE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}" \
  --projections "$ROOT/config/projections.conf" --log-level warn >/dev/null ||
  die "sluice-setup failed"
"$BUILD/bench/bench-pg-copy" "$DSN" 25000 7 1000 >/dev/null || die "making the events failed"

# The corpus, one file per source as the worker COPYs a source at a time,
# sent by psql in the session's script (COPY FROM STDIN, so the server may
# be in a container or elsewhere).
DIR=$(mktemp -d /tmp/sluice-storing.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
SOURCES=(profiles clickstream orders sensors)
for s in "${SOURCES[@]}"; do
  q -c "\\copy (SELECT msg_id, source, 'src.' || source, payload, now(), now() FROM bench_copy WHERE source = '$s') TO '$DIR/events-$s'"
  q -c "\\copy (SELECT msg_id, source, payload FROM bench_copy WHERE source = '$s') TO '$DIR/plain-$s'"
done
q -c "\\copy (SELECT msg_id, now() FROM bench_copy) TO '$DIR/ids'"
q -c "\\copy (SELECT md5(msg_id)::uuid, now() FROM bench_copy) TO '$DIR/ids-digest'"
q -c "CREATE TABLE plain (msg_id text PRIMARY KEY, source text, payload jsonb, stored_at timestamptz DEFAULT now())" \
  -c "CREATE TABLE ids (LIKE event_ids INCLUDING ALL)" \
  -c "CREATE TABLE ids_digest (id uuid PRIMARY KEY, received_at timestamptz NOT NULL, is_error boolean NOT NULL DEFAULT false)"
# The partition that holds the corpus's received_at (now), by asking
# PostgreSQL to route a row there (prepare() empties it again).
PART=$(q -c "WITH probe AS (INSERT INTO events (msg_id, source, routing_key, payload, produced_at, received_at)
                            VALUES ('storing-probe', 'probe', 'src.probe', '{}', now(), now())
                            RETURNING tableoid::regclass AS part)
             SELECT part FROM probe")
[ -n "$PART" ] && [ "$PART" != events ] || die "no partition of events holds today"

# copy_in TARGET FILE: one COPY with its data inline, as psql reads it.
copy_in() { echo "COPY $1 FROM STDIN;"; cat "$2"; echo '\.'; }
# The statements of one variant, one session.
statements() { # VARIANT
  local s table=events
  case $1 in
    plain) for s in "${SOURCES[@]}"; do copy_in "plain (msg_id, source, payload)" "$DIR/plain-$s"; done ;;
    ids) copy_in "ids (msg_id, received_at)" "$DIR/ids" ;;
    ids_digest) copy_in "ids_digest (id, received_at)" "$DIR/ids-digest" ;;
    events | events_projected | partition | partition_projected)
      [[ $1 == partition* ]] && table=$PART
      for s in "${SOURCES[@]}"; do
        copy_in "$table (msg_id, source, routing_key, payload, produced_at, received_at)" "$DIR/events-$s"
      done ;;
  esac
}
prepare() { # VARIANT: empty everything, triggers as the variant wants
  q -c "SET client_min_messages = warning" \
    -c "TRUNCATE events, plain, ids, ids_digest, profiles, page_views, orders, sensor_readings" \
    -c "DROP TRIGGER IF EXISTS storing_project ON $PART" \
    -c "ALTER TABLE events DISABLE TRIGGER events_project"
  case $1 in
    events_projected) q -c "ALTER TABLE events ENABLE TRIGGER events_project" ;;
    partition_projected)
      q -c "CREATE TRIGGER storing_project AFTER INSERT ON $PART REFERENCING NEW TABLE AS new_events
            FOR EACH STATEMENT EXECUTE FUNCTION sluice_project_events()" ;;
  esac
  q -c "CHECKPOINT"
}
ticks=$(getconf CLK_TCK)
VARIANTS=(plain ids ids_digest events events_projected partition partition_projected)
declare -A RUNS
for r in $(seq 1 "$REPEATS"); do
  for v in "${VARIANTS[@]}"; do
    prepare "$v"
    cpu=$({ statements "$v"; echo "SELECT pg_read_file('/proc/self/stat');"; } | q | grep ') ' |
          sed 's/.*) //' | awk -v t="$ticks" '{ printf "%.2f", ($12 + $13) / t }')
    case $v in plain | ids | ids_digest) table=$v ;; *) table=events ;; esac
    [ "$(q -c "SELECT count(*) FROM $table")" = 100000 ] || die "$v stored $(q -c "SELECT count(*) FROM $table") rows, not 100000"
    if [[ $v == *_projected ]]; then
      [ "$(q -c "SELECT count(*) FROM orders")" = 25000 ] || die "$v filled $(q -c "SELECT count(*) FROM orders") orders, not 25000"
    fi
    RUNS[$v]+="$cpu "
  done
  echo "  repeat $r of $REPEATS done" >&2
done
q -c "ALTER TABLE events ENABLE TRIGGER events_project" -c "DROP TRIGGER IF EXISTS storing_project ON $PART"
echo "PostgreSQL $(q -c "SHOW server_version"), 100,000 events, one session per variant, medians of $REPEATS (CPU-s):"
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2086 # the runs are one word each
  printf '  %-20s %s   (runs: %s)\n' "$v" "$(printf '%s\n' ${RUNS[$v]} | sort -g |
    awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')" "${RUNS[$v]% }"
done
