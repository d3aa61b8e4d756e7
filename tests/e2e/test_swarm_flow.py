"""digits_sklearn on a real one-node Docker Swarm: placement by node labels, a failing placement, no leftovers;
then served (stage 6): its serving image built and pushed by a builder service, the inference service a
Swarm service on the ``flops.inference``-labelled node.

The engine, registry and images come from the session's ``docker_engine``; ``deploy/start-swarm.sh``
makes it a one-node swarm on 127.0.0.1 (link-local ``docker_gwbridge``, no ``ingress``) labelled
``flops.image-builder`` and ``flops.learner``; the manager runs with ``FLOPS_ORCHESTRATOR=swarm``.
The broker and MLflow require credentials, which services get as Swarm secrets (never in a spec).
``deploy/stop-swarm.sh`` undoes it, after which no private-range address and no bridge may remain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from flops_manager.cli.client import FlopsClient
from flops_manager.orchestrator.docker_base import LABEL_PROJECT
from flops_manager.orchestrator.swarm import data_tag_label
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_no_internals, example_sla, wait_final, wait_stage
from tests.e2e.containers import (
    DockerEngine,
    free_ports,
    interfaces,
    labelled_containers,
    run_script,
    suite_on_engine,
)
from tests.e2e.serving import STEPS, as_csv, assert_answers_as_registered, sample_rows
from tests.helpers.suites import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@dataclass
class SwarmSetup:
    """What the tests use."""

    engine: DockerEngine
    suite: EmbeddedSuite
    admin: FlopsClient
    node: str  # the swarm node's hostname


@pytest.fixture(scope="module")
def swarm(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmSetup]:
    """A one-node swarm on the session's engine and a suite whose manager deploys Swarm services."""
    engine = docker_engine
    env = {**engine.env, "DOCKER_HOST": engine.docker_host}
    (listen_port,) = free_ports(1)
    # Authenticated broker and MLflow: their passwords must reach services as Swarm secrets only.
    suite = suite_on_engine(engine, tmp_path_factory.mktemp("flops-swarm-home"), "swarm", auth=True)
    try:
        run_script("start-swarm.sh", "--listen-port", str(listen_port), env=env, timeout_s=120)
        suite.up()
        admin = FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)
        node = engine.client.info()["Name"]
        yield SwarmSetup(engine, suite, admin, node)
    finally:
        try:
            suite.down()
        finally:
            run_script("stop-swarm.sh", env=env, timeout_s=120)


def _project_services(setup: SwarmSetup, project_id: str) -> list[Any]:
    return list(setup.engine.client.services.list(filters={"label": f"{LABEL_PROJECT}={project_id}"}))


def _project_containers(setup: SwarmSetup, project_id: str) -> list[Any]:
    return labelled_containers(setup.engine.client, f"{LABEL_PROJECT}={project_id}")


def _project_secrets(setup: SwarmSetup, project_id: str) -> list[Any]:
    return list(setup.engine.client.secrets.list(filters={"label": f"{LABEL_PROJECT}={project_id}"}))


def _assert_nothing_left(setup: SwarmSetup, project_id: str) -> None:
    # The observer goes a few seconds after the end; Swarm then stops each container (SIGTERM, then
    # SIGKILL after the service's 10 s stop grace period) and removes it.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (
        _project_services(setup, project_id)
        or _project_containers(setup, project_id)
        or _project_secrets(setup, project_id)
    ):
        time.sleep(0.5)
    assert [s.name for s in _project_services(setup, project_id)] == []
    assert [c.name for c in _project_containers(setup, project_id)] == []
    assert [s.name for s in _project_secrets(setup, project_id)] == []


def test_nodes_and_capabilities_come_from_swarm_labels(swarm: SwarmSetup) -> None:
    nodes = {n["name"]: n for n in swarm.admin.nodes()}
    assert set(nodes) == {swarm.node}
    assert sorted(nodes[swarm.node]["capabilities"]) == ["image-builder", "learner"]
    assert nodes[swarm.node]["data_tags"] == []
    # Mock data on a swarm node labels it with the data tag; `flops nodes` shows it.
    swarm.admin.mock_data("digits", "digits", nodes=[swarm.node])
    listed = run_cli(swarm.suite, "nodes")
    assert swarm.node in listed and "digits" in listed and "learner" in listed
    labels = swarm.engine.client.nodes.get(swarm.node).attrs["Spec"]["Labels"]
    assert labels[data_tag_label("digits")] == "true"


