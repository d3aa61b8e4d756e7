"""Secrets handed to a service as a file (a Swarm secret) instead of its environment.

Orchestrators that can mount secrets (``swarm``) put a service's secret environment, as a JSON object,
in a file and name that file in ``FLOPS_SECRET_ENV_FILE``; the service loads it into its own environment
at start, so the secrets never appear in the service's spec, labels or command.
"""

from __future__ import annotations

import json
import os

SECRET_ENV_PATH = "FLOPS_SECRET_ENV_FILE"
SECRET_ENV_FILE = "flops-secret-env"


def load_secret_env() -> None:
    """Merge the secret environment file named by ``FLOPS_SECRET_ENV_FILE`` (if any) into ``os.environ``."""
    path = os.environ.get(SECRET_ENV_PATH)
    if not path:
        return
    with open(path, encoding="utf-8") as handle:
        values = json.load(handle)
    if not isinstance(values, dict):
        raise ValueError(f"{SECRET_ENV_PATH} must name a JSON object of strings")
    os.environ.update({str(k): str(v) for k, v in values.items()})
