#!/usr/bin/env bash
# Makes the engine of deploy/start-docker.sh (or DOCKER_HOST) a one-node swarm on 127.0.0.1 with no
# private-range bridge, and labels its node as an image builder and a learner:
#   deploy/start-swarm.sh [--listen-port PORT] [--label flops.data-tag.digits ...]
# then run the manager with FLOPS_ORCHESTRATOR=swarm FLOPS_REGISTRY=oci. Undo with deploy/stop-swarm.sh.
set -euo pipefail
source "$(dirname "$0")/_python.sh"
flops_python -m flops_suite.swarm init --label flops.image-builder --label flops.learner "$@"
