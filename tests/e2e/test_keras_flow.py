"""digits_keras through the real suite: Keras 3 on TensorFlow, trained, logged in MLflow's keras flavor."""

from __future__ import annotations

from typing import Any

import mlflow
import pytest

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final
from tests.e2e.learning import assert_learned

pytestmark = pytest.mark.e2e


def test_keras_project_end_to_end(suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any) -> None:
    accepted = admin.submit(example_sla(suite, "digits_keras"))
    project = wait_final(admin, accepted["project_id"], timeout_s=900)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 3
    assert_learned(admin, suite.mlflow_url, project, "digits", "mlp")

    # The final model is in MLflow in the keras flavor, with a TensorSpec signature.
    client = mlflow.MlflowClient(suite.mlflow_url)
    models = client.search_logged_models(experiment_ids=[project["mlflow"]["experiment_id"]])
    logged = [m for m in models if m.source_run_id == project["mlflow"]["run_id"] and m.name == "model"]
    assert len(logged) == 1
    mlflow.set_tracking_uri(suite.mlflow_url)
    info = mlflow.models.get_model_info(logged[0].model_uri)
    assert {"keras", "python_function"} <= set(info.flavors)
    assert info.signature is not None
    assert [spec.shape for spec in info.signature.inputs.inputs] == [(-1, 64)]
    assert_nothing_left(suite, project)
