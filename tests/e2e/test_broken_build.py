"""Broken ML repos fail their project at the right stage with a cause a user understands, visible in
the project, its timeline and ``flops status``, and leave no process behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from flops_suite.example_repos import publish_repo
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final
from tests.helpers.suites import run_cli

BROKEN = Path(__file__).resolve().parents[1] / "broken_repos"

CASES = [
    ("missing_model_manager", 3, "model_manager.py is missing at the repo root"),
    ("no_model_manager_class", 3, "model_manager.py has no class ModelManager"),
    ("missing_method", 3, "lacks method(s): evaluate_model"),
    ("syntax_error", 3, "model_manager.py line 31: SyntaxError"),
    ("import_error", 3, "No module named 'flops_missing_helper_package'"),
    ("unsatisfiable_dependency", 3, "requirements are unsatisfiable"),
    ("fit_raises", 5, "fit_model failed on purpose"),
]


@pytest.mark.parametrize(("repo", "stage", "cause"), CASES, ids=[c[0] for c in CASES])
def test_broken_repo_fails_at_its_stage_with_the_cause(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any, tmp_path: Path, repo: str, stage: int, cause: str
) -> None:
    publish_repo(BROKEN / repo, tmp_path / repo)
    sla = example_sla(suite, "digits_sklearn", training_rounds=2, round_timeout_s=60)
    sla["ml_repo_url"] = f"file://{tmp_path / repo}"
    project = wait_final(admin, admin.submit(sla)["project_id"], timeout_s=300)
    assert (project["status"], project["failed_stage"]) == ("failed", stage), project.get("cause")
    assert cause in project["cause"]
    assert f"project failed at stage {stage}" in admin.timeline(project["id"])
    assert cause in admin.timeline(project["id"])
    assert cause in run_cli(suite, "status", project["id"])
    assert_nothing_left(suite, project)


def test_repo_that_does_not_exist_fails_at_stage_2(suite: EmbeddedSuite, admin: FlopsClient, tmp_path: Path) -> None:
    sla = example_sla(suite, "digits_sklearn")
    sla["ml_repo_url"] = f"file://{tmp_path / 'nowhere'}"
    project = wait_final(admin, admin.submit(sla)["project_id"], timeout_s=60)
    assert (project["status"], project["failed_stage"]) == ("failed", 2)
    assert "cannot be read" in project["cause"] and "nowhere" in project["cause"]
    assert_nothing_left(suite, project)
