"""``oci`` backend: FL-actor images in an OCI registry, read through the CNCF distribution API v2 (httpx).

Names and labels are in ``flops_common.oci_images``: an image key's digest is the tag of both
``flops/learner`` and ``flops/aggregator``; the learner image's labels describe the manifest.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.oci_images import (
    ACTOR_REPOSITORIES,
    AGGREGATOR_REPOSITORY,
    LEARNER_REPOSITORY,
    manifest_from_labels,
)
from flops_manager.registry.base import Registry

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_ACCEPT = {"Accept": ", ".join(MANIFEST_TYPES)}
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryUnavailable(RuntimeError):
    """The registry did not answer as the distribution API says."""


class DistributionClient:
    """The few distribution API v2 calls FLOps needs, over plain HTTP on 127.0.0.1 or HTTPS elsewhere."""

    def __init__(
        self, address: str, timeout_s: float = 10.0, auth: tuple[str, str] | None = None, page_size: int = 100
    ) -> None:
        scheme = "http" if address.startswith(("127.", "localhost")) else "https"
        self.base = address if "://" in address else f"{scheme}://{address}"
        self._http = httpx.Client(base_url=self.base, timeout=timeout_s, auth=auth)
        self._page_size = page_size

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.get(path, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"registry {self.base} unreachable: {exc}") from exc

    def _paged(self, path: str, field: str) -> list[str]:
        """Every item of a paginated list (``n`` per page, the next page in the ``Link`` header)."""
        items: list[str] = []
        url: str | None = f"{path}?n={self._page_size}"
        while url is not None:
            response = self._get(url)
            if response.status_code == 404:
                return items
            if response.status_code != 200:
                raise RegistryUnavailable(f"GET {url}: HTTP {response.status_code}")
            items.extend(response.json().get(field) or [])
            match = _NEXT.search(response.headers.get("Link", ""))
            url = match.group(1) if match else None
        return items

    def catalog(self) -> list[str]:
        """The repositories (``/v2/_catalog``)."""
        return self._paged("/v2/_catalog", "repositories")

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository`` (``/v2/<name>/tags/list``); empty if it does not exist."""
        return self._paged(f"/v2/{repository}/tags/list", "tags")

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """``HEAD`` of a manifest: its content digest, None if there is no such tag."""
        try:
            response = self._http.head(f"/v2/{repository}/manifests/{reference}", headers=_ACCEPT)
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"registry {self.base} unreachable: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryUnavailable(f"HEAD {repository}:{reference}: HTTP {response.status_code}")
        return response.headers.get("Docker-Content-Digest")

    def labels(self, repository: str, reference: str, platform: str = "linux/amd64") -> dict[str, str] | None:
        """The labels in an image's config (of ``platform`` if the tag is an index); None if no such tag."""
        response = self._get(f"/v2/{repository}/manifests/{reference}", headers=_ACCEPT)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryUnavailable(f"GET {repository}:{reference}: HTTP {response.status_code}")
        manifest = response.json()
        if "manifests" in manifest:
            os_name, _, arch = platform.partition("/")
            chosen = next(
                (
                    m
                    for m in manifest["manifests"]
                    if m.get("platform", {}).get("os") == os_name and m.get("platform", {}).get("architecture") == arch
                ),
                None,
            )
            if chosen is None:
                return None
            return self.labels(repository, chosen["digest"], platform)
        config = self._get(f"/v2/{repository}/blobs/{manifest['config']['digest']}")
        if config.status_code != 200:
            raise RegistryUnavailable(f"config blob of {repository}:{reference}: HTTP {config.status_code}")
        return dict((config.json().get("config") or {}).get("Labels") or {})

    def delete(self, repository: str, reference: str) -> bool:
        """Delete a tag's manifest (by its digest, as the API wants); False if there was none."""
        digest = self.manifest_digest(repository, reference)
        if digest is None:
            return False
        try:
            response = self._http.delete(f"/v2/{repository}/manifests/{digest}")
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"registry {self.base} unreachable: {exc}") from exc
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 202):
            raise RegistryUnavailable(
                f"DELETE {repository}@{digest}: HTTP {response.status_code} "
                "(is storage.delete.enabled set in the registry's config?)"
            )
        return True


class OciRegistry(Registry):
    """Actor images of a key are ``<registry>/flops/{learner,aggregator}:<key digest>``."""

    name = "oci"

    def __init__(self, address: str, timeout_s: float = 10.0, auth: tuple[str, str] | None = None) -> None:
        self._address = address
        self._timeout_s = timeout_s
        self._auth = auth

    @property
    def location(self) -> str:
        """``host:port`` of the registry: what builders push to and image references start with."""
        return self._address

    def _client(self) -> DistributionClient:
        return DistributionClient(self._address, self._timeout_s, self._auth)

    def lookup(self, key: ImageKey) -> ImageManifest | None:
        """Both images of ``key`` (manifest HEADs), described by the learner's labels; None if either is missing.

        An unreachable registry counts as a miss (logged): the builder then reports the precise cause.
        """
        client = self._client()
        try:
            if client.manifest_digest(AGGREGATOR_REPOSITORY, key.digest) is None:
                return None
            if client.manifest_digest(LEARNER_REPOSITORY, key.digest) is None:
                return None
            labels = client.labels(LEARNER_REPOSITORY, key.digest, key.platform)
        except RegistryUnavailable as exc:
            log.warning("image lookup of %s: %s", key.digest, exc)
            return None
        finally:
            client.close()
        return manifest_from_labels(self._address, labels or {}, key)

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
