"""Faults against the real suite: the manager or the broker restarting mid-project loses nothing."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from flops_manager.cli.client import FlopsClient
from flops_manager.suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final, wait_stage

pytestmark = pytest.mark.e2e


def _kill_manager(suite: EmbeddedSuite) -> None:
    pid = suite.status()["manager"]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_manager_killed_mid_training_resumes_and_loses_no_event(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    accepted = admin.submit(example_sla(suite, "digits_sklearn", training_rounds=4))
    project = wait_stage(admin, accepted["project_id"], 5)
    assert project["stage"] == 5, project.get("cause")
    _kill_manager(suite)  # events of the next rounds are queued in the manager's durable MQTT session
    suite.start_manager()
    project = wait_final(admin, project["id"])
    assert project["status"] == "succeeded", project.get("cause")
    rounds = sorted(e["data"]["round"] for e in admin.events(project["id"]) if e["kind"] == "round_completed")
    assert rounds == [1, 2, 3, 4]
    assert project["rounds_completed"] == 4
    assert_nothing_left(suite, project)


def test_broker_restarted_mid_training_loses_no_transition(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    accepted = admin.submit(example_sla(suite, "digits_sklearn", training_rounds=4))
    project = wait_stage(admin, accepted["project_id"], 5)
    assert project["stage"] == 5, project.get("cause")
    suite.stop_service("broker")
    suite.start_service("broker")
    project = wait_final(admin, project["id"])
    assert project["status"] == "succeeded", project.get("cause")
    assert [s["stage"] for s in project["stages"]][-1] == 5
    rounds = sorted(e["data"]["round"] for e in admin.events(project["id"]) if e["kind"] == "round_completed")
    assert rounds == [1, 2, 3, 4]
    assert_nothing_left(suite, project)
