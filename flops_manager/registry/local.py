"""``local`` backend: actor environments in a directory (layout in ``flops_common.local_layout``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.local_layout import image_dir, manifest_path
from flops_manager.registry.base import Registry


class LocalRegistry(Registry):
    """Images are folders with a manifest; environments are shared by dependency hash."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def location(self) -> str:
        """The registry root directory."""
        return str(self._root)

    def lookup(self, key: ImageKey) -> ImageManifest | None:
        """The manifest under the key's digest whose environments still exist."""
        path = manifest_path(self._root, key.digest)
        if not path.is_file():
            return None
        manifest = ImageManifest.model_validate_json(path.read_text())
        if manifest.key != key or not all(Path(p).is_dir() for p in (manifest.learner, manifest.aggregator)):
            return None
        return manifest

    def list(self) -> list[ImageManifest]:
        """Every complete image."""
        return [
            ImageManifest.model_validate_json(p.read_text())
            for p in sorted((self._root / "images").glob("*/manifest.json"))
        ]

    def delete(self, digest: str) -> bool:
        """Remove an image's folder (its environments stay for other images of the same deps)."""
        folder = image_dir(self._root, digest)
        if not folder.is_dir():
            return False
        shutil.rmtree(folder)
        return True
