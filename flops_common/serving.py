"""What stage 6 (post-training) passes around: the registered model, the serving build job, its
manifest, and the inference service's job (JSON in ``FLOPS_JOB``, like the other jobs).

Local serving layout (the ``local`` registry's directory):

    ROOT/serving/envs/<dependency_hash>/               virtualenv: mlflow-skinny, the flavor's libraries, FLOps' server
    ROOT/serving/models/<model name>/<version>/model/  the version's MLflow model files
    ROOT/serving/models/<model name>/<version>/manifest.json   the ServingManifest, written last
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from flops_common.jobs import ServiceJob
from flops_common.sla import ModelFlavor

SERVING_JOB_KIND = "serving"  # FLOPS_JOB_KIND of a serving build (the builder's default is an actor build)
JOB_KIND_ENV = "FLOPS_JOB_KIND"


class RegisteredModel(BaseModel):
    """A version of a model in the MLflow Model Registry."""

    name: str
    version: str
    uri: str  # models:/<name>/<version>


def registered_model_name(customer_id: str, repo_url: str) -> str:
    """``flops-<customer>-<repo name>``: one registered model per customer and repository."""
    repo = repo_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"flops-{customer_id}-{repo or 'repo'}")


class ServingBuildJob(ServiceJob):
    """Build the serving artifact of one registered model version."""

    model: RegisteredModel
    flavor: ModelFlavor
    customer_id: str
    plan: str = "local"  # "local": an environment in the registry directory; "oci": an image
    registry: str  # local: registry root directory; oci: registry host:port
    tracking_uri: str
    uv_find_links: list[str] = Field(default_factory=list)
    base_image: str | None = None  # oci plan only


class ServingManifest(BaseModel):
    """What a serving build published: where the environment (or image) and the model files are."""

    model: RegisteredModel
    flavor: ModelFlavor
    artifact: str  # local: the serving environment directory; oci: the image reference
    model_dir: str  # local: the model files; oci: their path inside the image
    dependency_hash: str
    requirements: list[str] = Field(default_factory=list)
    size_bytes: int = 0
    created_at: float
    build_seconds: float = 0.0
    step_seconds: dict[str, float] = Field(default_factory=dict)
    env_reused: bool = False


class InferenceJob(ServiceJob):
    """Serve one model with MLflow's scoring server on ``host:port``."""

    model_dir: str
    host: str = "127.0.0.1"
    port: int


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part)


def serving_root(root: Path) -> Path:
    """Where the local registry keeps serving artifacts."""
    return root / "serving"


def serving_env_dir(root: Path, dependency_hash: str) -> Path:
    """The serving environment of one dependency set (shared by the versions that need it)."""
    return serving_root(root) / "envs" / dependency_hash


def serving_model_dir(root: Path, model: RegisteredModel) -> Path:
    """The folder of one published model version: ``model/`` and ``manifest.json``."""
    return serving_root(root) / "models" / _safe(model.name) / _safe(model.version)
