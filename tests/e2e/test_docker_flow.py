"""digits_sklearn through real containers: builder container -> OCI registry -> aggregator and learner containers.

The engine, registry and images come from the session's ``docker_engine`` (tests/e2e/containers.py, set up
with the project's own deploy/ scripts); this module runs its own embedded suite whose manager uses
``FLOPS_ORCHESTRATOR=docker`` and ``FLOPS_REGISTRY=oci``. Select it with ``pytest -m docker``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.errors import NotFound
from mlflow.tracking import MlflowClient

from flops_common.image_key import ImageKey
from flops_common.oci_images import LABEL_COMMIT, LABEL_KEY, LABEL_PROJECT
from flops_manager.cli.client import FlopsClient
from flops_manager.orchestrator.docker import DockerOrchestrator
from flops_manager.orchestrator.docker_base import LABEL_PROJECT as CONTAINER_PROJECT_LABEL
from flops_manager.orchestrator.docker_base import instance_id
from flops_manager.registry.oci import OciRegistry
from flops_suite.embedded import EmbeddedSuite
from flops_suite.example_repos import publish_repo
from tests.e2e.conftest import assert_no_internals, example_sla, wait_final, wait_stage
from tests.e2e.containers import DockerEngine, interfaces, labelled_containers, suite_on_engine
from tests.e2e.hostile import run_hostile_beside_victim
from tests.e2e.learning import assert_learned
from tests.e2e.serving import STEPS, as_csv, assert_answers_as_registered, sample_rows

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

BROKEN = Path(__file__).resolve().parents[1] / "broken_repos"
SERVING_IMAGE_MAX_BYTES = 550 * 10**6  # measured 429 MB: base 98 MB + mlflow-skinny, pandas, scikit-learn, skops


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
def containers(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerSetup]:
    """A suite whose manager runs every service as a container on the session's engine."""
    engine = docker_engine
    # Authenticated broker and MLflow: their passwords reach containers in a mounted file only.
    # The hostile test's learner waits in stage 4 until the normal project trains beside it.
    home = tmp_path_factory.mktemp("flops-docker-home")
    suite = suite_on_engine(engine, home, "docker", auth=True, FLOPS_TIMEOUT_ACTOR_DEPLOYMENT_S="600")
    try:
        suite.up()
        admin = FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)
        admin.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])
        yield DockerSetup(
            suite,
            admin,
            engine.docker_host,
            engine.registry,
            engine.client,
            engine.interfaces_before,
            engine.private_before,
        )
    finally:
        suite.down()
        for leftover in labelled_containers(engine.client, "org.flops.managed=true"):
            with contextlib.suppress(NotFound):
                leftover.remove(force=True)


def _project_containers(setup: DockerSetup, project_id: str) -> list[Any]:
    return labelled_containers(setup.client, f"{CONTAINER_PROJECT_LABEL}={project_id}")


