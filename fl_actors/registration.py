"""Registers the final model of a run in the MLflow Model Registry (aggregator side, stage 6's input).

The aggregator tells the ServerApp the registered model's name and the version's tags through its
environment (``FLOPS_REGISTERED_MODEL``, ``FLOPS_MODEL_TAGS``); each project adds a new version.
A registration that fails does not fail the training: the TRAINING_SUCCEEDED event then carries
``registration_error`` instead of ``registered_model``, and only stage 6 fails on it.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from fl_actors import env

log = logging.getLogger(__name__)


def version_tags(base: dict[str, str], metrics: dict[str, float | None]) -> dict[str, str]:
    """The version's tags: the manager's (project, commit, flavor, data tags) plus the final metrics."""
    tags = dict(base)
    tags.update({f"flops.metric.{name}": repr(float(value)) for name, value in metrics.items() if value is not None})
    return tags


def register_final_model(run_id: str, metrics: dict[str, float | None]) -> dict[str, Any]:
    """Register the model last logged by this process as a new version; the event data to add.

    Returns ``{}`` when no registration is asked, ``{"registered_model": {name, version, uri}}`` on
    success, ``{"registration_error": cause}`` when the registry refused.
    """
    name = os.environ.get(env.REGISTERED_MODEL)
    if not name:
        return {}
    try:
        import mlflow

        base = json.loads(os.environ.get(env.MODEL_TAGS) or "{}")
        logged = mlflow.last_logged_model()
        source = f"models:/{logged.model_id}" if logged is not None else f"runs:/{run_id}/model"
        version = mlflow.register_model(source, name, tags=version_tags(base, metrics))
    except Exception as exc:  # the registry is not the training: report, do not raise
        log.exception("registering the model as %s failed", name)
        return {"registration_error": f"registering the model as {name} failed: {type(exc).__name__}: {exc}"}
    log.info("registered %s version %s from %s", name, version.version, source)
    return {
        "registered_model": {
            "name": name,
            "version": str(version.version),
            "uri": f"models:/{name}/{version.version}",
        }
    }
