"""Fetches a registered model version's files from MLflow (the first step of a serving build)."""

from __future__ import annotations

import os
from pathlib import Path

from flops_common.serving import RegisteredModel
from image_builder.errors import BuildError
from image_builder.steps import BuildStep


def download_model(model: RegisteredModel, tracking_uri: str, dest: Path) -> Path:
    """Download ``model.uri`` into ``dest``; return the directory holding its ``MLmodel``.

    Credentials, if any, come from MLflow's own variables in the builder's environment.
    """
    try:
        import mlflow
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise BuildError(BuildStep.DOWNLOAD, f"the builder has no MLflow client: {exc}") from None
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    mlflow.set_tracking_uri(tracking_uri)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.uri, dst_path=str(dest)))
    except MlflowException as exc:
        raise BuildError(BuildStep.DOWNLOAD, f"cannot download {model.uri}: {exc.message}") from None
    if not (local / "MLmodel").is_file():
        raise BuildError(BuildStep.DOWNLOAD, f"{model.uri} holds no MLmodel file")
    return local
