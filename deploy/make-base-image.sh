#!/usr/bin/env bash
# Makes a base image without any registry: mmdebstrap --variant=extract ... | docker import (~20 s).
#   deploy/make-base-image.sh [actor|platform|services] [--image NAME:TAG] [--force] [--state-dir DIR]
#     actor     FL-actor base (FLOPS_BASE_IMAGE, default flops-base:bookworm): python3, venv, libstdc++6, CA roots
#     platform  + git (flops-platform-base:bookworm): base of flops-builder and flops-platform
#     services  + mosquitto, docker-registry (flops-services-base:bookworm): the compose broker and registry
# The host's CA bundle is copied in at build time (never committed). Skipped when the image is up to date.
# The engine is DOCKER_HOST, else the one deploy/start-docker.sh started. With Docker Hub at hand,
# FLOPS_BASE_IMAGE=python:3.11-slim needs no base image at all.
set -euo pipefail
source "$(dirname "$0")/_python.sh"
kind=actor
if [ $# -ge 1 ] && [[ "$1" != -* ]]; then kind="$1"; shift; fi
flops_python -m flops_suite.docker_engine base-image --kind "$kind" "$@"
