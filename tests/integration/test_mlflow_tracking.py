"""The tracking boundary against the real MLflow server the suite starts."""

from __future__ import annotations

import httpx

from flops_manager.tracking.mlflow_server import MlflowServerTracking
from flops_suite.embedded import EmbeddedSuite


def test_mlflow_server_answers_and_links_runs(suite: EmbeddedSuite) -> None:
    tracking = MlflowServerTracking(suite.mlflow_url)
    assert tracking.healthy()
    created = httpx.post(f"{suite.mlflow_url}/api/2.0/mlflow/experiments/create", json={"name": "tracking-test"})
    experiment_id = created.json()["experiment_id"]
    run = httpx.post(f"{suite.mlflow_url}/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id}).json()
    run_id = run["run"]["info"]["run_id"]
    assert tracking.run_url(experiment_id, run_id) == f"{suite.mlflow_url}/#/experiments/{experiment_id}/runs/{run_id}"
    assert not MlflowServerTracking("http://127.0.0.1:9").healthy()
