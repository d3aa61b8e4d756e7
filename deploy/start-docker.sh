#!/usr/bin/env bash
# Starts a private dockerd (no bridge, no iptables, host networking only) and the CNCF registry on
# 127.0.0.1:${FLOPS_REGISTRY_PORT:-5000}, both under STATE_DIR (default: $FLOPS_HOME/docker), PIDs recorded there.
#   deploy/start-docker.sh [STATE_DIR]        then: export DOCKER_HOST=unix://STATE_DIR/docker.sock
# Stop both with deploy/stop-docker.sh [STATE_DIR] (by PID).
set -euo pipefail
source "$(dirname "$0")/_python.sh"
state=()
[ $# -ge 1 ] && state=(--state-dir "$(realpath -m "$1")")
flops_python -m flops_suite.docker_engine start "${state[@]}"
flops_python -m flops_suite.docker_engine registry-start "${state[@]}"
