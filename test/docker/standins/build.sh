#!/usr/bin/env bash
# Builds local stand-ins for the base images the Dockerfile and docker-compose.yml name, for a
# machine that cannot pull from a registry (this CI machine): everything comes from Debian's
# packages (debootstrap) and, for Node, from this machine's own install. An image that already
# exists is reused; FORCE=1 rebuilds them all. test/docker/docker-compose.standins.yml points
# the compose stack at them, so the real Dockerfile and compose file are what gets tested.
#
#   node:22-bookworm-slim        -> checkout-saga-standin/node      (this machine's node + npm)
#   postgres:17-alpine           -> checkout-saga-standin/postgres  (Debian's PostgreSQL 15)
#   rabbitmq:4-management-alpine -> checkout-saga-standin/rabbitmq  (Debian's RabbitMQ 3.10)
#   axllent/mailpit              -> checkout-saga-standin/smtp-sink (Debian's aiosmtpd; no web UI)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

DOCKER=${DOCKER:-docker}
# The classic builder: these Dockerfiles need nothing BuildKit adds, and it works with any client.
export DOCKER_BUILDKIT=0
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=checkout-saga-standin/debian:$SUITE

exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1 && [[ -z "${FORCE:-}" ]]; }
build() { # image dockerfile context
  if exists "$1"; then echo "stand-in $1: reused"; return; fi
  echo "stand-in $1: building"
  "$DOCKER" build -q --build-arg "BASE=$BASE" -t "$1" -f "$2" "$3" >/dev/null
}

if exists "$BASE"; then
  echo "stand-in $BASE: reused"
else
  echo "stand-in $BASE: debootstrap $SUITE from $MIRROR"
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >/dev/null
  # As Docker's own Debian images do: packages must not try to start services during a build.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | "$DOCKER" import - "$BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

# Node: this machine's binary and npm, in a context of their own.
if exists checkout-saga-standin/node; then
  echo "stand-in checkout-saga-standin/node: reused"
else
  node_bin=$(command -v node)
  npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  cp "$(readlink -f "$node_bin")" "$context/node"
  cp -a "$npm_dir" "$context/npm"
  cp node.Dockerfile "$context/Dockerfile"
  build checkout-saga-standin/node "$context/Dockerfile" "$context"
  rm -rf "$context"
  trap - EXIT
fi

build checkout-saga-standin/postgres postgres.Dockerfile .
build checkout-saga-standin/rabbitmq rabbitmq.Dockerfile .
build checkout-saga-standin/smtp-sink smtp-sink.Dockerfile .