@pytest.mark.timeout(1200)
def test_digits_project_runs_as_swarm_services_on_labelled_nodes_then_served(
    swarm: SwarmSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**swarm.engine.env, "DOCKER_HOST": swarm.engine.docker_host}
    run_script("label-swarm-node.sh", "self", "--add", "flops.inference", env=env, timeout_s=60)
    try:
        _digits_trained_then_served(swarm, monkeypatch)
    finally:
        run_script("label-swarm-node.sh", "self", "--remove", "flops.inference", env=env, timeout_s=60)


def _digits_trained_then_served(swarm: SwarmSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    sla = example_sla(swarm.suite, "digits_sklearn", training_rounds=2)
    sla["post_training_steps"] = STEPS
    accepted = swarm.admin.submit(sla)
    project_id = accepted["project_id"]
    training = wait_stage(swarm.admin, project_id, 5, timeout_s=600)
    assert training["stage"] == 5, training.get("cause")
    customer = FlopsClient(swarm.suite.api_url, swarm.admin.issue_token(training["customer_id"]))
    assert_no_internals(customer.project(project_id), swarm.admin.project(project_id))  # no service or task ids

    # While it trains: one Swarm service per learner, constrained to labelled nodes, on the host network.
    services = {s.attrs["Spec"]["Labels"]["org.flops.service"]: s for s in _project_services(swarm, project_id)}
    assert {"aggregator", "learner-0", "learner-1"} <= set(services), sorted(services)
    for name in ("learner-0", "learner-1"):
        spec = services[name].attrs["Spec"]
        constraints = spec["TaskTemplate"]["Placement"]["Constraints"]
        assert "node.labels.flops.learner==true" in constraints
        assert "node.labels.flops.data-tag.digits==true" in constraints
        assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
        networks = [swarm.engine.client.networks.get(n["Target"]).name for n in spec["TaskTemplate"]["Networks"]]
        assert networks == ["host"]
        tasks = services[name].tasks()
        assert {swarm.engine.client.nodes.get(t["NodeID"]).attrs["Description"]["Hostname"] for t in tasks} == {
            swarm.node
        }

    # The passwords are in no service spec and no container's configuration, only in Swarm secrets.
    creds = swarm.suite.credentials()
    passwords = [creds.mqtt_password.get_secret_value(), creds.mlflow_password.get_secret_value()]
    inspected = json.dumps([s.attrs for s in services.values()])
    inspected += json.dumps([c.attrs for c in _project_containers(swarm, project_id)])
    assert not [p for p in passwords if p in inspected]
    secrets = _project_secrets(swarm, project_id)
    assert len(secrets) >= 3  # aggregator and learners (their broker and MLflow credentials)
    assert "Data" not in json.dumps([s.attrs for s in secrets])  # the engine never gives a secret back

    project = wait_final(swarm.admin, project_id, timeout_s=600)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 2
    assert project["final_metrics"]["accuracy"] >= 0.8
    assert [s["stage"] for s in project["stages"]] == [1, 2, 3, 4, 5, 6]  # the builders ran as services too
    services_dir = swarm.suite.home / "services" / project_id
    for name in ("builder", "aggregator", "learner-0", "learner-1", "serving-builder"):
        assert '"backend":"swarm"' in (services_dir / name / "swarm-service.json").read_text(), name
    assert "loaded" in (services_dir / "learner-0" / "output.log").read_text()  # logs from the service API
    _assert_served(swarm, project, passwords, monkeypatch)
    _assert_nothing_left(swarm, project_id)


def _assert_served(
    swarm: SwarmSetup, project: dict[str, Any], passwords: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage 6 on Swarm: the pushed serving image runs as the only service left, on the inference-labelled
    node, answers as the registered version, is found again by a restarted manager, and goes on DELETE."""
    project_id = project["id"]
    model = project["registered_model"]
    assert (
        project["serving"]["artifact"]
        == f"{swarm.engine.registry}/admin/trained_model:digits_sklearn-{model['version']}"
    )
    deadline = time.monotonic() + 60  # the observer goes a few seconds after the end
    while len(left := _project_services(swarm, project_id)) > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [s.attrs["Spec"]["Labels"]["org.flops.service"] for s in left] == ["inference"], [s.name for s in left]
    spec = left[0].attrs["Spec"]
    assert "node.labels.flops.inference==true" in spec["TaskTemplate"]["Placement"]["Constraints"]
    networks = [swarm.engine.client.networks.get(n["Target"]).name for n in spec["TaskTemplate"]["Networks"]]
    assert networks == ["host"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"].startswith(project["serving"]["artifact"] + "@sha256:")
    assert not [p for p in passwords if p in json.dumps(left[0].attrs)]
    inference = project["inference"]
    assert inference["state"] == "running" and inference["node"] == swarm.node, inference
    stage6 = next(s for s in project["stages"] if s["stage"] == 6)
    seconds = stage6["ended_at"] - stage6["started_at"]
    print(f"stage 6 on swarm: {seconds:.1f} s, serving build steps {project['serving_step_seconds']}")

    creds = swarm.suite.credentials()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", creds.mlflow_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds.mlflow_password.get_secret_value())
    assert_answers_as_registered(swarm.suite, inference["url"], model["uri"], node=swarm.node)
    body = as_csv(sample_rows(swarm.suite, node=swarm.node))
    direct = httpx.post(
        f"{inference['url']}/invocations", content=body, headers={"Content-Type": "text/csv"}, timeout=60
    )
    assert swarm.admin.predict(project_id, body, "text/csv") == direct.json()  # the manager forwards it

    # A restarted manager finds the inference service again and still forwards to it.
    swarm.suite.stop_service("manager")
    swarm.suite.start_service("manager")
    assert swarm.admin.project(project_id)["inference"]["state"] == "running"
    rows = as_csv(sample_rows(swarm.suite, 5, node=swarm.node))
    assert len(swarm.admin.predict(project_id, rows, "text/csv")["predictions"]) == 5
    swarm.admin.stop_inference(project_id)
    assert swarm.admin.project(project_id)["inference"]["state"] == "stopped"


@pytest.mark.timeout(300)
def test_removed_data_label_fails_placement_at_stage_4(swarm: SwarmSetup) -> None:
    env = {**swarm.engine.env, "DOCKER_HOST": swarm.engine.docker_host}
    run_script("label-swarm-node.sh", "self", "--remove", data_tag_label("digits"), env=env, timeout_s=60)
    try:
        accepted = swarm.admin.submit(example_sla(swarm.suite, "digits_sklearn", training_rounds=1))
        project = wait_final(swarm.admin, accepted["project_id"], timeout_s=240)
    finally:
        run_script("label-swarm-node.sh", "self", "--add", data_tag_label("digits"), env=env, timeout_s=60)
    assert project["status"] == "failed"
    assert project["stage"] == 4
    assert "cannot place learners" in project["cause"] and "digits" in project["cause"], project["cause"]
    assert "digits" in run_cli(swarm.suite, "status", project["id"])
    assert "digits" in swarm.admin.timeline(project["id"])
    _assert_nothing_left(swarm, project["id"])


def test_swarm_leaves_no_bridge_and_no_private_address(swarm: SwarmSetup) -> None:
    engine = swarm.engine
    _, private = interfaces()
    assert sorted(set(private) - set(engine.private_before)) == [], "private-range address while in the swarm"
    assert "ingress" not in {n.name for n in engine.client.networks.list()}
    env = {**engine.env, "DOCKER_HOST": engine.docker_host}
    run_script("stop-swarm.sh", env=env, timeout_s=120)  # the fixture's teardown runs it again: idempotent
    names, private = interfaces()
    assert sorted(set(private) - set(engine.private_before)) == []
    assert names - engine.interfaces_before == set(), "an interface outlived the swarm"
    assert {n.name for n in engine.client.networks.list()} <= {"host", "none"}
