"""A hostile ML repo runs next to a normal project and reaches nothing of it (local backend, auth suite).

The repo and the checks: ``tests/e2e/hostile.py``. Here its services run as unprivileged users of their own.
"""

from __future__ import annotations

import pytest

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.hostile import run_hostile_beside_victim

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_hostile_repo_reaches_nothing_of_a_project_running_beside_it(auth_suite: EmbeddedSuite) -> None:
    admin = FlopsClient(auth_suite.api_url, auth_suite.admin_token())
    outcomes = run_hostile_beside_victim(auth_suite, admin, "learner-2")
    # What stopped each attempt on the local backend: file modes and service users, the broker's ACLs, MLflow.
    assert "Permission denied" in outcomes["read_admin_token"]
    assert (
        "Permission denied" in outcomes["read_victim_workdir"] or "PermissionError" in outcomes["read_victim_workdir"]
    )
