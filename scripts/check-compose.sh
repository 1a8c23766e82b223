#!/usr/bin/env bash
# check-compose.sh - validates the container set-up without a Docker engine:
#   - compose.yaml is valid for docker-compose (Debian's package) with the
#     variables of .env.example; no password is in a service's environment
#     (each is a Docker secret, a file of scripts/compose-secrets.sh, named
#     by a *_FILE variable);
#   - every command a sluice service runs is a binary of the build tree that
#     the Dockerfile puts into the image, and every --flag it passes and
#     every SLUICE_* variable it sets is a setting that binary knows (read
#     from its --help, which is printed from the settings table);
#   - every shared library those binaries need comes from a Debian package
#     the Dockerfile's runtime stage installs;
#   - no guest account, and the image runs as an unprivileged user;
#   - config/prometheus.yml (monitoring profile) passes `promtool check
#     config` and scrapes services of compose.yaml on the ports where the
#     worker and the notifier serve /metrics by default.
#
# Usage: scripts/check-compose.sh BUILD_DIR      (ctest runs it as test_compose)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD=${1:?usage: check-compose.sh BUILD_DIR}
cd "$ROOT"
failures=0
bad() { echo "check-compose: $*" >&2; failures=$((failures + 1)); }

command -v docker-compose >/dev/null ||
    { echo "check-compose: docker-compose not found (apt-get install docker-compose)" >&2; exit 1; }

# 1. Valid with .env.example; refused without the secrets.
resolved=$(mktemp)
trap 'rm -f "$resolved"' EXIT
docker-compose --project-directory "$ROOT" --env-file "$ROOT/.env.example" -f compose.yaml \
    config >"$resolved" || { echo "check-compose: compose.yaml is invalid" >&2; exit 1; }
empty_env=$(mktemp)
if out=$(env -u POSTGRES_USER \
        docker-compose --project-directory "$ROOT" --env-file "$empty_env" -f compose.yaml \
        config -q 2>&1); then
    bad "compose.yaml accepts a missing POSTGRES_USER (expected \${VAR:?...} to refuse)"
elif ! grep -q "set POSTGRES_.* in .env" <<<"$out"; then
    bad "a missing POSTGRES_USER is refused without naming it: $out"
fi
rm -f "$empty_env"

# 1b. Secrets: no service's environment holds a password (a *PASSWORD*,
#     *PASS, *TOKEN* or *SECRET* variable must be a *_FILE; no URL carries
#     user:password@); each *_FILE names /run/secrets/<a secret the
#     service mounts>; each secret is a file scripts/compose-secrets.sh
#     writes.
secrets_dir=$(mktemp -d)
SLUICE_SECRETS_DIR=$secrets_dir/s bash scripts/compose-secrets.sh >/dev/null ||
    bad "scripts/compose-secrets.sh failed"
while read -r problem; do
    [[ -z $problem ]] || bad "$problem"
done < <(python3 - "$resolved" "$secrets_dir/s" <<'PY'
import os, re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
made = set(os.listdir(sys.argv[2]))
declared = doc.get("secrets") or {}
for name, spec in declared.items():
    if os.path.basename(spec.get("file", "")) not in made:
        print(f"secret {name}: {spec.get('file')} is not a file scripts/compose-secrets.sh writes")
for name, svc in doc["services"].items():
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    mounted = {s if isinstance(s, str) else s.get("source") for s in svc.get("secrets") or []}
    for key, value in env.items():
        value = "" if value is None else str(value)
        if re.search(r"PASSWORD|PASS$|TOKEN|SECRET", key) and not key.endswith("_FILE"):
            print(f"service {name}: {key} holds a secret in the environment (use {key}_FILE)")
        if re.search(r"://[^/@\s]*:[^/@\s]*@", value):
            print(f"service {name}: {key} holds a URL with a password")
        if key.endswith("_FILE") and key.startswith(("SLUICE_", "POSTGRES_")):
            m = re.fullmatch(r"/run/secrets/(.+)", value)
            if not m or m.group(1) not in mounted:
                print(f"service {name}: {key}={value} is not a secret the service mounts")
PY
)
rm -rf "$secrets_dir"

# 2. The sluice services' commands and settings, from the resolved file.
services=$(python3 - "$resolved" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for name, svc in doc["services"].items():
    if svc.get("image", "").split(":")[0] != "sluice":
        continue
    cmd = svc.get("command")
    if isinstance(cmd, str):
        cmd = cmd.split()
    if not cmd:
        print(f"{name}\t-\t")
        continue
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    flags = [a.split("=", 1)[0] for a in cmd[1:] if a.startswith("--")]
    names = [k for k in env if k.startswith("SLUICE_")]
    print(f"{name}\t{cmd[0]}\t{' '.join(flags + names)}")
PY
)
[[ -n $services ]] || bad "no service runs the sluice image"
while IFS=$'\t' read -r service binary settings; do
    if [[ $binary == - ]]; then
        bad "service $service has no command"
        continue
    fi
    path=$(find "$BUILD" -maxdepth 2 -type f -name "$binary" -perm -u+x | head -n 1)
    if [[ -z $path ]]; then
        bad "service $service runs $binary, which the build does not make"
        continue
    fi
    grep -q "/$binary " Dockerfile ||
        bad "service $service runs $binary, which the Dockerfile does not copy into the image"
    before=$failures
    help=$("$path" --help)
    for s in $settings; do
        grep -qE -- "(^| )$s( |,|$)" <<<"$help" ||
            bad "service $service: $binary has no setting $s (see $binary --help)"
    done
    (( failures > before )) || echo "check-compose: $service: $binary ${settings:-} ok"
