#!/usr/bin/env bash
# docs/configuration.md's reference part is each program's --help, which is
# printed from its settings table (and, for sluice-producer, from each
# adapter's table; for sluice-notifier, the channels' settings are rows of
# its table). This keeps the document equal to the code:
#   scripts/docs-reference.sh check BUILD_DIR   exit 1 (with a diff) if they differ
#   scripts/docs-reference.sh write BUILD_DIR   rewrite the document's blocks
# Each program's block sits between the lines "<!-- help: PROGRAM begin -->"
# and "<!-- help: PROGRAM end -->", inside a ```text fence; the prose around
# the blocks is written by hand.
set -euo pipefail
usage="usage: docs-reference.sh check|write BUILD_DIR"
mode=${1:?$usage}
build=${2:?$usage}
root=$(cd "$(dirname "$0")/.." && pwd)
doc=$root/docs/configuration.md

# Program name and where CMake builds it.
programs=(
  "sluice-setup broker-setup/sluice-setup"
  "sluice-producer producer/sluice-producer"
  "sluice-worker workers/sluice-worker"
  "sluice-notifier notifier/sluice-notifier"
  "sluice-ctl ctl/sluice-ctl"
)

# The block as it should be: markers around the fenced --help.
block_for() {
  local name=$1 bin=$2 help
  # A sanitizer build's leak check needs ptrace; --help leaks nothing.
  help=$(ASAN_OPTIONS=detect_leaks=0 "$build/$bin" --help) ||
    { echo "docs-reference: $build/$bin --help failed" >&2; return 1; }
  # A build's defaults may name its checkout (sluice-setup's sql_dir): the
  # document says <checkout> there, so any clone compares equal.
  help=${help//"$root/"/<checkout>/}
  printf '<!-- help: %s begin -->\n```text\n%s\n```\n<!-- help: %s end -->\n' "$name" "$help" "$name"
}

[ -f "$doc" ] || { echo "docs-reference: $doc is missing" >&2; exit 1; }
status=0
for entry in "${programs[@]}"; do
  read -r name bin <<<"$entry"
  begin="<!-- help: $name begin -->"
  end="<!-- help: $name end -->"
  grep -qxF -- "$begin" "$doc" ||
    { echo "docs-reference: docs/configuration.md has no '$begin' line" >&2; exit 1; }
  want=$(block_for "$name" "$bin")
  case $mode in
  check)
    have=$(awk -v b="$begin" -v e="$end" '$0 == b { on = 1 } on { print } $0 == e { on = 0 }' "$doc")
    if [ "$have" != "$want" ]; then
      echo "docs/configuration.md's $name settings differ from $name --help;" \
           "run scripts/docs-reference.sh write $build" >&2
      diff <(printf '%s\n' "$have") <(printf '%s\n' "$want") >&2 || true
      status=1
    fi
    ;;
  write)
    tmp=$(mktemp)
    # The block through the environment: awk -v would read its backslashes.
    BLOCK=$want awk -v b="$begin" -v e="$end" '
        $0 == b { print ENVIRON["BLOCK"]; skip = 1; next }
        $0 == e { skip = 0; next }
        !skip { print }' "$doc" >"$tmp"
    cat "$tmp" >"$doc"
    rm -f "$tmp"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
  esac
done
exit $status