def _assert_no_container_left(setup: DockerSetup, project_id: str) -> None:
    deadline = time.monotonic() + 15  # the observer goes a few seconds after the end
    while _project_containers(setup, project_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [c.name for c in _project_containers(setup, project_id)]
    assert left == [], f"containers of {project_id} remain: {left}"


def _service_record(setup: DockerSetup, project_id: str, service: str) -> dict[str, Any]:
    path = setup.suite.home / "services" / project_id / service / "container.json"
    return dict(json.loads(path.read_text()))


@pytest.mark.timeout(1500)  # with the session's engine and images, the actor build and the serving build
def test_sklearn_project_through_containers_then_served(
    containers: DockerSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = containers
    sla = example_sla(setup.suite, "digits_sklearn")
    sla["post_training_steps"] = STEPS
    accepted = setup.admin.submit(sla)
    project = wait_final(setup.admin, accepted["project_id"], timeout_s=1200)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["cache_hit"] is False
    assert [s["stage"] for s in project["stages"]] == [1, 2, 3, 4, 5, 6]
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

    # MLflow got every round from the aggregator container (the suite's MLflow requires credentials).
    creds = setup.suite.credentials()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", creds.mlflow_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds.mlflow_password.get_secret_value())
    mlflow = MlflowClient(setup.suite.mlflow_url)
    history = mlflow.get_metric_history(project["mlflow"]["run_id"], "eval_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert_learned(setup.admin, setup.suite.mlflow_url, project, "digits", "logistic")
    assert "project succeeded" in setup.admin.timeline(project["id"])

    # Stage 6: only the inference container outlives training, and it holds no credential.
    deadline = time.monotonic() + 15  # the observer goes a few seconds after the end
    while len(left := _project_containers(setup, project["id"])) > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [c.labels["org.flops.service"] for c in left] == ["inference"], [c.name for c in left]
    for secret in (creds.mqtt_password, creds.mlflow_password):
        assert secret.get_secret_value() not in json.dumps(left[0].attrs)
    assert left[0].attrs["HostConfig"]["NetworkMode"] == "host"
    check_serving_image(setup, setup.admin.project(project["id"]))
    # A restarted manager finds the inference container again and still forwards to it.
    setup.suite.stop_service("manager")
    setup.suite.start_service("manager")
    assert setup.admin.project(project["id"])["inference"]["state"] == "running"
    rows = sample_rows(setup.suite, 5)
    assert len(setup.admin.predict(project["id"], as_csv(rows), "text/csv")["predictions"]) == 5
    setup.admin.stop_inference(project["id"])
    assert setup.admin.project(project["id"])["inference"]["state"] == "stopped"
    _assert_no_container_left(setup, project["id"])


@pytest.mark.timeout(300)
def test_second_run_hits_the_registry_cache(containers: DockerSetup) -> None:
    setup = containers
    accepted = setup.admin.submit(example_sla(setup.suite, "digits_sklearn", training_rounds=1))
    # While it trains, the orchestrator finds its containers again by their labels.
    running = wait_stage(setup.admin, accepted["project_id"], 5, timeout_s=180)
    assert running["stage"] == 5, running.get("cause")
    customer = FlopsClient(setup.suite.api_url, setup.admin.issue_token(running["customer_id"]))
    assert_no_internals(customer.project(running["id"]), setup.admin.project(running["id"]))  # no container ids
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
    creds = setup.suite.credentials()
    inspected = json.dumps([c.attrs for c in _project_containers(setup, accepted["project_id"])])
    for secret in (creds.mqtt_password, creds.mlflow_password):
        assert secret.get_secret_value() not in inspected  # not in any container's configuration
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


def check_serving_image(setup: DockerSetup, project: dict[str, Any]) -> None:
    """The serving image (slim, only serving packages) and its container answer as the registered model."""
    model = project["registered_model"]
    image = project["serving"]["artifact"]
    assert image == f"{setup.registry}/admin/trained_model:digits_sklearn-{model['version']}"
    assert {"download", "dependencies", "serving_environment", "load_check", "publish"} == set(
        project["serving_step_seconds"]
    )
    size = setup.client.images.get(image).attrs["Size"]
    print(f"serving image {image}: {size / 1e6:.0f} MB, steps {project['serving_step_seconds']}")
    assert size < SERVING_IMAGE_MAX_BYTES, f"{image} is {size / 1e6:.0f} MB"
    probe = (
        "import importlib.metadata as m, importlib.util as u, sys; "
        "names = {d.metadata['Name'] for d in m.distributions()}; "
        "sys.exit(0 if 'mlflow-skinny' in names and not names & {'mlflow', 'flwr', 'torch'} "
        "and u.find_spec('fl_actors') is None else 1)"
    )
    run = setup.client.containers.run(image, ["python", "-c", probe], network_mode="host", detach=True)
    code = run.wait(timeout=60)["StatusCode"]
    run.remove(force=True)
    assert code == 0, f"{image} holds more than the serving packages"

    url = project["inference"]["url"]
    assert_answers_as_registered(setup.suite, url, model["uri"])
    body = as_csv(sample_rows(setup.suite))
    direct = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": "text/csv"}, timeout=60)
    assert setup.admin.predict(project["id"], body, "text/csv") == direct.json()  # the manager forwards it


@pytest.mark.timeout(400)
def test_broken_repo_fails_in_the_builder_container(containers: DockerSetup) -> None:
    setup = containers
    publish_repo(BROKEN / "syntax_error", setup.suite.home / "example-repos" / "broken_syntax")
    sla = example_sla(setup.suite, "digits_sklearn", training_rounds=1)
    sla["ml_repo_url"] = setup.suite.git_url("broken_syntax")
    project = wait_final(setup.admin, setup.admin.submit(sla)["project_id"], timeout_s=300)
    assert (project["status"], project["failed_stage"]) == ("failed", 3)
    assert "model_manager.py line 31: SyntaxError" in project["cause"], project["cause"]
    assert "SyntaxError" in setup.admin.timeline(project["id"])
    _assert_no_container_left(setup, project["id"])


@pytest.mark.timeout(400)
def test_learner_container_killed_fails_the_project_within_the_round_timeout(containers: DockerSetup) -> None:
    setup = containers
    sla = example_sla(setup.suite, "digits_sklearn", training_rounds=8, min_fit_clients=2, round_timeout_s=30)
    project_id = setup.admin.submit(sla)["project_id"]
    deadline = time.monotonic() + 240
    project = setup.admin.project(project_id)
    while project["rounds_completed"] < 1 and project["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        project = setup.admin.project(project_id)
    assert project["status"] == "running" and project["rounds_completed"] >= 1, project.get("cause")
    learner = setup.client.containers.list(
        filters={"label": [f"{CONTAINER_PROJECT_LABEL}={project_id}", "org.flops.service=learner-1"]}
    )
    assert len(learner) == 1
    killed_at = time.monotonic()
    learner[0].kill()
    project = wait_final(setup.admin, project_id, timeout_s=120)
    assert time.monotonic() - killed_at < 30 + 15  # within the round timeout (plus the exit grace)
    assert (project["status"], project["failed_stage"]) == ("failed", 5)
    assert "learner-1" in project["cause"] and "2 needed" in project["cause"], project["cause"]
    _assert_no_container_left(setup, project_id)


@pytest.mark.timeout(1500)  # run alone (not after the first test), the hostile repo's images are built cold
def test_hostile_repo_in_confined_containers_reaches_nothing_of_a_project_beside_it(containers: DockerSetup) -> None:
    setup = containers
    seen: dict[str, dict[str, Any]] = {}

    def inspect_victim(victim_id: str) -> None:
        for container in _project_containers(setup, victim_id):
            seen[container.labels["org.flops.service"]] = container.attrs["HostConfig"]

    socket = setup.docker_host.removeprefix("unix://")
    outcomes = run_hostile_beside_victim(
        setup.suite, setup.admin, "learner-1", while_training=inspect_victim, docker_sockets=[socket]
    )
    # The engine's socket, the host's files and other nodes' data are not in the container at all.
    for attempt in ("docker_socket", "read_admin_token", "read_victim_workdir"):
        assert "FileNotFoundError" in outcomes[attempt], outcomes[attempt]
    assert "learner-0" in seen and "aggregator" in seen, sorted(seen)
    for service, host_config in seen.items():
        assert host_config["CapDrop"] == ["ALL"] and host_config["ReadonlyRootfs"] is True, service
        assert host_config["SecurityOpt"] == ["no-new-privileges:true"] and host_config["PidsLimit"] > 0, service
        mounts = [b.split(":")[1] for b in host_config["Binds"] or []]
        assert not [m for m in mounts if m.endswith(".sock")], f"{service} mounts a socket: {mounts}"


@pytest.mark.timeout(400)
def test_suite_down_removes_the_containers_of_a_running_project(containers: DockerSetup) -> None:
    setup = containers
    accepted = setup.admin.submit(example_sla(setup.suite, "digits_sklearn", training_rounds=20))
    running = wait_stage(setup.admin, accepted["project_id"], 5, timeout_s=240)
    assert running["stage"] == 5 and running["status"] == "running", running.get("cause")
    assert _project_containers(setup, accepted["project_id"])
    setup.suite.down()  # what `make down` does; the module's teardown runs it again (idempotent)
    assert [c.name for c in _project_containers(setup, accepted["project_id"])] == []


def test_no_bridge_and_no_private_address(containers: DockerSetup) -> None:
    names, private = interfaces()
    appeared = sorted(set(private) - set(containers.private_before))
    assert appeared == [], f"private-range addresses appeared: {appeared}"
    new = names - containers.interfaces_before
    assert new == set(), f"new interfaces appeared: {new}"
    networks = {n.name for n in containers.client.networks.list()}
    assert networks <= {"host", "none"}, networks
