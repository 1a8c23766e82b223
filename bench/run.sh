#!/usr/bin/env bash
# bench/run.sh - sluice's benchmark: the paper's Table 1 (parallel vs unified
# consumers, four simulated sources) on the local stack, with the broker's
# and the database's own ceilings measured in the same run.
#
# Usage: bench/run.sh [--count N] [--repeats R] [--build DIR] [--out DIR] [--smoke]
#                     [--only table1|rules|http|growth] [--profile]
#   --count N     events per source and run (default 25000; 4 sources)
#   --repeats R   repeats of every measurement; figures are medians (default 3)
#   --build DIR   where the binaries are (default build/, non-sanitized)
#   --out DIR     where results go (default bench/out/<UTC time>)
#   --smoke       a seconds-long check that everything works (CI): 1000
#                 events per source, one repeat, no chart if gnuplot is absent
#   --only WHAT   run only the Table 1 scenarios and baselines (table1),
#                 only the rules scenario (rules), only the HTTP door's
#                 (http), or only the growth scenario (growth); default
#                 the first three
#   --profile     one more unified drain, with `perf record` on the worker's
#                 PostgreSQL backend: results.md then says where that
#                 backend's time went, phase by phase (bench/pg_phases.py)
#
# Scenarios, each in both modes (parallel: one worker process per source
# queue, four in all; unified: one worker process for all four queues):
#   live    workers consuming, then one producer publishes all four sources
#           as fast as confirms allow; throughput = events / (first
#           produced_at .. last stored_at)
#   drain   the producer fills the queues first, then the workers are timed
#           alone: events / (worker launch .. last stored_at)
#   paced   live again, each source at --rate = half the mode's median live
#           throughput / 4, for end-to-end latency at half the maximum
# Baselines (bench/*.c, no sluice logic): raw confirmed persistent publish
# (while a raw consumer drains the queues, as in a live run; and into a
# backlog, as when filling for a drain), raw consume-and-ack without a
# database, PostgreSQL COPY into jsonb, and what a user would write instead
# of sluice's worker: bench/py_worker.py (pika and psycopg2, batched,
# idempotent by message id, ack after commit) draining the same backlog.
# Live runs are compared with the first, drains with raw consume-and-ack
# and the Python worker.
# Rules (unified mode): what event detection costs. Live runs with the
# demo's rules (config/rules.example.json) and a notifier delivering the
# alerts to its log channel alternate with the same live runs without
# either; the ratio of their median throughputs is the figure. Then paced
# runs with rules at half the median live throughput without rules, for
# p99 end to end.
# HTTP (unified mode): events into the warehouse through the HTTP door (a
# producer with one http_server source, orders) under wrk
# (bench/wrk_ingest.lua), as fast as it answers: single-event requests, and
# NDJSON batches of 100; each as a ratio to raw confirmed publish in the
# same run; then single-event requests paced near 1,000 requests/s for the
# p99 of the 202. Throughput = events stored / (first produced_at .. last
# stored_at); every event answered 202 must be stored.
# Growth (unified drains, only with --only growth): how cost grows with
# work. The same drain of 4 x COUNT events, of ten times that, and of
# 4 x COUNT events spread over 200 sources (one queue each), alternating;
# the ten-times drain once more with max_wal_size raised (a superuser
# only), and a plain COPY of both sizes. Each reports throughput, server
# and worker CPU per 100,000 events, the worker's peak RSS, and what
# PostgreSQL wrote meanwhile (WAL, full-page images, checkpoints,
# autovacuum runs). No projections in any of them: the 200 sources have
# none, so all runs store alike.
#
# Uses the running local stack if SLUICE_AMQP_URL, SLUICE_PG_DSN and
# SLUICE_MGMT_URL are set, else starts it with scripts/stack.sh. Works in a
# vhost `sluice-bench` and a database `sluice_bench` of its own, which it
# empties before every run: nothing else on the stack is touched.
#
# Writes to the output folder: runs.csv (every run), summary.csv (medians
# and ratios), results.md (the tables, paper beside sluice), figure7.png
# (gnuplot), logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
COUNT=25000
REPEATS=3
BUILD=$ROOT/build
OUT=
SMOKE=
ONLY=
PROFILE=
HTTP_SECONDS=15 # each wrk run of the HTTP scenario
HTTP_PORT=${SLUICE_BENCH_HTTP_PORT:-18090}
SOURCES=(profiles clickstream orders sensors)
VHOST=sluice-bench
BENCH_DB=sluice_bench
PREFETCH=2000 # the worker's default, used by the raw consumer too
BATCH=1000    # the worker's default batch size, used by the COPY baseline too
WINDOW=1024   # the producer's default confirm window, used by the raw publisher too

# Stops the workers of the run in hand too, so a failed run leaves nothing behind.
die() {
  echo "bench: $*" >&2
  [ -z "${WORKER_PID:-}" ] || kill "$WORKER_PID" 2>/dev/null || true
  [ -z "${NOTIFIER_PID:-}" ] || kill "$NOTIFIER_PID" 2>/dev/null || true
  [ -z "${WAL_RAISED:-}" ] || q -c "ALTER SYSTEM RESET max_wal_size" -c "SELECT pg_reload_conf()" >/dev/null || true
  exit 1
}
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    --repeats) REPEATS=${2:?--repeats needs a number}; shift 2 ;;
    --build) BUILD=$(cd "${2:?--build needs a folder}" && pwd -P); shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --smoke) SMOKE=1; COUNT=1000; REPEATS=1; HTTP_SECONDS=2; shift ;;
    --only) ONLY=${2:?--only needs table1, rules, http or growth}; shift 2 ;;
    --profile) PROFILE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ && $REPEATS =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench: --count and --repeats must be positive integers" >&2; exit 2; }
[[ -z $ONLY || $ONLY == table1 || $ONLY == rules || $ONLY == http || $ONLY == growth ]] ||
  { echo "bench: --only must be table1, rules, http or growth, got '$ONLY'" >&2; exit 2; }
