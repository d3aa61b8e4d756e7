"""The one client of an OCI registry (CNCF distribution API v2 over httpx), for the manager and the builder.

Both ask the same questions: does a key have both actor images, and what do the learner image's labels
say. The labels are read from the image of the key's platform when a tag is a multi-platform index.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Any

import httpx

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.oci_images import AGGREGATOR_REPOSITORY, LEARNER_REPOSITORY, manifest_from_labels

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
_ACCEPT = {"Accept": ", ".join(MANIFEST_TYPES)}
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


# A registry beyond loopback serves TLS; a private CA's certificate (PEM) may be named here.
REGISTRY_CA_ENV = "FLOPS_REGISTRY_CA"


def registry_verify(ca_file: str | None) -> ssl.SSLContext | bool:
    """What httpx verifies the registry with: ``ca_file`` (else ``$FLOPS_REGISTRY_CA``) added to the default roots."""
    path = ca_file or os.environ.get(REGISTRY_CA_ENV)
    if not path:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=path)
    return context


class RegistryUnavailable(RuntimeError):
    """The registry did not answer as the distribution API says."""


class DistributionClient:
    """The few distribution API v2 calls FLOps needs, over plain HTTP on 127.0.0.1 or HTTPS elsewhere."""

    def __init__(
        self,
        address: str,
        timeout_s: float = 10.0,
        auth: tuple[str, str] | None = None,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
        ca_file: str | None = None,
    ) -> None:
        scheme = "http" if address.startswith(("127.", "localhost")) else "https"
        self.base = address if "://" in address else f"{scheme}://{address}"
        self._http = httpx.Client(
            base_url=self.base, timeout=timeout_s, auth=auth, transport=transport, verify=registry_verify(ca_file)
        )
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
        try:
            manifest = response.json()
        except ValueError as exc:
            raise RegistryUnavailable(f"GET {repository}:{reference}: not a manifest: {exc}") from exc
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
        try:
            config = self._get(f"/v2/{repository}/blobs/{manifest['config']['digest']}")
            if config.status_code != 200:
                raise RegistryUnavailable(f"config blob of {repository}:{reference}: HTTP {config.status_code}")
            return dict((config.json().get("config") or {}).get("Labels") or {})
        except (KeyError, ValueError) as exc:
            raise RegistryUnavailable(f"GET {repository}:{reference}: unexpected manifest or config: {exc}") from exc

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


def lookup_actor_images(client: DistributionClient, registry: str, key: ImageKey) -> ImageManifest | None:
    """Both actor images of ``key``, described by the learner's labels (of ``key.platform``); None if either is missing.

    ``registry`` is the ``host:port`` image references start with.
    """
    if client.manifest_digest(AGGREGATOR_REPOSITORY, key.digest) is None:
        return None
    labels = client.labels(LEARNER_REPOSITORY, key.digest, key.platform)
    if labels is None:
        return None
    return manifest_from_labels(registry, labels, key)
