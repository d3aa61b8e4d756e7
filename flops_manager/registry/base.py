"""The registry boundary: find, list and delete actor images by key."""

from __future__ import annotations

from abc import ABC, abstractmethod

from flops_common.image_key import ImageKey, ImageManifest


class Registry(ABC):
    """One backend per module; callers only see this interface."""

    name: str

    @abstractmethod
    def lookup(self, key: ImageKey) -> ImageManifest | None:
        """The published images for ``key``, or None."""

    @abstractmethod
    def list(self) -> list[ImageManifest]:
        """Every published image."""

    @abstractmethod
    def delete(self, digest: str) -> bool:
        """Remove one image; False if there was none."""

    @property
    @abstractmethod
    def location(self) -> str:
        """What a builder is told to publish to (a directory, or host:port)."""
