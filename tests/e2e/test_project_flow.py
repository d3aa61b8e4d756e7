"""The whole FLOps path through the real embedded suite: SLA in, trained and tracked model out."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from flops_manager.cli.client import FlopsClient
from flops_manager.registry.local import LocalRegistry
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final, wait_stage
from tests.e2e.learning import assert_learned

pytestmark = pytest.mark.e2e


def test_sklearn_project_end_to_end(suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any) -> None:
    registry = LocalRegistry(suite.home / "registry")
    for image in registry.list():  # other tests may have built this commit: make this run build it
        registry.delete(image.digest)
    accepted = admin.submit(example_sla(suite, "digits_sklearn"))
    project = wait_final(admin, accepted["project_id"])
    assert project["status"] == "succeeded", project.get("cause")
    assert project["cache_hit"] is False
    assert [s["stage"] for s in project["stages"]] == [1, 2, 3, 4, 5]
    assert all(s["status"] == "done" and s["ended_at"] >= s["started_at"] for s in project["stages"])
    assert project["final_metrics"]["accuracy"] >= 0.85
    assert project["rounds_completed"] == 3
    assert set(project["build_step_seconds"]) >= {"clone", "environments", "publish"}

    # MLflow: per-round metrics and the logged model.
    mlflow = MlflowClient(suite.mlflow_url)
    run_id = project["mlflow"]["run_id"]
    history = mlflow.get_metric_history(run_id, "eval_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert history[-1].value == pytest.approx(project["final_metrics"]["accuracy"])
    assert len(mlflow.get_metric_history(run_id, "round_time_s")) == 3
    assert_learned(admin, suite.mlflow_url, project, "digits", "logistic")
    models = mlflow.search_logged_models(experiment_ids=[project["mlflow"]["experiment_id"]])
    assert any(m.source_run_id == run_id and m.name == "model" for m in models)

    # The observer's timeline and the stored events tell the same story, every stage included.
    timeline = admin.timeline(project["id"])
    for stage in range(1, 6):
        assert f"stage {stage}" in timeline
    assert "round 3 done" in timeline and "project succeeded" in timeline
    observer_log = (suite.home / "services" / project["id"] / "observer" / "output.log").read_text()
    for needle in (
        "stage 1 project start",
        "stage 3 image build",
        "stage 5 training",
        "round 3 done",
        "project succeeded",
    ):
        assert needle in observer_log
    assert_nothing_left(suite, project)


def test_second_run_reuses_the_cached_images(suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any) -> None:
    accepted = admin.submit(example_sla(suite, "digits_sklearn", training_rounds=1))
    project = wait_final(admin, accepted["project_id"])
    assert project["status"] == "succeeded", project.get("cause")
    assert project["cache_hit"] is True
    assert [s["stage"] for s in project["stages"]] == [1, 2, 4, 5]  # no build
    assert not (suite.home / "services" / project["id"] / "builder").exists()
    assert_nothing_left(suite, project)


def test_missing_data_tag_fails_placement_at_stage_4(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    accepted = admin.submit(example_sla(suite, "digits_sklearn", data_tags=["cifar"]))
    project = wait_final(admin, accepted["project_id"])
    assert project["status"] == "failed"
    assert project["failed_stage"] == 4
    assert "cifar" in project["cause"]
    assert_nothing_left(suite, project)


def test_unknown_ref_fails_at_stage_2(suite: EmbeddedSuite, admin: FlopsClient) -> None:
    sla = example_sla(suite, "digits_sklearn")
    sla["ml_repo_ref"] = "no-such-branch"
    project = wait_final(admin, admin.submit(sla)["project_id"])
    assert (project["status"], project["failed_stage"]) == ("failed", 2)
    assert "ref 'no-such-branch' does not exist" in project["cause"]


def test_cancel_mid_training_undeploys_everything(suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any) -> None:
    accepted = admin.submit(example_sla(suite, "digits_sklearn", training_rounds=50))
    project = wait_stage(admin, accepted["project_id"], 5)
    assert project["stage"] == 5, project.get("cause")
    admin.cancel(project["id"])
    project = wait_final(admin, project["id"], timeout_s=60)
    assert project["status"] == "cancelled"
    assert project["stages"][-1]["status"] == "cancelled"
    assert_nothing_left(suite, project)
    assert "project cancelled" in admin.timeline(project["id"])


def test_pytorch_project_end_to_end(suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any) -> None:
    accepted = admin.submit(example_sla(suite, "digits_pytorch", training_rounds=2))
    project = wait_final(admin, accepted["project_id"], timeout_s=600)
    assert project["status"] == "succeeded", project.get("cause")
    assert_learned(admin, suite.mlflow_url, project, "digits", "mlp")
    mlflow = MlflowClient(suite.mlflow_url)
    models = mlflow.search_logged_models(experiment_ids=[project["mlflow"]["experiment_id"]])
    assert any(m.source_run_id == project["mlflow"]["run_id"] for m in models)
    assert_nothing_left(suite, project)
