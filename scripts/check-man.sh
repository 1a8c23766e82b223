#!/usr/bin/env bash
# After `cmake --install`, `man PROGRAM` shows each program's page, and the
# page names every setting its --help names (both come from the settings
# table, so a page missing one is a stale page).
#   scripts/check-man.sh BUILD_DIR
# Installs into a temporary prefix, reads each page through man(1) with
# MANPATH pointing there, and exits 1 naming what is missing.
set -euo pipefail
build=${1:?usage: check-man.sh BUILD_DIR}
command -v help2man >/dev/null ||
  { echo "check-man: help2man is not installed (apt-get install help2man), so no man pages were made" >&2; exit 1; }
command -v man >/dev/null || { echo "check-man: man(1) is not installed (apt-get install man-db)" >&2; exit 1; }
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
# The pages are made at build time; build them if this tree has not yet.
cmake --build "$build" --target sluice-worker-man >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null
status=0
for program in sluice-setup sluice-producer sluice-worker sluice-notifier sluice-ctl; do
  [ -x "$prefix/bin/$program" ] || { echo "check-man: $program not installed in bin/" >&2; status=1; continue; }
  page=$(MANPATH=$prefix/share/man MANWIDTH=200 man -P cat "$program" 2>/dev/null | col -b) ||
    { echo "check-man: 'man $program' found no page under $prefix/share/man" >&2; status=1; continue; }
  version=$(ASAN_OPTIONS=detect_leaks=0 "$prefix/bin/$program" --version)
  grep -qF -- "$version" <<<"$page" || { echo "check-man: $program's page does not say '$version'" >&2; status=1; }
  missing=0
  while read -r flag; do
    grep -qF -- "$flag" <<<"$page" || { echo "check-man: $program's page lacks $flag" >&2; missing=$((missing + 1)); }
  done < <(ASAN_OPTIONS=detect_leaks=0 "$prefix/bin/$program" --help | grep -oE '^  --[a-z0-9-]+' | sed 's/^ *//')
  [ "$missing" -eq 0 ] || status=1
done
[ $status -eq 0 ] && echo "check-man: 5 pages, each with every flag of its --help"
exit $status
