#!/usr/bin/env bash
# images.sh - makes the container images sluice's compose tests need on a
# machine that reaches Debian's package mirror but no container registry:
#   engine               start dockerd (as root) unless one answers
#   base GEN             debian:12-slim (GEN bookworm) or debian:13-slim
#                        (GEN trixie), from mmdebstrap --variant=minbase
#   standins GEN         base GEN, then the stand-ins for the official
#                        rabbitmq and postgres images:
#                          bookworm: sluice-standin/rabbitmq:3.10  sluice-standin/postgres:15
#                          trixie:   sluice-standin/rabbitmq:4.0   sluice-standin/postgres:17
#                        and for prom/prometheus (monitoring profile):
#                          sluice-standin/prometheus:GEN
#   env GEN              prints RABBITMQ_IMAGE=... POSTGRES_IMAGE=...
#                        PROMETHEUS_IMAGE=... for GEN, and SLUICE_DEBIAN /
#                        SLUICE_IMAGE: sluice's image built on GEN's Debian
#
# Every step is skipped when its image is already there (docker image
# inspect), so a second run costs seconds; REBUILD=1 rebuilds the stand-ins.
# Base tarballs are kept in SLUICE_IMAGE_CACHE (default /var/tmp/sluice-images).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${SLUICE_IMAGE_CACHE:-/var/tmp/sluice-images}
STANDINS=$ROOT/tests/compose/standins

say() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: %s\n' "$*" >&2; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Versions per generation: Debian release, PostgreSQL major, RabbitMQ
# series of that release's packages.
gen_vars() {
    case $1 in
    bookworm) debian=12 pg=15 rmq=3.10 ;;
    trixie) debian=13 pg=17 rmq=4.0 ;;
    *) die "unknown generation '$1' (bookworm or trixie)" ;;
    esac
}

cmd_engine() {
    command -v docker >/dev/null || die "no docker client (apt-get install docker.io)"
    if docker info >/dev/null 2>&1; then
        return
    fi
    command -v dockerd >/dev/null || die "no Docker engine (apt-get install docker.io)"
    [ "$(id -u)" -eq 0 ] || die "the Docker engine is not running and only root can start it"
    say "starting dockerd (log: /var/log/sluice-dockerd.log)"
    # setsid: the engine outlives this script and the test that ran it.
    setsid dockerd --storage-driver overlay2 >>/var/log/sluice-dockerd.log 2>&1 </dev/null &
    local deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "dockerd did not answer within 60 s (see /var/log/sluice-dockerd.log)"
        sleep 1
    done
}

cmd_base() {
    gen_vars "$1"
    local tag=debian:$debian-slim
    have_image "$tag" && return
    command -v mmdebstrap >/dev/null || die "mmdebstrap missing (apt-get install mmdebstrap)"
    mkdir -p "$CACHE"
    local tar=$CACHE/$1.tar
    if [ ! -s "$tar" ]; then
        say "making $tag with mmdebstrap (minbase $1)"
        rm -rf "$tar.part" # an interrupted run's
        mmdebstrap --quiet --variant=minbase --format=tar "$1" "$tar.part" || die "mmdebstrap $1 failed"
        mv "$tar.part" "$tar"
    fi
    say "importing $tar as $tag"
    docker import "$tar" "$tag" >/dev/null
}

cmd_standins() {
    cmd_base "$1"
    gen_vars "$1"
    local rabbit=sluice-standin/rabbitmq:$rmq postgres=sluice-standin/postgres:$pg
    local prometheus=sluice-standin/prometheus:$1
    if [ -n "${REBUILD:-}" ] || ! have_image "$rabbit"; then
        say "building $rabbit"
        docker build -q -t "$rabbit" --build-arg BASE="debian:$debian-slim" \
            "$STANDINS/rabbitmq" >/dev/null
    fi
    if [ -n "${REBUILD:-}" ] || ! have_image "$postgres"; then
        say "building $postgres"
        docker build -q -t "$postgres" --build-arg BASE="debian:$debian-slim" \
            --build-arg PG_MAJOR="$pg" "$STANDINS/postgres" >/dev/null
    fi
    if [ -n "${REBUILD:-}" ] || ! have_image "$prometheus"; then
        say "building $prometheus"
        docker build -q -t "$prometheus" --build-arg BASE="debian:$debian-slim" \
            "$STANDINS/prometheus" >/dev/null
    fi
}

cmd_env() {
    gen_vars "$1"
    echo "RABBITMQ_IMAGE=sluice-standin/rabbitmq:$rmq"
    echo "POSTGRES_IMAGE=sluice-standin/postgres:$pg"
    echo "PROMETHEUS_IMAGE=sluice-standin/prometheus:$1"
    # sluice's own image on the same Debian release, under a tag of its own.
    echo "SLUICE_DEBIAN=$debian"
    echo "SLUICE_IMAGE=sluice-test:$1"
}

case "${1:-}" in
engine) cmd_engine ;;
base) cmd_engine; cmd_base "${2:?usage: images.sh base bookworm|trixie}" ;;
standins) cmd_engine; cmd_standins "${2:?usage: images.sh standins bookworm|trixie}" ;;
env) cmd_env "${2:?usage: images.sh env bookworm|trixie}" ;;
*) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
