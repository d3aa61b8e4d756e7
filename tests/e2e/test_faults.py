"""Faults against the real suite: the manager or the broker restarting mid-project loses nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import Any

import pytest

from flops_manager.cli.client import FlopsClient
from flops_manager.orchestrator.local import service_processes
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final, wait_stage
from tests.e2e.learning import assert_learned

pytestmark = pytest.mark.e2e


def _kill_manager(suite: EmbeddedSuite) -> None:
    pid = suite.status()["manager"]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _training(suite: EmbeddedSuite, admin: FlopsClient) -> dict[str, Any]:
    """A four-round digits project once it reached stage 5."""
    accepted = admin.submit(example_sla(suite, "digits_sklearn", training_rounds=4))
    project = wait_stage(admin, accepted["project_id"], 5)
    assert project["stage"] == 5, project.get("cause")
    return project


def test_manager_killed_mid_training_resumes_and_loses_no_event(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    project = _training(suite, admin)
    _kill_manager(suite)  # events of the next rounds are queued in the manager's durable MQTT session
    suite.start_manager()
    project = wait_final(admin, project["id"])
    assert project["status"] == "succeeded", project.get("cause")
    rounds = sorted(e["data"]["round"] for e in admin.events(project["id"]) if e["kind"] == "round_completed")
    assert rounds == [1, 2, 3, 4]
    assert project["rounds_completed"] == 4
    assert_learned(admin, suite.mlflow_url, project, "digits", "logistic")
    assert_nothing_left(suite, project)


def test_broker_restarted_mid_training_loses_no_transition(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    project = _training(suite, admin)
    suite.stop_service("broker")
    suite.start_service("broker")
    project = wait_final(admin, project["id"])
    assert project["status"] == "succeeded", project.get("cause")
    assert [s["stage"] for s in project["stages"]][-1] == 5
    rounds = sorted(e["data"]["round"] for e in admin.events(project["id"]) if e["kind"] == "round_completed")
    assert rounds == [1, 2, 3, 4]
    assert_nothing_left(suite, project)


@pytest.fixture(scope="module")
def digits_on_three(admin: FlopsClient) -> dict[str, Any]:
    """Digits over all three learner nodes under tag ``digits3``."""
    return admin.mock_data("digits3", "digits", nodes=["learner-0", "learner-1", "learner-2"])


def _kill_learner(suite: EmbeddedSuite, project_id: str, name: str) -> None:
    """SIGKILL every process of one learner, as if its node died."""
    service = json.loads((suite.home / "services" / project_id / name / "service.json").read_text())
    for pid in service_processes(service["info"]["marker"]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_round(client: FlopsClient, project_id: str, round_no: int, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    project = client.project(project_id)
    while project["rounds_completed"] < round_no and project["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        project = client.project(project_id)
    return project


def _kill_during_training(
    suite: EmbeddedSuite, admin: FlopsClient, min_clients: int, rounds: int, victim: str
) -> tuple[str, float]:
    """Run digits on three learners needing ``min_clients``; after round 1 kill ``victim``: project id, when."""
    sla = example_sla(
        suite,
        "digits_sklearn",
        data_tags=["digits3"],
        learners=3,
        min_available_clients=min_clients,
        min_fit_clients=min_clients,
        min_evaluate_clients=min_clients,
        training_rounds=rounds,
        round_timeout_s=30,
    )
    project = _wait_round(admin, admin.submit(sla)["project_id"], 1)
    assert project["status"] == "running", project.get("cause")
    killed_at = time.monotonic()
    _kill_learner(suite, project["id"], victim)
    return project["id"], killed_at


def test_learner_killed_with_k_of_n_participation_completes(
    suite: EmbeddedSuite, admin: FlopsClient, digits_on_three: Any
) -> None:
    project_id, _ = _kill_during_training(suite, admin, min_clients=2, rounds=3, victim="learner-2")
    project = wait_final(admin, project_id)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 3
    assert "learner-2 on learner-2 exited" in admin.timeline(project["id"])
    assert_nothing_left(suite, project)


def test_too_few_learners_left_fails_with_that_cause(
    suite: EmbeddedSuite, admin: FlopsClient, digits_on_three: Any
) -> None:
    project_id, killed_at = _kill_during_training(suite, admin, min_clients=3, rounds=5, victim="learner-1")
    project = wait_final(admin, project_id, timeout_s=120)
    assert time.monotonic() - killed_at < 30 + 15  # within the round timeout (plus the exit grace)
    assert (project["status"], project["failed_stage"]) == ("failed", 5)
    assert "learner-1" in project["cause"] and "3 needed" in project["cause"]
    assert_nothing_left(suite, project)
