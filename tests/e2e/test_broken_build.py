"""A broken ML repo fails its project at the build stage with the cause, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from flops_manager.cli.client import FlopsClient
from flops_manager.suite.embedded import EmbeddedSuite
from flops_manager.suite.example_repos import publish_repo
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final

BROKEN = Path(__file__).resolve().parents[1] / "broken_repos"


def test_missing_method_fails_at_stage_3_with_the_cause(
    suite: EmbeddedSuite, admin: FlopsClient, tmp_path: Path
) -> None:
    publish_repo(BROKEN / "missing_method", tmp_path / "repo")
    sla = example_sla(suite, "digits_sklearn")
    sla["ml_repo_url"] = f"file://{tmp_path / 'repo'}"
    project = wait_final(admin, admin.submit(sla)["project_id"], timeout_s=200)
    assert (project["status"], project["failed_stage"]) == ("failed", 3)
    assert "evaluate_model" in project["cause"]
    events = admin.events(project["id"])
    assert any(e["kind"] == "build_failed" and "evaluate_model" in e["message"] for e in events)
    assert "project failed at stage 3" in admin.timeline(project["id"])
    assert_nothing_left(suite, project)