done <<<"$services"

# 3. The runtime stage installs the package of every library the binaries
#    need (direct NEEDED entries; libc is in the base image, the sanitizer
#    runtimes only in a test build).
runtime_packages=$(awk '/^FROM/ { stage++ } stage == 2' Dockerfile |
    grep -oE '\b(lib[a-z0-9.+-]+|zlib1g|ca-certificates)\b' | sort -u)
while read -r binary; do
    [[ -n $binary ]] || continue
    path=$(find "$BUILD" -maxdepth 2 -type f -name "$binary" -perm -u+x | head -n 1)
    [[ -n $path ]] || continue
    for lib in $(readelf -d "$path" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case $lib in libc.so.* | libm.so.* | libasan.so.* | libubsan.so.* | ld-linux*) continue ;; esac
        file=$(ldd "$path" | awk -v l="$lib" '$1 == l { print $3 }')
        # dpkg knows a library by the path its package installed (/lib or
        # /usr/lib, which usrmerge links): ask for both.
        package=$({ dpkg -S "$(readlink -f "$file")" || dpkg -S "$file"; } 2>/dev/null |
            head -n 1 | cut -d: -f1 || true)
        if [[ -z $package ]]; then
            bad "$binary needs $lib, which no Debian package provides here"
        elif ! grep -qx "$package" <<<"$runtime_packages"; then
            bad "$binary needs $lib from $package, which the Dockerfile's runtime stage does not install"
        fi
    done
done < <(cut -f2 <<<"$services" | sort -u)

# 4. Credentials and users.
grep -qiE 'guest(:|@)|=guest' compose.yaml .env.example &&
    bad "compose.yaml or .env.example uses the guest account"
last_user=$(grep -E '^USER ' Dockerfile | tail -n 1 | awk '{print $2}')
[[ -n $last_user && ${last_user%%:*} != root && ${last_user%%:*} != 0 ]] ||
    bad "the image's last USER is '${last_user:-none}', not an unprivileged user"

# 5. Prometheus's scrape configuration.
if ! command -v promtool >/dev/null; then
    bad "promtool not found (apt-get install prometheus)"
elif ! out=$(promtool check config config/prometheus.yml 2>&1); then
    bad "config/prometheus.yml: $out"
fi
# The default of a binary's --metrics-port, from its --help.
metrics_port() { "$(find "$BUILD" -maxdepth 2 -type f -name "$1" -perm -u+x | head -n 1)" --help |
    grep -A1 -- '--metrics-port ' | sed -n 's/.*default \([0-9]*\).*/\1/p' | head -n 1; }
while read -r target; do
    service=${target%:*}
    grep -qE "^  $service:\$" compose.yaml || bad "config/prometheus.yml scrapes $service, no service of compose.yaml"
    case $service in
    worker) want=$(metrics_port sluice-worker) ;;
    notifier) want=$(metrics_port sluice-notifier) ;;
    rabbitmq) want=15692 ;; # rabbitmq_prometheus, config/rabbitmq/enabled_plugins
    *) continue ;;
    esac
    [[ ${target#*:} == "$want" ]] || bad "config/prometheus.yml scrapes $target; $service listens on $want"
    [[ $service != rabbitmq ]] || continue
    # Reachable from Prometheus's container: not the default 127.0.0.1.
    python3 - "$resolved" "$service" <<'PY' || bad "$service serves /metrics on loopback only: Prometheus cannot reach it"
import sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]]
cmd = svc.get("command") or []
env = svc.get("environment") or {}
addr = env.get("SLUICE_METRICS_ADDRESS") if isinstance(env, dict) else None
if "--metrics-address" in cmd:
    addr = cmd[cmd.index("--metrics-address") + 1]
sys.exit(0 if addr == "0.0.0.0" else 1)
PY
done < <(python3 - config/prometheus.yml <<'PY'
import sys, yaml
for job in yaml.safe_load(open(sys.argv[1]))["scrape_configs"]:
    for sd in job.get("dns_sd_configs", []):
        for name in sd["names"]:
            print(f"{name}:{sd['port']}")
    for sc in job.get("static_configs", []):
        for t in sc["targets"]:
            print(t)
PY
)

if (( failures )); then
    echo "check-compose: $failures problem(s)" >&2
    exit 1
fi
echo "check-compose: compose.yaml, .env.example and Dockerfile agree with the build"
