"""``oci`` backend: FL-actor images in an OCI registry, read through the CNCF distribution API v2 (httpx).

Names and labels are in ``flops_common.oci_images``, the distribution API client in
``flops_common.oci_registry``: an image key's digest is the tag of both ``flops/learner`` and
``flops/aggregator``; the learner image's labels describe the manifest.
"""

from __future__ import annotations

import logging

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.oci_images import (
    ACTOR_REPOSITORIES,
    AGGREGATOR_REPOSITORY,
    LEARNER_REPOSITORY,
    manifest_from_labels,
)
from flops_common.oci_registry import DistributionClient, RegistryUnavailable, lookup_actor_images
from flops_manager.registry.base import Registry

log = logging.getLogger(__name__)


class OciRegistry(Registry):
    """Actor images of a key are ``<registry>/flops/{learner,aggregator}:<key digest>``."""

    name = "oci"

    def __init__(
        self,
        address: str,
        timeout_s: float = 10.0,
        auth: tuple[str, str] | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._address = address
        self._timeout_s = timeout_s
        self._auth = auth
        self._ca_file = ca_file

    @property
    def location(self) -> str:
        """``host:port`` of the registry: what builders push to and image references start with."""
        return self._address

    def _client(self) -> DistributionClient:
        return DistributionClient(self._address, self._timeout_s, self._auth, ca_file=self._ca_file)

    def lookup(self, key: ImageKey) -> ImageManifest | None:
        """Both images of ``key``, described by the learner's labels; None if either is missing.

        An unreachable registry counts as a miss (logged): the builder then reports the precise cause.
        """
        client = self._client()
        try:
            return lookup_actor_images(client, self._address, key)
        except RegistryUnavailable as exc:
            log.warning("image lookup of %s: %s", key.digest, exc)
            return None
        finally:
            client.close()

    def list(self) -> list[ImageManifest]:
        """Every key with both images in the registry (tags listed page by page)."""
        client = self._client()
        try:
            both = sorted(set(client.tags(LEARNER_REPOSITORY)) & set(client.tags(AGGREGATOR_REPOSITORY)))
            found = []
            for tag in both:
                manifest = manifest_from_labels(self._address, client.labels(LEARNER_REPOSITORY, tag) or {})
                if manifest is not None:
                    found.append(manifest)
            return found
        finally:
            client.close()

    def delete(self, digest: str) -> bool:
        """Delete both images of one key (their manifests; the registry's garbage collector frees the blobs)."""
        client = self._client()
        try:
            deleted = [client.delete(repository, digest) for repository in ACTOR_REPOSITORIES.values()]
        finally:
            client.close()
        return any(deleted)
