"""What every actor runtime holds besides the repo's dependencies, and the FLOps code it carries."""

from __future__ import annotations

import functools
import hashlib
import importlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from flops_common.image_key import ACTOR_RUNTIME_VERSION

FLWR_REQUIREMENT = "flwr==1.41.0"
# The MLflow client matches the tracking server of the suite (mlflow in /work/main/uv.lock).
MLFLOW_VERSION = "3.17.2"
LEARNER_REQUIREMENTS = (FLWR_REQUIREMENT, "numpy", "paho-mqtt>=2.1", "pydantic>=2.7")
AGGREGATOR_REQUIREMENTS = (*LEARNER_REQUIREMENTS, f"mlflow-skinny=={MLFLOW_VERSION}")
# What mlflow-skinny's flavors import but do not require: every flavor module imports pandas,
# and mlflow.sklearn saves models with skops by default. Keras/TensorFlow come from the repo itself.
AGGREGATOR_FLAVOR_REQUIREMENTS = {
    "sklearn": ("pandas", "skops"),
    "pytorch": ("pandas",),
    "keras": ("pandas",),
    "tensorflow": ("pandas",),
}
# Learners never carry MLflow (privacy): these are dropped from the repo's own dependencies.
MLFLOW_DISTRIBUTIONS = frozenset({"mlflow", "mlflow-skinny", "mlflow-tracing"})
# FLOps packages copied into each runtime's site-packages, so it does not depend on this checkout.
RUNTIME_PACKAGES = ("fl_actors", "flops_common")
# The Oakestra FLOps addon's library, under its import path: copied only for repos that import it.
COMPAT_PACKAGE = "flops_utils"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def learner_requirements(flavor: str) -> tuple[str, ...]:
    """What a learner runtime installs besides the repo's dependencies (never MLflow)."""
    return LEARNER_REQUIREMENTS


def aggregator_requirements(flavor: str) -> tuple[str, ...]:
    """What an aggregator runtime installs besides the repo's dependencies: the learner's plus MLflow."""
    return (*AGGREGATOR_REQUIREMENTS, *AGGREGATOR_FLAVOR_REQUIREMENTS.get(flavor, ()))


def package_dir(name: str) -> Path:
    """The source directory of an importable FLOps package."""
    module = importlib.import_module(name)
    if module.__file__ is None:
        raise RuntimeError(f"package {name} has no __init__.py")
    return Path(module.__file__).resolve().parent


def _source_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def runtime_source_hash(packages: Sequence[str] = (*RUNTIME_PACKAGES, COMPAT_PACKAGE)) -> str:
    """sha256 over the files of the FLOps ``packages`` a runtime may carry (default: the actors')."""
    digest = hashlib.sha256()
    for name in packages:
        root = package_dir(name)
        for path in _source_files(root):
            digest.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


@functools.cache
def actor_runtime_id() -> str:
    """The ``runtime`` of an image key: the recipe version and the hash of the actors' FLOps code, so an
    upgraded FLOps never takes an image built with older actor code (its jobs may not read the new ones)."""
    return f"{ACTOR_RUNTIME_VERSION}-{runtime_source_hash()[:16]}"


def copy_runtime_packages(site_packages: Path, packages: Sequence[str] = RUNTIME_PACKAGES) -> None:
    """Copy the FLOps ``packages`` (default: the actors') into a runtime's ``site-packages``."""
    for name in packages:
        shutil.copytree(package_dir(name), site_packages / name, ignore=_IGNORED, dirs_exist_ok=True)
