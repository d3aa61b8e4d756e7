"""The ``oci`` registry backend against a real CNCF registry (``docker-registry``), no Docker engine needed.

Images are pushed with the distribution API itself: a config blob holding the labels the builder writes,
one tiny layer, a schema-2 manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flops_common.image_key import ImageKey
from flops_common.oci_images import AGGREGATOR_REPOSITORY, LEARNER_REPOSITORY, actor_labels
from flops_common.oci_registry import DistributionClient
from flops_common.sla import ModelFlavor
from flops_manager.registry.oci import OciRegistry
from flops_suite.docker_engine import RegistryServer
from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry on a free port, started and stopped by PID."""
    if shutil.which("docker-registry") is None:
        subprocess.run([str(ROOT / "deploy" / "install-docker.sh")], check=True, capture_output=True, timeout=600)
    server = RegistryServer(tmp_path_factory.mktemp("registry"), free_port())
    server.start()
    try:
        yield server.address
    finally:
        server.stop()


def _blob(http: httpx.Client, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = http.post(f"/v2/{repository}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    separator = "&" if "?" in location else "?"
    done = http.put(f"{location}{separator}digest={digest}", content=data)
    assert done.status_code == 201, done.text
    return digest


def push_image(address: str, repository: str, tag: str, labels: dict[str, str]) -> None:
    """A minimal schema-2 image whose config carries ``labels``."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        payload = f"{repository}:{tag}".encode()
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = gzip.compress(layer_tar.getvalue())
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    with httpx.Client(base_url=f"http://{address}", timeout=10) as http:
        layer_digest = _blob(http, repository, layer)
        config_digest = _blob(http, repository, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": config_digest,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": layer_digest,
                }
            ],
        }
        put = http.put(
            f"/v2/{repository}/manifests/{tag}",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert put.status_code == 201, put.text


def _key(commit: str) -> ImageKey:
    return ImageKey(repo_url="https://user:s3cret@git.example/repo.git", commit=commit, flavor=ModelFlavor.SKLEARN)


def publish(address: str, key: ImageKey, roles: tuple[str, ...] = ("learner", "aggregator")) -> None:
    """Both actor images of ``key`` as the oci plan labels them."""
    for role in roles:
        repository = LEARNER_REPOSITORY if role == "learner" else AGGREGATOR_REPOSITORY
        labels = actor_labels(key, role, "p1", "dephash", f"{address}/flops/deps:x")
        push_image(address, repository, key.digest, labels)


def test_lookup_finds_both_images_and_rebuilds_the_manifest(registry: str) -> None:
    key = _key("a" * 40)
    oci = OciRegistry(registry)
    assert oci.lookup(key) is None
    publish(registry, key)
    manifest = oci.lookup(key)
    assert manifest is not None
    assert manifest.key == key and manifest.digest == key.digest
    assert manifest.learner == f"{registry}/flops/learner:{key.digest}"
    assert manifest.aggregator == f"{registry}/flops/aggregator:{key.digest}"
    assert manifest.app_dir == "/opt/flops/app" and manifest.dependency_hash == "dephash"
    # The labels never carry the repo URL's credentials.
    labels = DistributionClient(registry).labels(LEARNER_REPOSITORY, key.digest)
    assert labels is not None and "s3cret" not in json.dumps(labels)


def test_lookup_misses_when_one_image_is_missing(registry: str) -> None:
    key = _key("b" * 40)
    publish(registry, key, roles=("learner",))
    assert OciRegistry(registry).lookup(key) is None


def test_list_follows_pagination_and_delete_removes_both(registry: str) -> None:
    keys = [_key(f"{i:x}" * 40) for i in range(3, 8)]
    for key in keys:
        publish(registry, key)
    client = DistributionClient(registry, page_size=2)
    assert {k.digest for k in keys} <= set(client.tags(LEARNER_REPOSITORY))  # 3+ pages of 2
    listed = {m.digest for m in OciRegistry(registry).list()}
    assert {k.digest for k in keys} <= listed
    oci = OciRegistry(registry)
    assert oci.delete(keys[0].digest) is True
    assert oci.lookup(keys[0]) is None
    assert oci.delete(keys[0].digest) is False
    assert keys[0].digest not in {m.digest for m in oci.list()}


def test_unreachable_registry_is_a_miss() -> None:
    assert OciRegistry(f"127.0.0.1:{free_port()}", timeout_s=1).lookup(_key("c" * 40)) is None


def test_registry_server_stops_by_pid(tmp_path: Path) -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry missing")
    server = RegistryServer(tmp_path, free_port())
    pid = server.start()
    assert server.ping()
    server.stop()
    assert server.pid is None
    assert not os.path.exists(f"/proc/{pid}/stat") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
