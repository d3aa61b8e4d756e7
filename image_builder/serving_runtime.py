"""What a serving runtime holds: MLflow's scoring server (from ``mlflow-skinny``), the model's own
requirements and the flavor's libraries, and FLOps' inference entrypoint; never the actors' code.

``mlflow-skinny`` carries the scoring server (FastAPI, uvicorn); with pandas it loads and serves
any pyfunc model, so a serving runtime stays far smaller than one with full ``mlflow``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from image_builder.actor_runtime import MLFLOW_DISTRIBUTIONS, MLFLOW_VERSION, runtime_source_hash

SERVING_PACKAGES = ("flops_common", "inference")
SERVING_REQUIREMENTS = (f"mlflow-skinny=={MLFLOW_VERSION}", "pandas", "paho-mqtt>=2.1", "pydantic>=2.7")
# What a flavor's model needs to load when the model's own requirements do not name it
# (sklearn models are saved with skops when the aggregator has it).
FLAVOR_SERVING_REQUIREMENTS = {"sklearn": ("scikit-learn", "skops"), "pytorch": ("torch",)}
# Bump when the serving runtime's recipe changes.
SERVING_RUNTIME_VERSION = "1"


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return canonicalize_name(re.split(r"[\s=@<>~!;\[]", requirement, maxsplit=1)[0])


def model_requirements(model_dir: Path) -> list[str]:
    """The requirement lines of an MLflow model (``requirements.txt``), without MLflow itself."""
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("-") and _name(line) not in MLFLOW_DISTRIBUTIONS]


def serving_requirements(model_reqs: Sequence[str], flavor: str) -> list[str]:
    """Everything a serving runtime installs: the model's requirements win over the flavor's defaults."""
    named = {_name(r) for r in model_reqs}
    defaults = [r for r in FLAVOR_SERVING_REQUIREMENTS.get(flavor, ()) if _name(r) not in named]
    runtime = [r for r in SERVING_REQUIREMENTS if _name(r) not in named or _name(r) == "mlflow-skinny"]
    return [*runtime, *model_reqs, *defaults]


def dependency_hash(requirements: Sequence[str], find_links: Sequence[str]) -> str:
    """The key of a serving runtime: requirements, interpreter, FLOps' serving code, recipe version."""
    payload = {
        "requirements": sorted(requirements),
        "find_links": sorted(find_links),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "code": runtime_source_hash(SERVING_PACKAGES),
        "recipe": SERVING_RUNTIME_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (apparent size; hard links to uv's cache counted once each)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
