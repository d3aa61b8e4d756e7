"""digits_sklearn through real containers: builder container -> OCI registry -> aggregator and learner containers.

The module sets up everything itself with the project's own scripts: ``deploy/install-docker.sh`` (only
if dockerd is missing), ``deploy/start-docker.sh`` (a private dockerd without bridge plus the registry, on
a free port), ``deploy/make-base-image.sh`` (actor and platform bases, side by side), and
``deploy/build-images.sh`` (the builder image); a second embedded suite (own ports and home) runs the
manager with ``FLOPS_ORCHESTRATOR=docker`` and ``FLOPS_REGISTRY=oci``. Teardown stops dockerd and the
registry by PID (``deploy/stop-docker.sh``). Select it with ``pytest -m docker``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from mlflow.tracking import MlflowClient

from flops_common.image_key import ImageKey
from flops_common.oci_images import LABEL_COMMIT, LABEL_KEY, LABEL_PROJECT
from flops_manager.cli.client import FlopsClient
from flops_manager.orchestrator.docker import LABEL_PROJECT as CONTAINER_PROJECT_LABEL
from flops_manager.orchestrator.docker import DockerOrchestrator, instance_id
from flops_manager.registry.oci import OciRegistry
from flops_manager.suite.embedded import EmbeddedSuite, SuitePorts
from tests.e2e.conftest import example_sla, wait_final, wait_stage

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in socks]
    for sock in socks:
        sock.close()
    return ports


def _interfaces() -> tuple[set[str], list[str]]:
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


def _script(name: str, *args: str, env: dict[str, str], timeout_s: float = 300) -> str:
    proc = subprocess.run(
        [str(DEPLOY / name), *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-3000:]}"
    return proc.stdout


@dataclass
class DockerSetup:
    """What the tests use."""

    suite: EmbeddedSuite
    admin: FlopsClient
    docker_host: str
    registry: str
    client: Any
    interfaces_before: set[str]
    private_before: list[str]


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerSetup]:
    """A private Docker engine, registry, base and builder images, and a suite whose manager uses them."""
    interfaces_before, private_before = _interfaces()
    state = tmp_path_factory.mktemp("dk").resolve()
    registry_port, broker, store, mlflow, git, api = _free_ports(6)
    env = {
        **os.environ,
        "FLOPS_PYTHON": sys.executable,
        "FLOPS_REGISTRY_PORT": str(registry_port),
        "FLOPS_DOCKER_STATE": str(state),
    }
    env.pop("DOCKER_HOST", None)
    if shutil.which("dockerd") is None or shutil.which("mmdebstrap") is None:
        _script("install-docker.sh", env=env, timeout_s=600)
    docker_host = f"unix://{state}/docker.sock"
    registry = f"127.0.0.1:{registry_port}"
    home = tmp_path_factory.mktemp("flops-docker-home")
    suite = EmbeddedSuite(
        home,
        SuitePorts(broker=broker, store=store, mlflow=mlflow, git=git, api=api),
        manager_env={
            "FLOPS_ORCHESTRATOR": "docker",
            "FLOPS_REGISTRY": "oci",
            "FLOPS_OCI_REGISTRY": registry,
            "FLOPS_DOCKER_HOST": docker_host,
            "FLOPS_DOCKER_LEARNER_NODES": "2",
            "FLOPS_TICK_INTERVAL_S": "0.5",
            "FLOPS_REPO_HOSTS": '["127.0.0.1", "localhost"]',
        },
    )
    started_engine = False
    client = None
    try:
        _script("start-docker.sh", str(state), env=env, timeout_s=120)
        started_engine = True

        def images() -> None:
            with ThreadPoolExecutor(max_workers=2) as pool:
                made = [pool.submit(_script, "make-base-image.sh", kind, env=env) for kind in ("actor", "platform")]
                for future in made:
                    future.result()
            _script("build-images.sh", "builder", env=env)

        # The suite (MLflow takes seconds) comes up while the images are made.
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(images), pool.submit(suite.up)]
            for job in jobs:
                job.result()
        admin = FlopsClient(suite.api_url, suite.admin_token())
        admin.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])
        client = docker.DockerClient(base_url=docker_host, timeout=120)
        yield DockerSetup(suite, admin, docker_host, registry, client, interfaces_before, private_before)
    finally:
        try:
            suite.down()
        finally:
            try:
                if client is not None:
                    for leftover in client.containers.list(all=True, filters={"label": "org.flops.managed=true"}):
                        leftover.remove(force=True)
                    client.close()
            finally:
                if started_engine:
                    _script("stop-docker.sh", str(state), env=env, timeout_s=120)


def _project_containers(setup: DockerSetup, project_id: str) -> list[Any]:
    return list(setup.client.containers.list(all=True, filters={"label": f"{CONTAINER_PROJECT_LABEL}={project_id}"}))


def _assert_no_container_left(setup: DockerSetup, project_id: str) -> None:
    deadline = time.monotonic() + 15  # the observer goes a few seconds after the end
    while _project_containers(setup, project_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [c.name for c in _project_containers(setup, project_id)]
    assert left == [], f"containers of {project_id} remain: {left}"


def _service_record(setup: DockerSetup, project_id: str, service: str) -> dict[str, Any]:
    path = setup.suite.home / "services" / project_id / service / "container.json"
    return dict(json.loads(path.read_text()))


@pytest.mark.timeout(900)
def test_sklearn_project_through_containers(containers: DockerSetup) -> None:
    setup = containers
    accepted = setup.admin.submit(example_sla(setup.suite, "digits_sklearn"))
    project = wait_final(setup.admin, accepted["project_id"], timeout_s=600)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["cache_hit"] is False
    assert [s["stage"] for s in project["stages"]] == [1, 2, 3, 4, 5]
    assert project["final_metrics"]["accuracy"] >= 0.85
    assert project["rounds_completed"] == 3

    # The builder, the aggregator and the learners ran as containers; their output was kept.
    for service in ("builder", "aggregator", "learner-0", "learner-1", "observer"):
        record = _service_record(setup, project["id"], service)
        assert record["backend"] == "docker" and record["info"]["container"], service
    builder_log = (setup.suite.home / "services" / project["id"] / "builder" / "output.log").read_text()
    assert "build dependencies" in builder_log and "push learner" in builder_log

    # The images are in the registry under the key's digest, labelled, the learner without MLflow.
    manifest = project["manifest"]
    assert manifest["learner"] == f"{setup.registry}/flops/learner:{project['image_digest']}"
    assert manifest["app_dir"] == "/opt/flops/app"
    found = OciRegistry(setup.registry).lookup(ImageKey.model_validate(project["image_key"]))
    assert found is not None and found.aggregator == manifest["aggregator"]
    labels = setup.client.images.get(manifest["learner"]).labels
    assert labels[LABEL_PROJECT] == project["id"] and labels[LABEL_COMMIT] == project["commit"]
    assert json.loads(labels[LABEL_KEY])["commit"] == project["commit"]
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('mlflow') is not None)"
    for image, has_mlflow in ((manifest["learner"], False), (manifest["aggregator"], True)):
        run = setup.client.containers.run(image, ["python", "-c", probe], network_mode="host", detach=True)
        code = run.wait(timeout=60)["StatusCode"]
        run.remove(force=True)
        assert code == (1 if has_mlflow else 0), f"{image}: mlflow importable = {bool(code)}"

    # MLflow got every round from the aggregator container.
    mlflow = MlflowClient(setup.suite.mlflow_url)
    history = mlflow.get_metric_history(project["mlflow"]["run_id"], "eval_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert "project succeeded" in setup.admin.timeline(project["id"])
    _assert_no_container_left(setup, project["id"])


@pytest.mark.timeout(300)
def test_second_run_hits_the_registry_cache(containers: DockerSetup) -> None:
    setup = containers
    accepted = setup.admin.submit(example_sla(setup.suite, "digits_sklearn", training_rounds=1))
    # While it trains, the orchestrator finds its containers again by their labels.
    running = wait_stage(setup.admin, accepted["project_id"], 5, timeout_s=180)
    assert running["stage"] == 5, running.get("cause")
    orchestrator = DockerOrchestrator(
        setup.suite.home / "nodes",
        setup.suite.home / "services",
        2,
        1,
        service_image="flops-builder:latest",
        docker_host=setup.docker_host,
        instance=instance_id(setup.suite.home),
    )
    found = {h.name: h for h in orchestrator.list_services(accepted["project_id"])}
    assert {"aggregator", "learner-0", "learner-1"} <= set(found), found
    assert orchestrator.status(found["aggregator"]).state.value == "running"
    project = wait_final(setup.admin, accepted["project_id"], timeout_s=240)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["cache_hit"] is True
    assert [s["stage"] for s in project["stages"]] == [1, 2, 4, 5]
    assert not (setup.suite.home / "services" / project["id"] / "builder").exists()  # no builder started
    _assert_no_container_left(setup, project["id"])
    assert orchestrator.list_services(project["id"]) == []
    saved = orchestrator.logs(found["aggregator"])  # kept after the container was removed
    assert "training finished" in saved or "Flower run" in saved
    orchestrator.close()


def test_no_bridge_and_no_private_address(containers: DockerSetup) -> None:
    names, private = _interfaces()
    appeared = sorted(set(private) - set(containers.private_before))
    assert appeared == [], f"private-range addresses appeared: {appeared}"
    new = names - containers.interfaces_before
    assert new == set(), f"new interfaces appeared: {new}"
    networks = {n.name for n in containers.client.networks.list()}
    assert networks <= {"host", "none"}, networks
