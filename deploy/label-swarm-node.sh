#!/usr/bin/env bash
# Adds or removes FLOps labels of a swarm node (id, hostname, or 'self'):
#   deploy/label-swarm-node.sh NODE --add flops.data-tag.digits [--add flops.data-dir=/srv/data] [--remove KEY]
set -euo pipefail
source "$(dirname "$0")/_python.sh"
flops_python -m flops_suite.swarm label "$@"
