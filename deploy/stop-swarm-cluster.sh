#!/usr/bin/env bash
# Removes what deploy/start-swarm-cluster.sh made, by the PIDs and names it recorded: every engine,
# namespace, veth and the bridge. Fails if `ip -br addr` then shows anything it did not show before.
#   deploy/stop-swarm-cluster.sh
set -euo pipefail
source "$(dirname "$0")/_python.sh"
state=()
[ -n "${FLOPS_CLUSTER_STATE:-}" ] && state=(--state-dir "$(realpath -m "$FLOPS_CLUSTER_STATE")")
flops_python -m flops_suite.cluster "${state[@]}" stop "$@"
