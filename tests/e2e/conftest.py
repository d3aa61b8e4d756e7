"""Helpers for end-to-end runs through the real embedded suite."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flops_manager.cli.client import FlopsClient
from flops_manager.orchestrator.local import LocalOrchestrator, service_processes
from flops_manager.projects.context import OBSERVER_GRACE_S
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.containers import DockerEngine, start_engine
from tests.helpers.suites import isolated_home, make_test_suite

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slas"
FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="session")
def digits_data(admin: FlopsClient) -> dict[str, Any]:
    """Digits partitioned over learner-0 and learner-1 under tag ``digits`` (learner-2 holds none)."""
    return admin.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])


def example_sla(suite: EmbeddedSuite, name: str, **training: Any) -> dict[str, Any]:
    """An example SLA pointed at this suite's git server, with training overrides."""
    sla: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    sla["ml_repo_url"] = suite.git_url(name)
    sla["training_configuration"].update(training)
    return sla


def wait_final(client: FlopsClient, project_id: str, timeout_s: float = 400) -> dict[str, Any]:
    """Poll until the project is final."""
    deadline = time.monotonic() + timeout_s
    project = client.project(project_id)
    while project["status"] not in FINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        project = client.project(project_id)
    assert project["status"] in FINAL, f"project {project_id} still {project['status']} at stage {project['stage']}"
    return project


def wait_stage(client: FlopsClient, project_id: str, stage: int, timeout_s: float = 300) -> dict[str, Any]:
    """Poll until the project reached ``stage`` (or ended)."""
    deadline = time.monotonic() + timeout_s
    project = client.project(project_id)
    while project["stage"] < stage and project["status"] not in FINAL and time.monotonic() < deadline:
        time.sleep(0.3)
        project = client.project(project_id)
    return project


def assert_nothing_left(suite: EmbeddedSuite, project: dict[str, Any]) -> None:
    """No service of the project is deployed and no process of any of its services runs."""
    orch = LocalOrchestrator(suite.home / "nodes", suite.home / "services", 0, 0)
    deadline = time.monotonic() + OBSERVER_GRACE_S + 5  # the observer goes once it printed the end
    while orch.list_services(project["id"]) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert orch.list_services(project["id"]) == []
    for service_json in (suite.home / "services" / project["id"]).glob("*/service.json"):
        marker = json.loads(service_json.read_text())["info"]["marker"]
        assert service_processes(marker) == [], f"{service_json.parent.name} left processes behind"


@pytest.fixture(scope="session")
def auth_suite() -> Iterator[EmbeddedSuite]:
    """An embedded suite whose broker and MLflow server need credentials and whose services run as
    unprivileged users of their own (three learner nodes)."""
    with isolated_home("flops-auth-home-") as home:
        # The hostile test's learner waits in stage 4 until the normal project trains beside it.
        env = {"FLOPS_LOCAL_LEARNER_NODES": "3", "FLOPS_TIMEOUT_ACTOR_DEPLOYMENT_S": "600"}
        suite = make_test_suite(home, env, auth=True, isolated=True)
        with suite.running():
            yield suite


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A private Docker engine, registry and images, shared by the container tests of the session."""
    yield from start_engine(tmp_path_factory.mktemp("dk").resolve())


def _leaves(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, scalar) of a JSON document, depth first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(inner, dict | list):
                yield from _leaves(inner)
            else:
                yield str(key), inner
    elif isinstance(value, list):
        for inner in value:
            yield from _leaves(inner)


def assert_no_internals(customer_view: dict[str, Any], admin_view: dict[str, Any]) -> None:
    """A customer's project JSON holds no PID, filesystem path or container id.

    The admin's ``debug`` block lists what the backend keeps (PIDs, working dirs, container and
    service ids); none of those values may appear anywhere in the customer's JSON, and no string in it
    may be an absolute path.
    """
    assert "debug" not in customer_view and "manifest" not in customer_view
    public_names = {"name", "role", "node", "backend"}
    internals = [
        v
        for k, v in _leaves(admin_view["debug"])
        if k not in public_names and isinstance(v, int | str) and not isinstance(v, bool) and len(str(v)) >= 3
    ]
    assert internals, "the admin view shows no backend internals to compare with"
    customer_leaves = list(_leaves(customer_view))
    text = json.dumps(customer_view)
    # A number the project shows anyway (a learner's sample count) is no leak when a PID happens to equal it.
    public = {k: v for k, v in admin_view.items() if k not in {"debug", "manifest"}}
    public_numbers = {v for _, v in _leaves(public) if isinstance(v, int)}
    for value in internals:
        if isinstance(value, int):  # a PID: compared whole, not as a digit run inside a timestamp
            if value not in public_numbers:
                assert all(v != value for _, v in customer_leaves), f"PID-like {value} in a customer's view"
        else:
            assert value not in text, f"backend internal {value!r} in a customer's view"
    for key, value in customer_leaves:
        assert key not in {"pid", "pids", "workdir", "container", "container_id", "marker", "info"}, key
        if isinstance(value, str):
            assert not value.startswith("/"), f"{key}: {value} looks like a filesystem path"
