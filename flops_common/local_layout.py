"""Where the ``local`` registry keeps actor environments on disk.

    ROOT/images/<digest>/manifest.json   the ImageManifest, written last (atomic rename)
    ROOT/images/<digest>/app/            repo code plus the generated Flower app config
    ROOT/envs/<dependency_hash>/learner/     virtualenv: repo deps, flwr, fl_actors (no MLflow)
    ROOT/envs/<dependency_hash>/aggregator/  virtualenv: the same plus mlflow-skinny

Environments are keyed by dependency hash, so a code-only commit reuses them.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"


def image_dir(root: Path, digest: str) -> Path:
    """The folder of one published image."""
    return root / "images" / digest


def manifest_path(root: Path, digest: str) -> Path:
    """The manifest file of one published image; it exists only once the image is complete."""
    return image_dir(root, digest) / MANIFEST


def env_dir(root: Path, dependency_hash: str, role: str) -> Path:
    """The virtualenv of one role (``learner`` or ``aggregator``) for one dependency set."""
    return root / "envs" / dependency_hash / role
