#!/usr/bin/env bash
# Builds FLOps' own images from this checkout (deploy/platform/Dockerfile), FROM the platform base image:
#   deploy/build-images.sh [builder|platform] [--image NAME:TAG]
#     builder   flops-builder:latest  — the image builder and the observer (what the docker orchestrator deploys)
#     platform  flops-platform:latest — the full FLOps venv: manager, store, MLflow (docker-compose.yml)
set -euo pipefail
source "$(dirname "$0")/_python.sh"
target=builder
if [ $# -ge 1 ] && [[ "$1" != -* ]]; then target="$1"; shift; fi
flops_python -m flops_suite.docker_engine build-image --target "$target" "$@"
