#!/usr/bin/env bash
# A Docker Swarm of N hosts on this machine, for tests and trials of a multi-host setup:
# network namespaces as hosts, a veth pair each into the bridge flc-br (169.254.100.1, where the FLOps
# suite listens), one dockerd per host (nsenter --net, own hostname and /etc/docker), link-local addresses only.
# Host flc-h0 is the Swarm manager (flops.image-builder); flc-h1.. join as workers (flops.learner, flops.data-dir).
#   deploy/start-swarm-cluster.sh N [--registry HOST:PORT --registry-ca CA.pem]
# State (names, PIDs, `ip -br addr` before) in ${FLOPS_CLUSTER_STATE:-$FLOPS_HOME/cluster}; prints the DOCKER_HOST.
# Undo with deploy/stop-swarm-cluster.sh.
set -euo pipefail
source "$(dirname "$0")/_python.sh"
state=()
[ -n "${FLOPS_CLUSTER_STATE:-}" ] && state=(--state-dir "$(realpath -m "$FLOPS_CLUSTER_STATE")")
flops_python -m flops_suite.cluster "${state[@]}" start "$@"