# table1|rules|http by default, growth only when asked for (it is long)
want() { if [ "$1" = growth ]; then [ "$ONLY" = growth ]; else [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; fi; }
if [ -n "$PROFILE" ]; then
  command -v perf >/dev/null || { echo "bench: --profile needs perf (apt-get install linux-perf)" >&2; exit 2; }
fi
RULES_FILE=$ROOT/config/rules.example.json
TOTAL=$((COUNT * ${#SOURCES[@]}))
OUT=${OUT:-$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd -P)
LOGS=$OUT/logs

for b in broker-setup/sluice-setup producer/sluice-producer workers/sluice-worker notifier/sluice-notifier \
         bench/bench-procstat bench/bench-raw-publish bench/bench-raw-consume bench/bench-pg-copy; do
  [ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: build first (./run build)"
done
# Debian's interpreter, which has python3-pika and python3-psycopg2 (a
# python3 earlier in PATH, e.g. pyenv's, may not).
PYTHON=${SLUICE_BENCH_PYTHON:-/usr/bin/python3}
"$PYTHON" -c 'import pika, psycopg2' 2>/dev/null ||
  die "$PYTHON lacks pika or psycopg2 (./run deps installs python3-pika python3-psycopg2)"
for t in psql curl awk; do
  command -v "$t" >/dev/null || die "$t is not installed (./run deps)"
done
if want http; then
  command -v wrk >/dev/null || die "wrk is not installed (./run deps installs it)"
fi

# ------------------------------------------------------------ the stack

if [ -z "${SLUICE_AMQP_URL:-}" ] || [ -z "${SLUICE_PG_DSN:-}" ] || [ -z "${SLUICE_MGMT_URL:-}" ]; then
  # In the test suite the stack is the suite's: never start another.
  [ -z "$SMOKE" ] || die "SLUICE_AMQP_URL, SLUICE_PG_DSN and SLUICE_MGMT_URL must be set for --smoke:" \
    "eval \"\$(scripts/stack.sh env)\" (./run test does it)"
  echo "==> starting the local stack (scripts/stack.sh start)"
  "$ROOT/scripts/stack.sh" start
  eval "$("$ROOT/scripts/stack.sh" env)"
fi
# The bench's own vhost and database, on the same servers.
[[ ${SLUICE_AMQP_URL%%,*} =~ ^(amqps?://)(([^:@/]*)(:([^@/]*))?@)?([^/]+) ]] ||
  die "cannot read SLUICE_AMQP_URL"
MQ_USER=${BASH_REMATCH[3]:-guest}
MQ_PASS=${BASH_REMATCH[5]:-guest}
AMQP_URL=${BASH_REMATCH[0]}/$VHOST
MGMT=${SLUICE_MGMT_URL%/}
[[ $SLUICE_PG_DSN =~ ^postgres(ql)?://[^?]*/[^/?]*$ ]] ||
  die "SLUICE_PG_DSN must be a postgresql://.../DATABASE URI (got '$SLUICE_PG_DSN')"
PG_DSN=${SLUICE_PG_DSN%/*}/$BENCH_DB

mgmt() { # METHOD PATH [JSON]
  curl -fsS -u "$MQ_USER:$MQ_PASS" -X "$1" -H 'content-type: application/json' \
    ${3:+--data "$3"} "$MGMT/api/$2"
}
q() { psql "$PG_DSN" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

echo "==> preparing vhost $VHOST and database $BENCH_DB"
mgmt PUT "vhosts/$VHOST" '{}' >/dev/null || die "cannot create vhost $VHOST through $MGMT"
mgmt PUT "permissions/$VHOST/$MQ_USER" '{"configure":".*","write":".*","read":".*"}' >/dev/null
if [ "$(psql "$SLUICE_PG_DSN" -X -At -c "SELECT 1 FROM pg_database WHERE datname = '$BENCH_DB'")" != 1 ]; then
  psql "$SLUICE_PG_DSN" -X -q -c "CREATE DATABASE $BENCH_DB" || die "cannot create database $BENCH_DB"
fi
export SLUICE_AMQP_URL=$AMQP_URL SLUICE_PG_DSN=$PG_DSN
"$BUILD/broker-setup/sluice-setup" --log-level warn --projections "$ROOT/config/projections.conf" || die "sluice-setup failed on the bench stack"

# The servers' own CPU, so a run shows where its time went: the process
# listening on each port (the postmaster, RabbitMQ's beam.smp) and its
# children; the postmaster's cutime/cstime keep what exited backends used.
listener_pid() { # PORT
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}
[[ $PG_DSN =~ :([0-9]+)/ ]] && PG_PID=$(listener_pid "${BASH_REMATCH[1]}") || PG_PID=
[[ $AMQP_URL =~ :([0-9]+)/ ]] && MQ_PID=$(listener_pid "${BASH_REMATCH[1]}") || MQ_PID=
[ -n "$PG_PID" ] && [ -n "$MQ_PID" ] ||
  echo "    (cannot see the servers' processes: no server CPU figures)"
TICKS=$(getconf CLK_TCK)
tree_cpu() { # PID -> CPU seconds of it (with reaped children) and its live children
  [ -n "$1" ] || { echo 0; return; }
  local pids=$1 p
  # shellcheck disable=SC2013 # the file is one line of pids
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do pids+=" $p"; done
  for p in $pids; do
    # fields after "(comm)": 12-15 are utime stime cutime cstime
    sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | awk -v top="$([ "$p" = "$1" ] && echo 1)" \
      '{ print $12 + $13 + (top ? $14 + $15 : 0) }'
  done | awk -v t="$TICKS" '{ n += $1 } END { printf "%.2f", n / t }'
}
SERVER_CPU0=
server_mark() { SERVER_CPU0="$(tree_cpu "$PG_PID") $(tree_cpu "$MQ_PID")"; }
server_used() { # -> "pg_cpu_s mq_cpu_s" since server_mark
  local pg0 mq0
  read -r pg0 mq0 <<<"$SERVER_CPU0"
  echo "$(calc "$(tree_cpu "$PG_PID") - $pg0" 2) $(calc "$(tree_cpu "$MQ_PID") - $mq0" 2)"
}

# What PostgreSQL wrote and did, as counters to subtract: "wal_bytes
# full_page_images checkpoints autovacuum_runs" (of the bench database's
# tables). PostgreSQL 17 moved the checkpoint counters to
# pg_stat_checkpointer.
pg_counters() {
  local ckpt="(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
  [ "$(q -c "SHOW server_version_num")" -lt 170000 ] ||
    ckpt="(SELECT num_timed + num_requested FROM pg_stat_checkpointer)"
  q -F' ' -c "SELECT wal_bytes, wal_fpi, $ckpt,
      (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables)
      FROM pg_stat_wal"
}

# Empties the queues and the warehouse, and checkpoints so that no
# checkpoint of the last run's writes lands in the next run.
reset() {
  for s in "${SOURCES[@]}"; do
    mgmt DELETE "queues/$VHOST/sluice.q.$s/contents" >/dev/null
  done
  # The alerts' tables too: a dedup window left open by the last run would
  # suppress this run's alerts.
  mgmt DELETE "queues/$VHOST/sluice.q.notifier/contents" >/dev/null
  q -c "TRUNCATE events, ingest_errors, profiles, page_views, orders, sensor_readings,
         alerts, alert_windows, alert_deliveries, alert_messages, alert_groups" \
    -c "CHECKPOINT"
}

# ------------------------------------------------------------ measuring

val() { grep "^$1=" "$2" | cut -d= -f2; } # KEY FILE (bench-procstat output)
calc() { awk "BEGIN { printf \"%.${2:-1}f\", ($1) }"; } # EXPR [DECIMALS]

CSV=$OUT/runs.csv
echo "scenario,mode,repeat,events,seconds,throughput,p50_ms,p95_ms,p99_ms,worker_cpu_s,worker_cpu_pct,worker_cpu_s_per_100k,worker_peak_rss_mb,worker_sum_hwm_mb,worker_procs,producer_seconds,producer_rate,producer_cpu_s,producer_cpu_pct,producer_cpu_s_per_100k,producer_peak_rss_mb,rate_per_source,pg_cpu_s_per_100k,mq_cpu_s_per_100k,alerts" >"$CSV"

STEP=0
progress() { STEP=$((STEP + 1)); printf '  [%3d] %-32s %s\n' "$STEP" "$1" "$2"; }

# Runs one of the baseline programs under bench-procstat; appends its row.
baseline() { # NAME REPEAT COMMAND...
  local name=$1 r=$2; shift 2
  local ps=$LOGS/$name.$r.procstat out pg mq
  server_mark
  out=$("$BUILD/bench/bench-procstat" -o "$ps" -- "$@" 2>"$LOGS/$name.$r.log") ||
    die "$name failed: $(tail -1 "$LOGS/$name.$r.log")"
  local secs rate cpu
  secs=$(echo "$out" | grep -o 'seconds=[0-9.]*' | cut -d= -f2)
  rate=$(echo "$out" | grep -o 'rate=[0-9.]*' | cut -d= -f2)
  cpu=$(val cpu_s "$ps")
  read -r pg mq <<<"$(server_used)"
  echo "baseline,$name,$r,$TOTAL,$secs,$rate,,,,,,,,,,$secs,$rate,$cpu,$(calc "100*$cpu/$secs"),$(calc "$cpu*100000/$TOTAL" 3),$(calc "$(val peak_rss_kb "$ps")/1024"),0,$(calc "$pg*100000/$TOTAL" 2),$(calc "$mq*100000/$TOTAL" 2)," >>"$CSV"
  progress "baseline $name #$r" "$(printf '%8.0f events/s  %6.2f s' "$rate" "$secs")"
}

RUN_ARGS=() # given to the producer and the workers first (growth: --config with 200 sources)
start_workers() { # MODE TAG [RULES_FILE] -> sets WORKER_PID (and NOTIFIER_PID with rules)
  local mode=$1 tag=$2 rules=()
  if [ -n "${3:-}" ]; then
    rules=(--rules "$3")
    "$BUILD/notifier/sluice-notifier" --routes '*=log' --metrics-port 0 --log-level info \
      2>"$LOGS/$tag.notifier.log" &
    NOTIFIER_PID=$!
  fi
  "$BUILD/bench/bench-procstat" -o "$LOGS/$tag.worker.procstat" -- \
    "$BUILD/workers/sluice-worker" "${RUN_ARGS[@]}" --mode "$mode" --workers 1 --idle-exit-ms 3000 \
    --metrics-port 0 --stats-interval-ms 0 --log-level info "${rules[@]}" \
    2>"$LOGS/$tag.worker.log" &
  WORKER_PID=$!
}

run_producer() { # TAG SEED RATE
  "$BUILD/bench/bench-procstat" -o "$LOGS/$1.producer.procstat" -- \
    "$BUILD/producer/sluice-producer" "${RUN_ARGS[@]}" --count "$COUNT" --seed "$2" --rate "$3" \
    --window "$WINDOW" --progress-interval-ms 0 --log-level warn 2>"$LOGS/$1.producer.log" ||
    die "the producer failed: see $LOGS/$1.producer.log"
}

wait_workers() { # TAG
  wait "$WORKER_PID" || die "the workers failed: see $LOGS/$1.worker.log"
  WORKER_PID=
  local n
  n=$(q -c "SELECT count(*) FROM events")
  [ "$n" -eq "$TOTAL" ] || die "$1: $n events stored, expected $TOTAL (see $LOGS/$1.worker.log)"
  if [ -n "${NOTIFIER_PID:-}" ]; then
    kill -TERM "$NOTIFIER_PID"
    wait "$NOTIFIER_PID" || die "the notifier failed: see $LOGS/$1.notifier.log"
    NOTIFIER_PID=
  fi
}

# A unified drain like the measured ones, with perf sampling the worker's
# PostgreSQL backend (its call stacks, unwound with DWARF: Debian's
# PostgreSQL keeps no frame pointers); bench/pg_phases.py sums the samples
# by phase into $OUT/pg_profile.md. Not part of the figures: perf slows
# what it samples.
profile_drain() {
  local tag=profile.unified pid= i
  reset
  run_producer "$tag" "$((SEED_BASE + 9000))" 0
  start_workers unified "$tag"
  for i in $(seq 500); do
    pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE datname = '$BENCH_DB'
                AND backend_type = 'client backend' AND pid <> pg_backend_pid() LIMIT 1")
    [ -n "$pid" ] && break
    sleep 0.01
  done
  [ -n "$pid" ] || die "profile: the worker never connected to PostgreSQL (see $LOGS/$tag.worker.log)"
  perf record --call-graph dwarf,16384 -F 999 -p "$pid" -o "$LOGS/$tag.perf.data" \
    >"$LOGS/$tag.perf.log" 2>&1 &
  local perf_pid=$!
  wait_workers "$tag"
  # The backend exits with the worker, and perf with it.
  wait "$perf_pid" || die "profile: perf record failed: see $LOGS/$tag.perf.log"
  perf script -i "$LOGS/$tag.perf.data" 2>>"$LOGS/$tag.perf.log" |
    "$PYTHON" "$ROOT/bench/pg_phases.py" >"$OUT/pg_profile.md" ||
    die "profile: no samples: see $LOGS/$tag.perf.log"
  progress "profile unified drain" "$(sed -n 3p "$OUT/pg_profile.md")"
}

# One live, drain or paced run of one mode; appends its row. Scenarios
# rules_on and rules_paced run the worker with the demo's rules and a
# notifier; rules_off is live without them.
sluice_run() { # SCENARIO MODE REPEAT RATE_PER_SOURCE
  local scenario=$1 mode=$2 r=$3 rate=${4:-0} rules=
  case $scenario in rules_on | rules_paced) rules=$RULES_FILE ;; esac
  local tag=$scenario.$mode.$r seed=$((SEED_BASE + STEP))
  reset
  server_mark
  if [[ $scenario == drain || $scenario == growth_* ]]; then
    run_producer "$tag" "$seed" 0
    GROWTH_PG0=$(pg_counters)
    server_mark # the servers' figures of a drain cover the workers' part only
    start_workers "$mode" "$tag"
  else
    start_workers "$mode" "$tag" "$rules"
    # Every worker logs "consuming" once its consumers are registered.
    local want=1 waited=0
    [ "$mode" = parallel ] && want=${#SOURCES[@]}
    # (grep -s: the log may not exist yet in the first instants.)
    until [ "$(grep -sc ' consuming ' "$LOGS/$tag.worker.log" || true)" -ge "$want" ] 2>/dev/null; do
      sleep 0.02
      waited=$((waited + 1))
      if [ $waited -ge 500 ] || ! kill -0 "$WORKER_PID" 2>/dev/null; then
        die "the workers never started consuming: see $LOGS/$tag.worker.log"
      fi
    done
    run_producer "$tag" "$seed" "$rate"
  fi
  wait_workers "$tag"
  local pg mq
  read -r pg mq <<<"$(server_used)"
  local wps=$LOGS/$tag.worker.procstat pps=$LOGS/$tag.producer.procstat
  # Throughput window: first publish (live) or worker launch (drain) to
  # the last commit; latency: stored_at - produced_at per event.
  local from="min(produced_at)"
  [[ $scenario == drain || $scenario == growth_* ]] && from="to_timestamp($(val start_us "$wps") / 1e6)"
  local stats secs p50 p95 p99
  stats=$(q -F' ' -c "SELECT extract(epoch FROM max(stored_at) - $from),
      1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY stored_at - produced_at)),
      1000 * extract(epoch FROM percentile_cont(0.95) WITHIN GROUP (ORDER BY stored_at - produced_at)),
      1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY stored_at - produced_at))
      FROM events")
  read -r secs p50 p95 p99 <<<"$stats"
  local wcpu pcpu psecs
  wcpu=$(val cpu_s "$wps")
  pcpu=$(val cpu_s "$pps")
  psecs=$(val wall_s "$pps")
  local thr
  thr=$(calc "$TOTAL/$secs" 0)
  echo "$scenario,$mode,$r,$TOTAL,$(calc "$secs" 3),$thr,$(calc "$p50"),$(calc "$p95"),$(calc "$p99"),$wcpu,$(calc "100*$wcpu/$secs"),$(calc "$wcpu*100000/$TOTAL" 3),$(calc "$(val peak_rss_kb "$wps")/1024"),$(calc "$(val sum_hwm_kb "$wps")/1024"),$(val max_procs "$wps"),$psecs,$(calc "$TOTAL/$psecs" 0),$pcpu,$(calc "100*$pcpu/$psecs"),$(calc "$pcpu*100000/$TOTAL" 3),$(calc "$(val peak_rss_kb "$pps")/1024"),$rate,$(calc "$pg*100000/$TOTAL" 2),$(calc "$mq*100000/$TOTAL" 2),$(q -c "SELECT count(*) FROM alerts")" >>"$CSV"
  if [[ $scenario == growth_* ]]; then
    local c
    read -r -a c <<<"$GROWTH_PG0 $(pg_counters)"
    echo "$scenario,$mode,$r,$TOTAL,$(calc "(${c[4]} - ${c[0]}) / 1048576 * 100000 / $TOTAL"),$(calc "(${c[5]} - ${c[1]}) * 100000 / $TOTAL" 0),$((c[6] - c[2])),$((c[7] - c[3])),$(q -c "SELECT round(pg_total_relation_size('event_ids') / 1048576.0, 1)")" >>"$OUT/growth.csv"
  fi
  progress "$scenario $mode #$r" "$(printf '%8.0f events/s  p99 %7.1f ms  worker %5.2f cpu-s %6.1f MB' \
    "$thr" "$p99" "$wcpu" "$(calc "$(val peak_rss_kb "$wps")/1024")")"
}

# Median of column COL over the rows of SCENARIO and MODE of runs.csv (or FILE).
median() { # SCENARIO MODE COL [FILE]
  awk -F, -v s="$1" -v m="$2" -v col="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    $1 == s && $2 == m && $c != "" { print $c }' "${4:-$CSV}" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
                              else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Raw publish as in a live run: a raw consumer drains the queues meanwhile,
# so the broker holds no backlog (with one, it writes more to disk).
raw_publish_live() { # REPEAT
  local r=$1 rc_pid waited=0
  reset
  "$BUILD/bench/bench-raw-consume" "$AMQP_URL" "$TOTAL" "$PREFETCH" "$BATCH" \
    >/dev/null 2>"$LOGS/raw_consume_live.$r.log" &
  rc_pid=$!
  until grep -qs consuming "$LOGS/raw_consume_live.$r.log"; do
    sleep 0.02
    waited=$((waited + 1))
    if [ $waited -ge 500 ] || ! kill -0 $rc_pid 2>/dev/null; then
      die "the raw consumer never started: see $LOGS/raw_consume_live.$r.log"
    fi
  done
  baseline raw_publish "$r" "$BUILD/bench/bench-raw-publish" "$AMQP_URL" "$COUNT" "$((SEED_BASE + 1000 + r))" "$WINDOW"
  wait $rc_pid || die "the raw consumer failed: see $LOGS/raw_consume_live.$r.log"
}

# One run of wrk against the HTTP door (source orders of a producer with an
# http_server section), a unified worker storing; appends its row.
# Scenarios: http_single and http_paced (one event a request), http_batch
# (NDJSON batches of 100).
http_run() { # SCENARIO REPEAT
  local scenario=$1 r=$2 tag=$1.unified.$2 batch=1 conns=64 pause=0
  case $scenario in
    http_batch) batch=100 conns=16 ;;
    http_paced) conns=20 pause=20 ;; # 20 connections, 20 ms apart: under 1,000 requests/s
  esac
  reset
  server_mark
  start_workers unified "$tag"
  local waited=0
  until grep -sq ' consuming ' "$LOGS/$tag.worker.log"; do
    sleep 0.02
    waited=$((waited + 1))
    if [ $waited -ge 500 ] || ! kill -0 "$WORKER_PID" 2>/dev/null; then
      die "the worker never started consuming: see $LOGS/$tag.worker.log"
    fi
  done
  printf '[source orders]\nadapter = http_server\nport = %s\nauth = none\n' "$HTTP_PORT" \
    >"$LOGS/$tag.conf"
  "$BUILD/bench/bench-procstat" -o "$LOGS/$tag.producer.procstat" -- \
    "$BUILD/producer/sluice-producer" --config "$LOGS/$tag.conf" --window "$WINDOW" \
    --progress-interval-ms 0 --log-level warn 2>"$LOGS/$tag.producer.log" &
  local ppid=$!
  waited=0
  until curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz"; do
    sleep 0.02
    waited=$((waited + 1))
    if [ $waited -ge 500 ] || ! kill -0 $ppid 2>/dev/null; then
      die "the producer never listened on $HTTP_PORT: see $LOGS/$tag.producer.log"
    fi
  done
  SLUICE_WRK_BATCH=$batch SLUICE_WRK_DELAY_MS=$pause SLUICE_WRK_RUN=$tag \
    wrk -t 2 -c "$conns" -d "${HTTP_SECONDS}s" --timeout 30s -s "$ROOT/bench/wrk_ingest.lua" \
    "http://127.0.0.1:$HTTP_PORT/v1/sources/orders" >"$LOGS/$tag.wrk.log" 2>&1 ||
    die "wrk failed: see $LOGS/$tag.wrk.log"
  kill -TERM $ppid
  wait $ppid || die "the producer failed: see $LOGS/$tag.producer.log"
  wait "$WORKER_PID" || die "the worker failed: see $LOGS/$tag.worker.log"
  WORKER_PID=
  local accepted other p50 p95 p99 n
  accepted=$(val accepted_requests "$LOGS/$tag.wrk.log")
  other=$(val other_requests "$LOGS/$tag.wrk.log")
  p50=$(val p50_ms "$LOGS/$tag.wrk.log")
  p95=$(val p95_ms "$LOGS/$tag.wrk.log")
  p99=$(val p99_ms "$LOGS/$tag.wrk.log")
  [ -n "$accepted" ] && [ "$accepted" -gt 0 ] || die "$tag: no request answered 202 (see $LOGS/$tag.wrk.log)"
  n=$(q -c "SELECT count(*) FROM events")
  # Every event answered 202 is stored (and events of requests answered
  # otherwise may be too).
  [ "$n" -ge $((accepted * batch)) ] ||
    die "$tag: $n events stored, but $((accepted * batch)) were answered 202"
  local pg mq secs thr wps=$LOGS/$tag.worker.procstat pps=$LOGS/$tag.producer.procstat
  read -r pg mq <<<"$(server_used)"
  secs=$(q -c "SELECT extract(epoch FROM max(stored_at) - min(produced_at)) FROM events")
  thr=$(calc "$n/$secs" 0)
  local wcpu pcpu psecs
  wcpu=$(val cpu_s "$wps")
  pcpu=$(val cpu_s "$pps")
  psecs=$(val wall_s "$pps")
  # p50/p95/p99: of the HTTP answers (wrk), not end to end; rate_per_source:
  # requests answered 202 per second; alerts: requests answered otherwise.
  echo "$scenario,unified,$r,$n,$(calc "$secs" 3),$thr,$p50,$p95,$p99,$wcpu,$(calc "100*$wcpu/$secs"),$(calc "$wcpu*100000/$n" 3),$(calc "$(val peak_rss_kb "$wps")/1024"),$(calc "$(val sum_hwm_kb "$wps")/1024"),$(val max_procs "$wps"),$psecs,$(calc "$n/$psecs" 0),$pcpu,$(calc "100*$pcpu/$psecs"),$(calc "$pcpu*100000/$n" 3),$(calc "$(val peak_rss_kb "$pps")/1024"),$(calc "$accepted/$(val seconds "$LOGS/$tag.wrk.log")" 0),$(calc "$pg*100000/$n" 2),$(calc "$mq*100000/$n" 2),$other" >>"$CSV"
  progress "$scenario #$r" "$(printf '%8.0f events/s  202 p99 %7.1f ms  %s not 202' "$thr" "$p99" "$other")"
}

# ------------------------------------------------------------ the runs

SEED_BASE=$(date +%s)
cores=$(nproc)
mem_gb=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo "==> $((${#SOURCES[@]})) sources x $COUNT events, $REPEATS repeats; $cores cores, $mem_gb GB ($cpu_model); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> results in $OUT"
if want table1; then
for r in $(seq 1 "$REPEATS"); do
  raw_publish_live "$r"
  # Raw consume as in a drain: the queues are filled first (that publish,
  # into a backlog, is a figure of its own).
  reset
  baseline raw_publish_backlog "$r" "$BUILD/bench/bench-raw-publish" "$AMQP_URL" "$COUNT" "$((SEED_BASE + 3000 + r))" "$WINDOW"
  baseline raw_consume "$r" "$BUILD/bench/bench-raw-consume" "$AMQP_URL" "$TOTAL" "$PREFETCH" "$BATCH"
  baseline pg_copy "$r" "$BUILD/bench/bench-pg-copy" "$PG_DSN" "$COUNT" "$((SEED_BASE + 2000 + r))" "$BATCH"
  # What a user would write instead: a short Python worker (pika,
  # psycopg2), draining the same backlog into a table keyed by message id.
  reset
  "$BUILD/bench/bench-raw-publish" "$AMQP_URL" "$COUNT" "$((SEED_BASE + 4000 + r))" "$WINDOW" \
    >/dev/null 2>"$LOGS/py_fill.$r.log" || die "filling the queues failed: see $LOGS/py_fill.$r.log"
  baseline py_worker "$r" "$PYTHON" "$ROOT/bench/py_worker.py" "$AMQP_URL" "$PG_DSN" "$TOTAL" "$PREFETCH" "$BATCH"
  for mode in parallel unified; do
    sluice_run live "$mode" "$r"
    sluice_run drain "$mode" "$r"
  done
done
q -c "DROP TABLE IF EXISTS bench_copy, bench_py_events"
declare -A PACE
for mode in parallel unified; do
  PACE[$mode]=$(calc "$(median live "$mode" throughput) / 2 / ${#SOURCES[@]}" 0)
done
for r in $(seq 1 "$REPEATS"); do
  for mode in parallel unified; do
    sluice_run paced "$mode" "$r" "${PACE[$mode]}"
  done
done
fi
if want rules; then
  # Without and with rules alternately, so that a noisy machine weighs on
  # both alike; then paced with rules at half the rate without them.
  for r in $(seq 1 "$REPEATS"); do
    sluice_run rules_off unified "$r"
    sluice_run rules_on unified "$r"
  done
  RULES_PACE=$(calc "$(median rules_off unified throughput) / 2 / ${#SOURCES[@]}" 0)
  for r in $(seq 1 "$REPEATS"); do
    sluice_run rules_paced unified "$r" "$RULES_PACE"
  done
fi
if want http; then
  for r in $(seq 1 "$REPEATS"); do
    [ -z "$ONLY" ] || raw_publish_live "$r" # with table1 run, it measured it already
    http_run http_single "$r"
    http_run http_batch "$r"
  done
  for r in $(seq 1 "$REPEATS"); do
    http_run http_paced "$r"
  done
fi
if want growth; then
  # 200 sources, the four kinds in turn, one queue each (setup declares
  # them); no projections, so that every growth run stores alike.
  GROWTH_CONF=$OUT/growth-sources.conf
  for i in $(seq 1 200); do
    printf '[source g%03d]\nadapter = generator\nkind = %s\n' "$i" "${SOURCES[$(((i - 1) % ${#SOURCES[@]}))]}"
  done >"$GROWTH_CONF"
  : >"$LOGS/no-projections.conf"
  "$BUILD/broker-setup/sluice-setup" --log-level warn --config "$GROWTH_CONF" \
    --projections "$LOGS/no-projections.conf" || die "sluice-setup failed for the growth scenario"
  echo "scenario,mode,repeat,events,wal_mb_per_100k,fpi_per_100k,checkpoints,autovacuum_runs,event_ids_mb" >"$OUT/growth.csv"
  BASE_COUNT=$COUNT
  PER_200=$((BASE_COUNT * ${#SOURCES[@]} / 200)); [ "$PER_200" -gt 0 ] || PER_200=1
  growth_drain() { # SCENARIO REPEAT EVENTS_PER_SOURCE SOURCES [CONFIG]
    COUNT=$3 TOTAL=$(($3 * $4)) RUN_ARGS=()
    [ -z "${5:-}" ] || RUN_ARGS=(--config "$5")
    sluice_run "$1" unified "$2"
    COUNT=$BASE_COUNT TOTAL=$((BASE_COUNT * ${#SOURCES[@]})) RUN_ARGS=()
  }
  growth_copy() { # NAME REPEAT EVENTS_PER_SOURCE
    TOTAL=$(($3 * ${#SOURCES[@]}))
    baseline "$1" "$2" "$BUILD/bench/bench-pg-copy" "$PG_DSN" "$3" "$((SEED_BASE + 5000 + $2))" "$BATCH"
    TOTAL=$((BASE_COUNT * ${#SOURCES[@]}))
  }
  # Only a superuser may raise max_wal_size for the last drain of a repeat.
  [ "$(q -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" = t ] && WAL_TRY=1 || WAL_TRY=
  for r in $(seq 1 "$REPEATS"); do
    growth_drain growth_base "$r" "$BASE_COUNT" "${#SOURCES[@]}"
    growth_drain growth_10x "$r" $((BASE_COUNT * 10)) "${#SOURCES[@]}"
    growth_drain growth_200 "$r" "$PER_200" 200 "$GROWTH_CONF"
    if [ -n "$WAL_TRY" ]; then
      WAL_RAISED=1
      q -c "ALTER SYSTEM SET max_wal_size = '16GB'" -c "SELECT pg_reload_conf()" >/dev/null
      growth_drain growth_10x_wal "$r" $((BASE_COUNT * 10)) "${#SOURCES[@]}"
      q -c "ALTER SYSTEM RESET max_wal_size" -c "SELECT pg_reload_conf()" >/dev/null
      WAL_RAISED=
    fi
    growth_copy pg_copy_base "$r" "$BASE_COUNT"
    growth_copy pg_copy_10x "$r" $((BASE_COUNT * 10))
  done
  q -c "DROP TABLE IF EXISTS bench_copy"
  for i in $(seq 1 200); do
    mgmt DELETE "queues/$VHOST/sluice.q.$(printf 'g%03d' "$i")" >/dev/null
  done
  "$BUILD/broker-setup/sluice-setup" --log-level warn --projections "$ROOT/config/projections.conf" ||
    die "sluice-setup failed restoring the projections"
fi
if [ -n "$PROFILE" ]; then
  profile_drain
fi
reset
echo "    load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ summary

fmt() { awk -v v="$1" 'BEGIN { if (v == "") print "–"; else printf "%.0f", v }'; }
pct() { calc "100*$1" 0; }
verdict() { awk "BEGIN { print ($1) ? \"met\" : \"**missed**\" }"; }
SUM=$OUT/summary.csv
echo "scenario,mode,throughput,baseline,ratio_to_baseline,p50_ms,p95_ms,p99_ms,worker_cpu_pct,worker_cpu_s_per_100k,worker_peak_rss_mb,producer_rate,producer_cpu_pct,producer_cpu_s_per_100k,producer_peak_rss_mb,rate_per_source,pg_cpu_s_per_100k,mq_cpu_s_per_100k" >"$SUM"
: >"$OUT/results.md"
if want table1; then
BASE_PUB=$(median baseline raw_publish throughput)
BASE_CON=$(median baseline raw_consume throughput)
BASE_COPY=$(median baseline pg_copy throughput)
COPY_PG=$(median baseline pg_copy pg_cpu_s_per_100k)
BASE_PY=$(median baseline py_worker throughput)
for b in raw_publish raw_publish_backlog raw_consume pg_copy py_worker; do
  echo "baseline,$b,$(median baseline $b throughput),,,,,,,,,$(median baseline $b producer_rate),$(median baseline $b producer_cpu_pct),$(median baseline $b producer_cpu_s_per_100k),$(median baseline $b producer_peak_rss_mb),,$(median baseline $b pg_cpu_s_per_100k),$(median baseline $b mq_cpu_s_per_100k)" >>"$SUM"
done
declare -A M
for sc in live drain paced; do
  for mode in parallel unified; do
    for col in throughput p50_ms p95_ms p99_ms worker_cpu_pct worker_cpu_s_per_100k worker_peak_rss_mb producer_rate producer_cpu_pct producer_cpu_s_per_100k producer_peak_rss_mb rate_per_source pg_cpu_s_per_100k mq_cpu_s_per_100k; do
      M[$sc.$mode.$col]=$(median "$sc" "$mode" "$col")
    done
    base=$BASE_PUB; [ "$sc" = drain ] && base=$BASE_CON
    M[$sc.$mode.base]=$base
    M[$sc.$mode.ratio]=$(calc "${M[$sc.$mode.throughput]}/$base" 2)
    line="$sc,$mode,${M[$sc.$mode.throughput]},$base,${M[$sc.$mode.ratio]}"
    for col in p50_ms p95_ms p99_ms worker_cpu_pct worker_cpu_s_per_100k worker_peak_rss_mb producer_rate producer_cpu_pct producer_cpu_s_per_100k producer_peak_rss_mb rate_per_source pg_cpu_s_per_100k mq_cpu_s_per_100k; do
      line+=",${M[$sc.$mode.$col]}"
    done
    echo "$line" >>"$SUM"
  done
done

M_MB=$(calc "${M[drain.unified.worker_peak_rss_mb]} > ${M[live.unified.worker_peak_rss_mb]} ? ${M[drain.unified.worker_peak_rss_mb]} : ${M[live.unified.worker_peak_rss_mb]}")
P_MB=$(calc "${M[drain.parallel.worker_peak_rss_mb]} > ${M[live.parallel.worker_peak_rss_mb]} ? ${M[drain.parallel.worker_peak_rss_mb]} : ${M[live.parallel.worker_peak_rss_mb]}")
PG_VS_COPY= # the drain's PostgreSQL CPU over a plain COPY's, when both are known
if awk "BEGIN { exit !($COPY_PG > 0) }"; then
  PG_VS_COPY=$(calc "${M[drain.unified.pg_cpu_s_per_100k]}/$COPY_PG" 2)
fi
{
  echo "# sluice benchmark: parallel vs unified consumers, four simulated sources"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $cores cores, $mem_gb GB RAM ($cpu_model), Debian 12;"
  echo "RabbitMQ $(mgmt GET overview | sed -n 's/.*"rabbitmq_version":"\([^"]*\)".*/\1/p') and PostgreSQL $(q -c "SHOW server_version" | cut -d' ' -f1) on the same machine. $COUNT events per source"
  echo "($TOTAL per run), medians of $REPEATS repeats. Command: \`bench/run.sh --count $COUNT --repeats $REPEATS\`."
  echo
  echo "| | paper: parallel | paper: unified | sluice parallel, live | sluice unified, live | sluice parallel, drain | sluice unified, drain |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| throughput (msg/s) | 5,000 | 4,500 | $(fmt "${M[live.parallel.throughput]}") | $(fmt "${M[live.unified.throughput]}") | $(fmt "${M[drain.parallel.throughput]}") | $(fmt "${M[drain.unified.throughput]}") |"
  echo "| … as share of its baseline | | | $(pct "${M[live.parallel.ratio]}") % of raw publish | $(pct "${M[live.unified.ratio]}") % of raw publish | $(pct "${M[drain.parallel.ratio]}") % of raw consume, $(pct "${M[drain.parallel.throughput]}/$BASE_COPY") % of COPY | $(pct "${M[drain.unified.ratio]}") % of raw consume, $(pct "${M[drain.unified.throughput]}/$BASE_COPY") % of COPY |"
  echo "| worker CPU (% of one core) | 75 % | 40 % | ${M[live.parallel.worker_cpu_pct]} % | ${M[live.unified.worker_cpu_pct]} % | ${M[drain.parallel.worker_cpu_pct]} % | ${M[drain.unified.worker_cpu_pct]} % |"
  echo "| worker CPU-s per 100,000 events | | | ${M[live.parallel.worker_cpu_s_per_100k]} | ${M[live.unified.worker_cpu_s_per_100k]} | ${M[drain.parallel.worker_cpu_s_per_100k]} | ${M[drain.unified.worker_cpu_s_per_100k]} |"
  echo "| worker memory, peak RSS of all processes (MB) | 1,200 | 300 | ${M[live.parallel.worker_peak_rss_mb]} | ${M[live.unified.worker_peak_rss_mb]} | ${M[drain.parallel.worker_peak_rss_mb]} | ${M[drain.unified.worker_peak_rss_mb]} |"
  echo "| end-to-end latency p50 / p95 / p99 (ms) | | | ${M[live.parallel.p50_ms]} / ${M[live.parallel.p95_ms]} / ${M[live.parallel.p99_ms]} | ${M[live.unified.p50_ms]} / ${M[live.unified.p95_ms]} / ${M[live.unified.p99_ms]} | (queued first) | (queued first) |"
  echo "| server CPU-s per 100,000 events: PostgreSQL / RabbitMQ | | | ${M[live.parallel.pg_cpu_s_per_100k]} / ${M[live.parallel.mq_cpu_s_per_100k]} | ${M[live.unified.pg_cpu_s_per_100k]} / ${M[live.unified.mq_cpu_s_per_100k]} | ${M[drain.parallel.pg_cpu_s_per_100k]} / ${M[drain.parallel.mq_cpu_s_per_100k]} | ${M[drain.unified.pg_cpu_s_per_100k]} / ${M[drain.unified.mq_cpu_s_per_100k]} |"
  echo "| producer: msg/s, CPU %, CPU-s/100k, MB | | | $(fmt "${M[live.parallel.producer_rate]}"), ${M[live.parallel.producer_cpu_pct]} %, ${M[live.parallel.producer_cpu_s_per_100k]}, ${M[live.parallel.producer_peak_rss_mb]} | $(fmt "${M[live.unified.producer_rate]}"), ${M[live.unified.producer_cpu_pct]} %, ${M[live.unified.producer_cpu_s_per_100k]}, ${M[live.unified.producer_peak_rss_mb]} | $(fmt "${M[drain.parallel.producer_rate]}"), ${M[drain.parallel.producer_cpu_pct]} %, ${M[drain.parallel.producer_cpu_s_per_100k]}, ${M[drain.parallel.producer_peak_rss_mb]} | $(fmt "${M[drain.unified.producer_rate]}"), ${M[drain.unified.producer_cpu_pct]} %, ${M[drain.unified.producer_cpu_s_per_100k]}, ${M[drain.unified.producer_peak_rss_mb]} |"
  echo
  echo "Paced live runs (each source at \`--rate\` = half the mode's live throughput / 4):"
  echo
  echo "| mode | --rate per source | throughput (msg/s) | latency p50 / p95 / p99 (ms) | worker CPU % | worker CPU-s/100k | worker MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for mode in parallel unified; do
    echo "| $mode | $(fmt "${M[paced.$mode.rate_per_source]}") | $(fmt "${M[paced.$mode.throughput]}") | ${M[paced.$mode.p50_ms]} / ${M[paced.$mode.p95_ms]} / ${M[paced.$mode.p99_ms]} | ${M[paced.$mode.worker_cpu_pct]} | ${M[paced.$mode.worker_cpu_s_per_100k]} | ${M[paced.$mode.worker_peak_rss_mb]} |"
  done
  echo
  echo "Baselines in the same run (bench/*.c, no sluice logic):"
  echo
  echo "| baseline | msg/s | its own CPU % | its own CPU-s/100k | its own MB | PostgreSQL / RabbitMQ CPU-s per 100k |"
  echo "|---|---:|---:|---:|---:|---:|"
  for b in raw_publish raw_publish_backlog raw_consume pg_copy py_worker; do
    echo "| $b | $(fmt "$(median baseline $b throughput)") | $(median baseline $b producer_cpu_pct) | $(median baseline $b producer_cpu_s_per_100k) | $(median baseline $b producer_peak_rss_mb) | $(median baseline $b pg_cpu_s_per_100k) / $(median baseline $b mq_cpu_s_per_100k) |"
  done
  echo
  echo "Targets:"
  echo
  echo "| target | measured | |"
  echo "|---|---|---|"
  echo "| unified drain ≥ 2 × the Python worker (py_worker) | $(calc "${M[drain.unified.throughput]}/$BASE_PY" 2) × ($(fmt "${M[drain.unified.throughput]}") vs $(fmt "$BASE_PY") msg/s) | $(verdict "${M[drain.unified.throughput]} >= 2 * $BASE_PY") |"
  echo "| unified drain ≥ 75 % of raw consume-and-ack | $(pct "${M[drain.unified.ratio]}") % | $(verdict "${M[drain.unified.ratio]} >= 0.75") |"
  echo "| unified live ≥ 75 % of raw confirmed publish | $(pct "${M[live.unified.ratio]}") % | $(verdict "${M[live.unified.ratio]} >= 0.75") |"
  # The machine's speed moves PostgreSQL's CPU figures by up to 1.6 x
  # within a day, so the target is a ratio to a plain COPY of the same
  # events in the same run (pg_copy), not an absolute figure.
  if [ -n "$PG_VS_COPY" ]; then
    echo "| PostgreSQL's CPU, unified drain (demo's projections on) ≤ 1.5 × a plain COPY of the same events | $PG_VS_COPY × (${M[drain.unified.pg_cpu_s_per_100k]} vs $COPY_PG CPU-s per 100k) | $(verdict "$PG_VS_COPY <= 1.5")$([ -n "$PROFILE" ] && echo "; where it goes: below") |"
  else
    echo "| PostgreSQL's CPU, unified drain ≤ 1.5 × a plain COPY of the same events | – (no server CPU figures) | – |"
  fi
  echo "| unified live ≥ 3 × 4,500 msg/s | $(fmt "${M[live.unified.throughput]}") msg/s | $(verdict "${M[live.unified.throughput]} >= 13500") |"
  echo "| unified worker peak RSS ≤ 16 MB | $M_MB MB | $(verdict "$M_MB <= 16") |"
  echo "| parallel pool of four peak RSS ≤ 64 MB | $P_MB MB | $(verdict "$P_MB <= 64") |"
  for mode in parallel unified; do
    echo "| $mode p99 ≤ 250 ms at half the maximum throughput | ${M[paced.$mode.p99_ms]} ms | $(verdict "${M[paced.$mode.p99_ms]} <= 250") |"
  done
  echo "| unified CPU-s/100k ≤ parallel's (live; drain) | ${M[live.unified.worker_cpu_s_per_100k]} vs ${M[live.parallel.worker_cpu_s_per_100k]}; ${M[drain.unified.worker_cpu_s_per_100k]} vs ${M[drain.parallel.worker_cpu_s_per_100k]} | $(verdict "${M[live.unified.worker_cpu_s_per_100k]} <= ${M[live.parallel.worker_cpu_s_per_100k]} && ${M[drain.unified.worker_cpu_s_per_100k]} <= ${M[drain.parallel.worker_cpu_s_per_100k]}") |"
  echo
  echo "Worker figures cover the supervisor and its workers (sluice-worker --workers 1: unified one"
  echo "worker, parallel one per source queue); memory is the peak of their summed VmRSS, sampled"
  echo "every 20 ms. PostgreSQL's and RabbitMQ's own CPU (all their processes, during the run; for a
drain, the workers' part only) is in its own row, not in the worker figures. The paper's CPU"
  echo "and memory were measured on other hardware and software; they are shown for the shape of the"
  echo "comparison."
} >>"$OUT/results.md"

# The chart: throughput, CPU and memory per mode, paper beside sluice, as
# in the paper's Figure 7.
if command -v gnuplot >/dev/null; then
  {
    echo "# mode paper live drain"
    echo "Parallel 5000 ${M[live.parallel.throughput]} ${M[drain.parallel.throughput]}"
    echo "Unified 4500 ${M[live.unified.throughput]} ${M[drain.unified.throughput]}"
  } >"$OUT/throughput.dat"
  {
    echo "# mode paper live drain"
    echo "Parallel 75 ${M[live.parallel.worker_cpu_pct]} ${M[drain.parallel.worker_cpu_pct]}"
    echo "Unified 40 ${M[live.unified.worker_cpu_pct]} ${M[drain.unified.worker_cpu_pct]}"
  } >"$OUT/cpu.dat"
  {
    echo "# mode paper live drain"
    echo "Parallel 1200 ${M[live.parallel.worker_peak_rss_mb]} ${M[drain.parallel.worker_peak_rss_mb]}"
    echo "Unified 300 ${M[live.unified.worker_peak_rss_mb]} ${M[drain.unified.worker_peak_rss_mb]}"
  } >"$OUT/memory.dat"
  gnuplot -e "dir='$OUT'" "$ROOT/bench/figure7.gp" 2>"$LOGS/gnuplot.log" ||
    die "gnuplot failed: see $LOGS/gnuplot.log"
elif [ -n "$SMOKE" ]; then
  echo "    gnuplot not installed: no chart (smoke run)"
else
  die "gnuplot is not installed (./run deps installs gnuplot-nox)"
fi
fi # table1

if want rules; then
  COLS="throughput p50_ms p95_ms p99_ms worker_cpu_pct worker_cpu_s_per_100k worker_peak_rss_mb rate_per_source pg_cpu_s_per_100k mq_cpu_s_per_100k"
  declare -A R
  for sc in rules_off rules_on rules_paced; do
    for col in $COLS; do R[$sc.$col]=$(median "$sc" unified "$col"); done
  done
  R_RATIO=$(calc "${R[rules_on.throughput]}/${R[rules_off.throughput]}" 2)
  for sc in rules_off rules_on rules_paced; do
    base=${R[rules_off.throughput]}
    echo "$sc,unified,${R[$sc.throughput]},$base,$(calc "${R[$sc.throughput]}/$base" 2),${R[$sc.p50_ms]},${R[$sc.p95_ms]},${R[$sc.p99_ms]},${R[$sc.worker_cpu_pct]},${R[$sc.worker_cpu_s_per_100k]},${R[$sc.worker_peak_rss_mb]},,,,,${R[$sc.rate_per_source]},${R[$sc.pg_cpu_s_per_100k]},${R[$sc.mq_cpu_s_per_100k]}" >>"$SUM"
  done
  {
    echo
    echo "## Rules: what event detection costs (unified worker, live)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $cores cores. $COUNT events per source ($TOTAL per run), medians of"
    echo "$REPEATS repeats, runs without and with rules alternating. With rules: \`--rules"
    echo "config/rules.example.json\` and a notifier delivering to its log channel. Command:"
    echo "\`bench/run.sh ${ONLY:+--only $ONLY }--count $COUNT --repeats $REPEATS\`."
    echo
    echo "| run | throughput (msg/s) | latency p50 / p95 / p99 (ms) | alerts per run | worker CPU-s/100k | PostgreSQL / RabbitMQ CPU-s per 100k |"
    echo "|---|---:|---:|---:|---:|---:|"
    for sc in rules_off rules_on rules_paced; do
      case $sc in rules_off) name="live, no rules" ;; rules_on) name="live, rules" ;;
        rules_paced) name="paced, rules, --rate $(fmt "${R[rules_paced.rate_per_source]}") per source" ;; esac
      echo "| $name | $(fmt "${R[$sc.throughput]}") | ${R[$sc.p50_ms]} / ${R[$sc.p95_ms]} / ${R[$sc.p99_ms]} | $(median "$sc" unified alerts) | ${R[$sc.worker_cpu_s_per_100k]} | ${R[$sc.pg_cpu_s_per_100k]} / ${R[$sc.mq_cpu_s_per_100k]} |"
    done
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    echo "| live with rules ≥ 85 % of live without | $(pct "$R_RATIO") % ($(fmt "${R[rules_on.throughput]}") vs $(fmt "${R[rules_off.throughput]}") msg/s) | $(verdict "$R_RATIO >= 0.85") |"
    echo "| p99 with rules ≤ 250 ms at half the rate without | ${R[rules_paced.p99_ms]} ms | $(verdict "${R[rules_paced.p99_ms]} <= 250") |"
  } >>"$OUT/results.md"
fi
if want http; then
  declare -A H
  H_PUB=$(median baseline raw_publish throughput)
  for sc in http_single http_batch http_paced; do
    for col in throughput p50_ms p95_ms p99_ms rate_per_source producer_cpu_s_per_100k producer_peak_rss_mb worker_cpu_s_per_100k alerts; do
      H[$sc.$col]=$(median "$sc" unified "$col")
    done
    H[$sc.ratio]=$(calc "${H[$sc.throughput]}/$H_PUB" 2)
    echo "$sc,unified,${H[$sc.throughput]},$H_PUB,${H[$sc.ratio]},${H[$sc.p50_ms]},${H[$sc.p95_ms]},${H[$sc.p99_ms]},,${H[$sc.worker_cpu_s_per_100k]},,,,${H[$sc.producer_cpu_s_per_100k]},${H[$sc.producer_peak_rss_mb]},${H[$sc.rate_per_source]},," >>"$SUM"
  done
  {
    echo
    echo "## The HTTP door: events into the warehouse through http_server (unified worker)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $cores cores. wrk (bench/wrk_ingest.lua) for $HTTP_SECONDS s a run,"
    echo "medians of $REPEATS repeats; raw confirmed publish ($(fmt "$H_PUB") msg/s) measured in the same run."
    echo "A request is answered 202 only once the broker confirmed all its events. Command:"
    echo "\`bench/run.sh ${ONLY:+--only $ONLY }--repeats $REPEATS\`."
    echo
    echo "| run | events/s stored | share of raw confirmed publish | requests/s answered 202 | 202 latency p50 / p95 / p99 (ms) | answered otherwise | producer CPU-s/100k, MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for sc in http_single http_batch http_paced; do
      case $sc in http_single) name="single-event requests, 64 connections" ;;
        http_batch) name="NDJSON batches of 100, 16 connections" ;;
        http_paced) name="single-event requests, paced (20 connections, 20 ms apart)" ;; esac
      echo "| $name | $(fmt "${H[$sc.throughput]}") | $(pct "${H[$sc.ratio]}") % | $(fmt "${H[$sc.rate_per_source]}") | ${H[$sc.p50_ms]} / ${H[$sc.p95_ms]} / ${H[$sc.p99_ms]} | ${H[$sc.alerts]} | ${H[$sc.producer_cpu_s_per_100k]}, ${H[$sc.producer_peak_rss_mb]} |"
    done
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    echo "| batches of 100 ≥ 70 % of raw confirmed publish | $(pct "${H[http_batch.ratio]}") % | $(verdict "${H[http_batch.ratio]} >= 0.70") |"
    echo "| single-event requests ≥ 5,000 events/s | $(fmt "${H[http_single.throughput]}") | $(verdict "${H[http_single.throughput]} >= 5000") |"
    echo "| p99 of the 202 ≤ 50 ms near 1,000 requests/s | ${H[http_paced.p99_ms]} ms at $(fmt "${H[http_paced.rate_per_source]}") requests/s | $(verdict "${H[http_paced.p99_ms]} <= 50") |"
  } >>"$OUT/results.md"
fi
if want growth; then
  declare -A G
  for sc in growth_base growth_10x growth_200 growth_10x_wal; do
    for col in events throughput worker_cpu_s_per_100k worker_peak_rss_mb pg_cpu_s_per_100k mq_cpu_s_per_100k; do
      G[$sc.$col]=$(median "$sc" unified "$col")
    done
    for col in wal_mb_per_100k fpi_per_100k checkpoints autovacuum_runs event_ids_mb; do
      G[$sc.$col]=$(median "$sc" unified "$col" "$OUT/growth.csv")
    done
    [ -z "${G[$sc.throughput]}" ] ||
      echo "$sc,unified,${G[$sc.throughput]},${G[growth_base.throughput]},$(calc "${G[$sc.throughput]}/${G[growth_base.throughput]}" 2),,,,,${G[$sc.worker_cpu_s_per_100k]},${G[$sc.worker_peak_rss_mb]},,,,,,${G[$sc.pg_cpu_s_per_100k]},${G[$sc.mq_cpu_s_per_100k]}" >>"$SUM"
  done
  {
    echo
    echo "## Growth: how cost grows with work (unified drains, no projections)"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $cores cores. Medians of $REPEATS repeats, the runs of a repeat"
    echo "one after another. Command: \`bench/run.sh --only growth --count $BASE_COUNT --repeats $REPEATS\`."
    echo
    echo "| run | events | events/s | vs the first | PostgreSQL / RabbitMQ CPU-s per 100k | PostgreSQL vs a plain COPY of as many events | worker CPU-s per 100k | worker peak RSS (MB) | WAL MB per 100k | full-page images per 100k | checkpoints | autovacuum runs | event_ids at the end (MB) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for sc in growth_base growth_10x growth_200 growth_10x_wal; do
      copy=$(median baseline pg_copy_base pg_cpu_s_per_100k)
      [[ $sc == growth_10x* ]] && copy=$(median baseline pg_copy_10x pg_cpu_s_per_100k)
      vs_copy=–
      awk "BEGIN { exit !(${copy:-0} > 0) }" && vs_copy="$(calc "${G[$sc.pg_cpu_s_per_100k]}/$copy" 2) ×"
      [ -n "${G[$sc.throughput]}" ] || continue
      case $sc in growth_base) name="${#SOURCES[@]} sources" ;; growth_10x) name="${#SOURCES[@]} sources, ten times the events" ;;
        growth_200) name="200 sources, one queue each" ;; growth_10x_wal) name="ten times the events, max_wal_size 16GB" ;; esac
      echo "| $name | $(fmt "${G[$sc.events]}") | $(fmt "${G[$sc.throughput]}") | $(pct "${G[$sc.throughput]}/${G[growth_base.throughput]}") % | ${G[$sc.pg_cpu_s_per_100k]} / ${G[$sc.mq_cpu_s_per_100k]} | $vs_copy | ${G[$sc.worker_cpu_s_per_100k]} | ${G[$sc.worker_peak_rss_mb]} | ${G[$sc.wal_mb_per_100k]} | $(fmt "${G[$sc.fpi_per_100k]}") | ${G[$sc.checkpoints]} | ${G[$sc.autovacuum_runs]} | ${G[$sc.event_ids_mb]} |"
    done
    echo
    echo "A plain COPY of the same sizes in the same run (bench-pg-copy, no sluice logic), PostgreSQL's"
    echo "CPU-s per 100k: $(median baseline pg_copy_base pg_cpu_s_per_100k) for $(fmt "$((BASE_COUNT * ${#SOURCES[@]}))") events,"
    echo "$(median baseline pg_copy_10x pg_cpu_s_per_100k) for $(fmt "$((BASE_COUNT * ${#SOURCES[@]} * 10))") ($(fmt "$(median baseline pg_copy_base throughput)") and $(fmt "$(median baseline pg_copy_10x throughput)") events/s)."
  } >>"$OUT/results.md"
fi
if [ -n "$PROFILE" ]; then
  {
    echo
    echo "## Where PostgreSQL's time goes in storing"
    echo
    echo "One more unified drain of $TOTAL events, with \`perf record --call-graph dwarf\` on the"
    echo "worker's PostgreSQL backend (not among the measured runs: perf slows what it samples). Each"
    echo "sample counts once, under the outermost phase on its stack (bench/pg_phases.py)."
    echo
    cat "$OUT/pg_profile.md"
  } >>"$OUT/results.md"
fi

echo
cat "$OUT/results.md"
echo
echo "==> wrote $CSV, $SUM, $OUT/results.md$(want table1 && echo " and $OUT/figure7.png")"
