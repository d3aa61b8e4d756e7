#!/usr/bin/env bash
# Leaves the swarm made by deploy/start-swarm.sh (its services go with it) and removes docker_gwbridge.
#   deploy/stop-swarm.sh
set -euo pipefail
source "$(dirname "$0")/_python.sh"
flops_python -m flops_suite.swarm leave
