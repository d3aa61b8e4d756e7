"""Publishes a staged image into the ``local`` registry: the image directory appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.local_layout import MANIFEST, image_dir, manifest_path
from image_builder.venvs import is_complete
from image_builder.workspace import exclusive, move_into_place


def published_manifest(root: Path, key: ImageKey) -> ImageManifest | None:
    """The manifest of ``key`` if its image is published and both its runtimes are still complete."""
    path = manifest_path(root, key.digest)
    if not path.is_file():
        return None
    try:
        manifest = ImageManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError):
        return None
    if manifest.key != key or not all(is_complete(Path(p)) for p in (manifest.learner, manifest.aggregator)):
        return None
    return manifest


def publish_local(root: Path, staged: Path, manifest: ImageManifest, scratch: Path) -> ImageManifest:
    """Write the manifest into ``staged`` (which holds ``app/``) and rename it to the image directory.

    A valid image of the same key already there (a concurrent builder) is kept and its manifest
    returned: same key, same content. An invalid or incomplete one is replaced.
    """
    (staged / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    with exclusive(root, f"image-{manifest.digest}"):
        existing = published_manifest(root, manifest.key)
        if existing is not None:
            return existing
        if not move_into_place(staged, image_dir(root, manifest.digest), scratch):
            raise RuntimeError(f"could not publish image {manifest.digest}")
    return manifest
