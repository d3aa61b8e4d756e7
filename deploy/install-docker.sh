#!/usr/bin/env bash
# Installs what the container deployment needs from Debian: the Docker engine (dockerd, containerd, runc),
# the CNCF registry, mmdebstrap (the base image is made locally, no Docker Hub needed) and docker-compose.
# Nothing is started here: deploy/start-docker.sh starts dockerd and the registry, by PID.
set -euo pipefail
need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v mmdebstrap >/dev/null 2>&1 || need_apt+=(mmdebstrap)
# Debian's docker-compose 1.29 (for docker-compose.yml); FLOPS_WITH_COMPOSE=0 leaves it out.
if [ "${FLOPS_WITH_COMPOSE:-1}" = "1" ] && ! command -v docker-compose >/dev/null 2>&1; then
  need_apt+=(docker-compose)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  # --no-install-recommends: no bridge-utils/cgroupfs-mount/etc.; the docker CLI may already exist.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold "${need_apt[@]}" >/dev/null
fi
dockerd --version
