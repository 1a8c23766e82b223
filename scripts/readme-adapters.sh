#!/usr/bin/env bash
# The README's list of source adapters and their settings is the
# "Adapters" part of `sluice-producer --help`, which is printed from each
# adapter's settings table (producer/adapter_*.c). This keeps the two equal:
#   scripts/readme-adapters.sh check BUILD_DIR   exit 1 (with a diff) if they differ
#   scripts/readme-adapters.sh write BUILD_DIR   rewrite the README's block
# The block sits between the lines "<!-- adapters: begin -->" and
# "<!-- adapters: end -->" of README.md, inside a ```text fence.
set -euo pipefail
mode=${1:?usage: readme-adapters.sh check|write BUILD_DIR}
build=${2:?usage: readme-adapters.sh check|write BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
readme=$root/README.md
begin='<!-- adapters: begin -->'
end='<!-- adapters: end -->'

help=$("$build/producer/sluice-producer" --help | sed -n '/^Adapters/,$p')
[ -n "$help" ] || { echo "readme-adapters: no Adapters part in sluice-producer --help" >&2; exit 1; }
want=$(printf '%s\n```text\n%s\n```\n%s\n' "$begin" "$help" "$end")
have=$(sed -n "/^$begin\$/,/^$end\$/p" "$readme")

case $mode in
check)
    if [ "$have" != "$want" ]; then
        echo "README.md's adapter settings differ from sluice-producer --help;" \
             "run scripts/readme-adapters.sh write $build" >&2
        diff <(printf '%s\n' "$have") <(printf '%s\n' "$want") >&2 || true
        exit 1
    fi
    ;;
write)
    grep -qx -- "$begin" "$readme" || { echo "readme-adapters: README.md has no '$begin' line" >&2; exit 1; }
    tmp=$(mktemp)
    awk -v begin="$begin" -v end="$end" -v block="$want" '
        $0 == begin { print block; skip = 1; next }
        $0 == end { skip = 0; next }
        !skip { print }' "$readme" >"$tmp"
    mv "$tmp" "$readme"
    ;;
*)
    echo "usage: readme-adapters.sh check|write BUILD_DIR" >&2
    exit 2
    ;;
esac
