#!/usr/bin/env bash
# fuzz/run.sh - builds and runs sluice's libFuzzer targets (see README.md).
#
#   fuzz/run.sh build                     configure and build build-fuzz/ (clang)
#   fuzz/run.sh list                      the targets' names
#   fuzz/run.sh smoke TARGET [SECONDS]    run TARGET briefly (default 3 s)
#                                         from its committed corpus: what
#                                         ctest does
#   fuzz/run.sh campaign SECONDS [TARGET...]
#                                         run each target (default: all) for
#                                         SECONDS (SLUICE_FUZZ_JOBS at once) and
#                                         print executions and coverage
#
# New inputs a campaign finds go to build-fuzz/corpus/TARGET (a smoke run's
# to a temporary directory), never into the committed corpus
# (fuzz/corpus/TARGET, read only); a crash is saved as
# build-fuzz/artifacts/TARGET/crash-* and fails the run. Logs are kept in
# build-fuzz/logs/. Environment: SLUICE_FUZZ_DIR (default build-fuzz),
# SLUICE_FUZZ_JOBS (targets run at once by campaign, default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
OUT=${SLUICE_FUZZ_DIR:-$ROOT/build-fuzz}

targets() {
  local f
  for f in "$ROOT"/fuzz/fuzz_*.c; do basename "$f" .c; done
}

build() {
  command -v clang >/dev/null || { echo "fuzz: clang is not installed (./run deps)" >&2; exit 1; }
  cmake -S "$ROOT" -B "$OUT" -DSLUICE_FUZZ=ON -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$OUT" -j "$(nproc)"
}

# run TARGET SECONDS [WORKDIR]: one libFuzzer run; prints one line of
# figures. New inputs go to WORKDIR (default build-fuzz/corpus/TARGET).
run() {
  local t=$1 secs=$2 name=${1#fuzz_}
  local bin=$OUT/fuzz/$t seeds=$ROOT/fuzz/corpus/$name
  local work=${3:-$OUT/corpus/$t} art=$OUT/artifacts/$t log=$OUT/logs/$t.log
  [ -x "$bin" ] || { echo "fuzz: $bin missing (fuzz/run.sh build)" >&2; return 1; }
  [ -d "$seeds" ] || { echo "fuzz: no corpus $seeds" >&2; return 1; }
  mkdir -p "$work" "$art" "$(dirname "$log")"
  local opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$art/")
  [ -f "$ROOT/fuzz/$t.dict" ] && opts+=(-dict="$ROOT/fuzz/$t.dict")
  local rc=0
  # libFuzzer has its own leak check; the suite's ASAN_OPTIONS are kept.
  "$bin" "${opts[@]}" "$work" "$seeds" >"$log" 2>&1 || rc=$?
  local execs rate cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  read -r cov ft corp < <(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 |
    sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3/') || true
  printf '%-20s %6ss %12s execs %8s exec/s  cov %5s  ft %6s  corpus %6s  %s\n' "$t" "$secs" \
    "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (rc $rc, see $log)")"
  if [ $rc -ne 0 ]; then
    grep -E 'property failed|ERROR: |runtime error|SUMMARY' "$log" | head -n 5 >&2
    return 1
  fi
}

cmd=${1:-}
case "$cmd" in
  build) build ;;
  list) targets ;;
  smoke)
    [ $# -ge 2 ] || { echo "usage: fuzz/run.sh smoke TARGET [SECONDS]" >&2; exit 2; }
    # A scratch corpus: each brief run starts from the committed one.
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    run "$2" "${3:-3}" "$scratch" ;;
  campaign)
    [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh campaign SECONDS [TARGET...]" >&2; exit 2; }
    secs=$2; shift 2
    list=("$@"); [ ${#list[@]} -gt 0 ] || mapfile -t list < <(targets)
    jobs=${SLUICE_FUZZ_JOBS:-1} failed=0
    # At most $jobs targets at once; each prints its line when done.
    for t in "${list[@]}"; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
      run "$t" "$secs" &
    done
    while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
    exit $failed ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$cmd" ] && exit 2; exit 0 ;;
esac
