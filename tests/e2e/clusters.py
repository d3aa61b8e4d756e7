"""A three-host Swarm test cluster with its TLS registry and an authenticated suite on the bridge address.

Shared by ``tests/e2e/test_multihost.py`` (its module fixture) and ``bench/multihost.py``: ``deploy/
start-swarm-cluster.sh N`` makes the hosts (``flc-h0`` the Swarm manager with ``flops.image-builder``, the
others learners with their own data directories), the registry listens on the bridge address with TLS from
the suite's CA (every engine trusts it through its own ``certs.d``), and the broker and MLflow require
credentials. On exit ``deploy/stop-swarm-cluster.sh`` removes it all and ``ip -br addr`` is as before.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from flops_common.oci_images import DEFAULT_BASE_IMAGE
from flops_manager.cli.client import FlopsClient
from flops_suite import cluster
from flops_suite.docker_engine import RegistryServer
from flops_suite.embedded import EmbeddedSuite
from flops_suite.tls import server_certificate
from tests.e2e.containers import DockerEngine, free_ports, run_script
from tests.helpers.suites import make_test_suite

IMAGES_ON_MANAGER = ("flops-builder:latest", DEFAULT_BASE_IMAGE)  # the builder and what it builds on


@dataclass
class Cluster:
    """The running cluster, its registry and suite, and a client of each host's engine."""

    state: cluster.ClusterState
    env: dict[str, str]
    suite: EmbeddedSuite
    admin: FlopsClient
    engines: dict[str, Any]  # host name -> docker client
    registry: str
    started_in_s: float
    lost: set[str] = field(default_factory=set)  # hosts whose engine a test killed
    timings: dict[str, float] = field(default_factory=dict)  # e.g. the stop time, once stopped


def copy_image(source_host: str, target_host: str, image: str) -> None:
    """``docker save | docker load`` from one engine to a cluster host (no registry has these)."""
    save = subprocess.Popen(["docker", "-H", source_host, "save", image], stdout=subprocess.PIPE)
    loaded = subprocess.run(
        ["docker", "-H", target_host, "load", "-q"], stdin=save.stdout, capture_output=True, timeout=300, check=False
    )
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait(timeout=60) == 0 and loaded.returncode == 0, loaded.stderr


def _holds(client: Any, image_id: str) -> bool:
    try:
        client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


def timed_pull(client: Any, repository: str) -> dict[str, float]:
    """Seconds to pull an image of ``repository`` the engine holds again (cached: a manifest check), then,
    removed, from the registry (first pull), and its size."""
    tag = sorted({d for i in client.images.list() for d in i.attrs.get("RepoDigests") or [] if repository in d})[0]
    started = time.monotonic()
    client.images.pull(tag)
    cached_s = time.monotonic() - started
    image_id = client.images.get(tag).id
    deadline = time.monotonic() + 120
    # A container Swarm has not reaped yet keeps the image's layers even when the image is removed by force
    # (the next pull then finds them: no first pull). Wait until none is left, then remove the image.
    while client.containers.list(all=True, filters={"ancestor": image_id}):
        assert time.monotonic() < deadline, f"containers of {tag} still there after 120 s: no first pull to time"
        time.sleep(1)
    while _holds(client, image_id):
        assert time.monotonic() < deadline, f"{tag} still held after 120 s: no first pull to time"
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image_id, force=True)  # every reference of it (by digest, by tag)
        time.sleep(1)
    started = time.monotonic()
    client.images.pull(tag)
    first_s = time.monotonic() - started
    size_mb = client.images.get(tag).attrs["Size"] / 2**20
    return {"first_s": round(first_s, 2), "cached_s": round(cached_s, 2), "size_mb": round(size_mb)}


@contextmanager
def running_cluster(engine: DockerEngine, base: Path, hosts: int = 3) -> Iterator[Cluster]:
    """``hosts`` hosts, a TLS registry and an authenticated suite on the bridge address; all removed after
    (``Cluster.timings["stop_s"]`` then holds the cluster's stop time)."""
    state_dir, registry_dir = base / "cluster", base / "registry"
    (registry_port,) = free_ports(1)
    registry_address = f"{cluster.PLATFORM_ADDRESS}:{registry_port}"
    ca = server_certificate(registry_dir / "tls", "registry", cluster.PLATFORM_ADDRESS).ca
    env = {**engine.env, "FLOPS_CLUSTER_STATE": str(state_dir)}
    ip_before = cluster.ip_brief_addr()
    started = time.monotonic()
    run_script("start-swarm-cluster.sh", str(hosts), "--registry", registry_address, "--registry-ca", str(ca), env=env)
    started_in_s = time.monotonic() - started
    registry = RegistryServer(registry_dir, registry_port, host=cluster.PLATFORM_ADDRESS)
    engines: dict[str, Any] = {}
    suite = None
    setup = None
    try:
        state = cluster.ClusterState.load(state_dir)
        assert state is not None
        engines = {h.name: docker.DockerClient(base_url=h.docker_host, timeout=120) for h in state.hosts}
        registry.start()
        for image in IMAGES_ON_MANAGER:
            copy_image(engine.docker_host, state.manager.docker_host, image)
        manager_env = {
            "FLOPS_ORCHESTRATOR": "swarm",
            "FLOPS_REGISTRY": "oci",
            "FLOPS_OCI_REGISTRY": registry_address,
            "FLOPS_OCI_REGISTRY_CA": str(ca),
            "FLOPS_DOCKER_HOST": state.manager.docker_host,
            "FLOPS_REPO_HOSTS": json.dumps([cluster.PLATFORM_ADDRESS]),
            # Pulls over the bridge and Flower's start on a loaded 2-core machine can exceed the default 180 s.
            "FLOPS_TIMEOUT_ACTOR_DEPLOYMENT_S": "480",
        }
        suite = make_test_suite(base / "home", manager_env, auth=None, host=cluster.PLATFORM_ADDRESS)
        assert suite.auth  # beyond loopback the broker and MLflow require credentials by default
        suite.up()
        admin = FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)
        setup = Cluster(state, env, suite, admin, engines, registry_address, started_in_s)
        yield setup
    finally:
        try:
            if suite is not None:
                suite.down()
        finally:
            for client in engines.values():
                client.close()
            registry.stop()
            stopping = time.monotonic()
            out = run_script("stop-swarm-cluster.sh", env=env)
            if setup is not None:
                setup.timings["stop_s"] = time.monotonic() - stopping
            assert "as before" in out
            # Only the cluster's own links and ranges count: other agents' engines may add theirs meanwhile.
            assert cluster.cluster_leftovers(ip_before) == [], "ip -br addr shows what the cluster made"
