"""Label reading of the one OCI registry client: a multi-platform tag answers with its platform's image."""

from __future__ import annotations

import json

import httpx
import pytest

from flops_common.image_key import ImageKey
from flops_common.oci_images import AGGREGATOR_REPOSITORY, LEARNER_REPOSITORY, actor_labels
from flops_common.oci_registry import DistributionClient, RegistryUnavailable, lookup_actor_images
from flops_common.sla import ModelFlavor

KEY = ImageKey(
    repo_url="https://user:secret@git.example.invalid/r.git",
    commit="a" * 40,
    flavor=ModelFlavor.SKLEARN,
    platform="linux/amd64",
)
ARCHES = ("arm64", "amd64")  # the index lists arm64 first: "the first manifest" would be the wrong one


def _registry(repositories: set[str], index: bool = True) -> httpx.MockTransport:
    """A registry holding ``repositories`` at ``KEY.digest``, as an index over ``ARCHES`` or one manifest."""
    labels = {
        arch: actor_labels(KEY.model_copy(update={"platform": f"linux/{arch}"}), "learner", "p", "h", "d")
        for arch in ARCHES
    }

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        repository = next((r for r in repositories if path.startswith(f"/v2/{r}/")), None)
        if repository is None:
            return httpx.Response(404)
        reference = path.rsplit("/", 1)[1]
        if "/blobs/" in path:
            return httpx.Response(200, json={"config": {"Labels": labels[reference.removeprefix("config-")]}})
        if reference == KEY.digest and index:
            children = [{"digest": f"child-{a}", "platform": {"os": "linux", "architecture": a}} for a in ARCHES]
            return httpx.Response(200, json={"manifests": children}, headers={"Docker-Content-Digest": "sha256:i"})
        arch = reference.removeprefix("child-") if reference.startswith("child-") else "amd64"
        return httpx.Response(
            200, json={"config": {"digest": f"config-{arch}"}}, headers={"Docker-Content-Digest": "d"}
        )

    return httpx.MockTransport(handle)


def test_labels_of_an_index_are_those_of_the_asked_platform() -> None:
    client = DistributionClient("127.0.0.1:5000", transport=_registry({LEARNER_REPOSITORY}))
    amd64 = client.labels(LEARNER_REPOSITORY, KEY.digest, "linux/amd64")
    arm64 = client.labels(LEARNER_REPOSITORY, KEY.digest, "linux/arm64")
    assert amd64 is not None and arm64 is not None
    assert json.loads(amd64["org.flops.key"])["platform"] == "linux/amd64"
    assert json.loads(arm64["org.flops.key"])["platform"] == "linux/arm64"
    assert client.labels(LEARNER_REPOSITORY, KEY.digest, "linux/s390x") is None


@pytest.mark.parametrize("index", [True, False])
def test_lookup_finds_both_images_of_the_key(index: bool) -> None:
    client = DistributionClient(
        "127.0.0.1:5000", transport=_registry({LEARNER_REPOSITORY, AGGREGATOR_REPOSITORY}, index)
    )
    manifest = lookup_actor_images(client, "127.0.0.1:5000", KEY)
    assert manifest is not None and manifest.key == KEY
    assert manifest.learner == f"127.0.0.1:5000/{LEARNER_REPOSITORY}:{KEY.digest}"


def test_lookup_misses_without_the_aggregator_image() -> None:
    client = DistributionClient("127.0.0.1:5000", transport=_registry({LEARNER_REPOSITORY}))
    assert lookup_actor_images(client, "127.0.0.1:5000", KEY) is None


def test_a_registry_answering_garbage_is_unavailable() -> None:
    garbage = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>"))
    with pytest.raises(RegistryUnavailable):
        DistributionClient("127.0.0.1:5000", transport=garbage).labels(LEARNER_REPOSITORY, KEY.digest)
