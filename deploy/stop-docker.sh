#!/usr/bin/env bash
# Stops the registry and the dockerd that deploy/start-docker.sh started under STATE_DIR, by their PIDs.
#   deploy/stop-docker.sh [STATE_DIR]
set -euo pipefail
source "$(dirname "$0")/_python.sh"
state=()
[ $# -ge 1 ] && state=(--state-dir "$(realpath -m "$1")")
flops_python -m flops_suite.docker_engine stop "${state[@]}"
