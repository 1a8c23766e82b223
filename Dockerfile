# sluice's container image: the five binaries (sluice-setup, sluice-producer,
# sluice-worker, sluice-notifier, sluice-ctl) and the migrations, on Debian 12
# (or 13: --build-arg DEBIAN=13, compose's SLUICE_DEBIAN), running as an
# unprivileged user. Every binary takes its settings from SLUICE_*
# environment variables (see `<binary> --help`), so one image serves every
# service of compose.yaml.
#
#   docker build -t sluice .
#   docker run --rm sluice sluice-worker --help

# Debian release of both stages: 12 (bookworm: rabbitmq-c 0.11, libpq 15) or
# 13 (trixie: rabbitmq-c 0.15, libpq 17).
ARG DEBIAN=12

# ---- build: compilers and -dev packages stay in this stage
FROM debian:${DEBIAN}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      librabbitmq-dev libpq-dev libjson-c-dev libssl-dev libcurl4-openssl-dev \
      libmicrohttpd-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole checkout less .dockerignore's list, so a new source folder needs
# no change here.
COPY . .
# Tests need the servers and cmocka: CI runs them outside the image.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
      -DSLUICE_SQL_DIR=/usr/share/sluice/sql \
 && cmake --build /build -j "$(nproc)" \
 && mkdir -p /out/bin \
 && cp /build/broker-setup/sluice-setup /build/producer/sluice-producer \
       /build/workers/sluice-worker /build/notifier/sluice-notifier /build/ctl/sluice-ctl \
       /out/bin/ \
 && strip /out/bin/*

# ---- runtime: shared libraries, CA certificates (amqps://, sslmode), binaries.
# libmicrohttpd: the worker pool's /metrics and /healthz and the producer's
# HTTP door; zlib1g: its gzip bodies; libcurl: HTTP notification channels. scripts/check-compose.sh checks this list against
# what the binaries link. curl: the worker's healthcheck (GET /healthz).
# Debian 13 renamed three of the libraries' packages (64-bit time_t: t64).
FROM debian:${DEBIAN}-slim
RUN . /etc/os-release \
 && case "$VERSION_ID" in 12) t64= ;; *) t64=t64 ;; esac \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      librabbitmq4 libpq5 libjson-c5 libssl3$t64 libcurl4$t64 libmicrohttpd12$t64 \
      zlib1g ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sluice
COPY --from=build /out/bin/ /usr/local/bin/
COPY scripts/sluice-healthcheck /usr/local/bin/
COPY sql/ /usr/share/sluice/sql/
USER sluice:sluice
WORKDIR /tmp
# No default command: compose.yaml (or `docker run sluice sluice-worker`) names one.
CMD ["sluice-worker", "--help"]
