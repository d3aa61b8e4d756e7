"""A private Docker engine, registry and images shared by the container tests (one set-up per session).

Set up with the project's own scripts: ``deploy/install-docker.sh`` (only if dockerd is missing),
``deploy/start-docker.sh`` (a private dockerd without bridge plus the registry, on a free port),
``deploy/make-base-image.sh`` (actor and platform bases, side by side) and ``deploy/build-images.sh``
(the builder image). Each test module then runs its own embedded suite whose manager uses the engine
(``suite_on_engine``). Teardown stops dockerd and the registry by PID (``deploy/stop-docker.sh``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import NotFound

from flops_suite.embedded import EmbeddedSuite
from tests.helpers.ports import free_ports
from tests.helpers.suites import make_test_suite

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def interfaces() -> tuple[set[str], list[str]]:
    """Interface names, and the IPv4 addresses on any interface that fall in a private range."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line}
    addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    private = []
    for line in addrs.splitlines():
        address = ipaddress.ip_interface(line.split()[3]).ip
        if any(address in network for network in PRIVATE):
            private.append(line.split()[1] + " " + str(address))
    return names, private


def run_script(name: str, *args: str, env: dict[str, str], timeout_s: float = 300) -> str:
    """Run a deploy/ script; fail with its output unless it succeeds."""
    proc = subprocess.run(
        [str(DEPLOY / name), *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-3000:]}"
    return proc.stdout


@dataclass
class DockerEngine:
    """The engine, its registry, and what the host looked like before."""

    state: Path
    docker_host: str
    registry: str
    env: dict[str, str]
    client: Any
    interfaces_before: set[str]
    private_before: list[str]


def start_engine(state: Path) -> Iterator[DockerEngine]:
    """Start the engine and registry, make the images; yield; then remove leftovers and stop both."""
    interfaces_before, private_before = interfaces()
    (registry_port,) = free_ports(1)
    env = {
        **os.environ,
        "FLOPS_PYTHON": sys.executable,
        "FLOPS_REGISTRY_PORT": str(registry_port),
        "FLOPS_DOCKER_STATE": str(state),
    }
    env.pop("DOCKER_HOST", None)
    if shutil.which("dockerd") is None or shutil.which("mmdebstrap") is None:
        run_script("install-docker.sh", env=env, timeout_s=600)
    docker_host = f"unix://{state}/docker.sock"
    started = False
    client = None
    try:
        run_script("start-docker.sh", str(state), env=env, timeout_s=120)
        started = True
        with ThreadPoolExecutor(max_workers=2) as pool:
            made = [pool.submit(run_script, "make-base-image.sh", kind, env=env) for kind in ("actor", "platform")]
            for future in made:
                future.result()
        run_script("build-images.sh", "builder", env=env)
        client = docker.DockerClient(base_url=docker_host, timeout=120)
        yield DockerEngine(
            state, docker_host, f"127.0.0.1:{registry_port}", env, client, interfaces_before, private_before
        )
    finally:
        try:
            if client is not None:
                for leftover in labelled_containers(client, "org.flops.managed=true"):
                    with contextlib.suppress(NotFound):
                        leftover.remove(force=True)
                client.close()
        finally:
            if started:
                run_script("stop-docker.sh", str(state), env=env, timeout_s=120)


def suite_on_engine(
    engine: DockerEngine, home: Path, orchestrator: str, auth: bool = False, **extra_env: str
) -> EmbeddedSuite:
    """An embedded suite (own ports and home) whose manager deploys through ``orchestrator`` on the engine.

    With ``auth`` the broker and MLflow require the suite's generated credentials.
    """
    manager_env = {
        "FLOPS_ORCHESTRATOR": orchestrator,
        "FLOPS_REGISTRY": "oci",
        "FLOPS_OCI_REGISTRY": engine.registry,
        "FLOPS_DOCKER_HOST": engine.docker_host,
        "FLOPS_DOCKER_LEARNER_NODES": "2",
        **extra_env,
    }
    return make_test_suite(home, manager_env, auth=auth)


def labelled_containers(client: Any, *labels: str) -> list[Any]:
    """Containers carrying every label, inspected; one removed while being listed is simply not there."""
    for _ in range(20):
        try:
            return list(client.containers.list(all=True, filters={"label": list(labels)}))
        except NotFound:  # listed, then removed before its inspection (Swarm reaps asynchronously)
            time.sleep(0.2)
    return list(client.containers.list(all=True, filters={"label": list(labels)}))
