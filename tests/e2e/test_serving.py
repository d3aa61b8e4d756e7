"""Stage 6 through the real embedded suite: the registered version, its serving runtime, the inference
service answering MLflow's scoring protocol, the predict route, and a serving build that fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from flops_manager.cli.client import ApiError, FlopsClient
from flops_manager.orchestrator.local import service_processes
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final, wait_stage
from tests.e2e.serving import STEPS, as_array, as_csv, as_split_json, sample_rows
from tests.helpers.git_repos import make_git_repo
from tests.helpers.wheels import make_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]  # actor build, training and serving build each

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ml_repos"
_LOAD_AND_PREDICT = """
import json, sys
import mlflow.pyfunc, numpy as np, pandas as pd
rows = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.DataFrame(rows, columns=[f"p{i}" for i in range(rows.shape[1])])
print(json.dumps(np.asarray(model.predict(frame)).tolist()))
"""


def registry_predictions(suite: EmbeddedSuite, runtime: str, uri: str, rows: np.ndarray) -> np.ndarray:
    """What ``mlflow.pyfunc.load_model(uri)`` from the registry predicts: here when this environment has the
    flavor's libraries (sklearn), else in the serving runtime (which has them; this one has no torch)."""
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(suite.mlflow_url)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except ImportError:  # the flavor's library (torch) is not in this environment
        pass
    else:
        frame = pd.DataFrame(rows, columns=[f"p{i}" for i in range(rows.shape[1])])
        return np.asarray(model.predict(frame))
    env = {**os.environ, "MLFLOW_TRACKING_URI": suite.mlflow_url}
    out = subprocess.run(
        [str(Path(runtime) / "bin" / "python"), "-c", _LOAD_AND_PREDICT, uri, json.dumps(rows.tolist())],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))


def served_project(suite: EmbeddedSuite, admin: FlopsClient, example: str, **training: Any) -> dict[str, Any]:
    """Run ``example`` with both post-training steps until it ends; assert it serves."""
    sla = example_sla(suite, example, **training)
    sla["post_training_steps"] = STEPS
    project = wait_final(admin, admin.submit(sla)["project_id"], timeout_s=900)
    assert project["status"] == "succeeded", project.get("cause")
    assert [s["stage"] for s in project["stages"]][-2:] == [5, 6]
    assert all(s["status"] == "done" for s in project["stages"])
    assert project["inference"]["state"] == "running" and project["inference"]["node"]
    assert {"download", "serving_environment", "load_check", "publish"} <= set(project["serving_step_seconds"])
    return project


def check_serving(suite: EmbeddedSuite, admin: FlopsClient, project: dict[str, Any], flavor: str) -> None:
    """Registry tags, /invocations in CSV and JSON against the registry's model, the predict route."""
    model = project["registered_model"]
    assert (
        model["name"] == f"flops-admin-digits_{flavor}"
        and model["uri"] == f"models:/{model['name']}/{model['version']}"
    )
    version = MlflowClient(suite.mlflow_url).get_model_version(model["name"], model["version"])
    assert version.tags["flops.project_id"] == project["id"]
    assert version.tags["flops.commit"] == project["commit"]
    assert version.tags["flops.flavor"] == flavor and version.tags["flops.data_tags"] == "digits"
    assert float(version.tags["flops.metric.accuracy"]) == pytest.approx(project["final_metrics"]["accuracy"])
    assert version.run_id == project["mlflow"]["run_id"]

    rows = sample_rows(suite)
    runtime = admin.project(project["id"])["serving"]["artifact"]  # the admin view has the runtime's place
    expected = registry_predictions(suite, runtime, model["uri"], rows)
    url = project["inference"]["url"]
    assert url.startswith("http://127.0.0.1:")
    for body, content_type in ((as_csv(rows), "text/csv"), (as_split_json(rows), "application/json")):
        answer = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": content_type}, timeout=60)
        assert answer.status_code == 200, answer.text
        served = as_array(answer.json()["predictions"])
        assert served.shape == expected.shape and np.array_equal(served.astype(expected.dtype), expected)
        through_manager = admin.predict(project["id"], body, content_type)
        assert np.array_equal(as_array(through_manager["predictions"]).astype(expected.dtype), expected)

    other = FlopsClient(suite.api_url, admin.issue_token(f"other-{flavor}"))
    with pytest.raises(ApiError) as refused:
        other.predict(project["id"], as_csv(rows), "text/csv")
    assert refused.value.status_code == 404


def stop_and_check_gone(suite: EmbeddedSuite, admin: FlopsClient, project: dict[str, Any]) -> None:
    """``DELETE .../inference`` stops the service and its processes."""
    admin.stop_inference(project["id"])
    after = admin.project(project["id"])
    assert after["inference"]["state"] == "stopped" and after["status"] == "succeeded"
    assert after["final_metrics"] == project["final_metrics"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{project['inference']['url']}/ping", timeout=2)
    assert_nothing_left(suite, after)


def test_sklearn_model_is_registered_built_and_served(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    project = served_project(suite, admin, "digits_sklearn", training_rounds=2)
    # Only the inference service outlives training: no actor, builder or observer is left.
    services = suite.home / "services" / project["id"]
    for name in ("aggregator", "learner-0", "learner-1", "serving-builder"):
        marker = json.loads((services / name / "service.json").read_text())["info"]["marker"]
        assert service_processes(marker) == [], f"{name} still runs"
    check_serving(suite, admin, project, "sklearn")
    stop_and_check_gone(suite, admin, project)


def test_pytorch_model_is_registered_built_and_served(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any
) -> None:
    project = served_project(suite, admin, "digits_pytorch", training_rounds=2)
    check_serving(suite, admin, project, "pytorch")
    admin.cancel(project["id"])  # cancelling an ended project stops its inference service
    deadline = time.monotonic() + 30
    while admin.project(project["id"])["inference"]["state"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert admin.project(project["id"])["inference"]["state"] == "stopped"
    assert_nothing_left(suite, project)


def test_failing_serving_build_fails_only_post_training(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: Any, tmp_path: Path
) -> None:
    # The repo needs a package that exists while it trains and is gone when its model is to be served.
    wheel = make_wheel(tmp_path / "wheels", "flops-serving-probe", "1.0", [])
    repo = tmp_path / "src"
    shutil.copytree(EXAMPLES / "digits_sklearn", repo)
    with (repo / "requirements.txt").open("a") as handle:
        handle.write(f"flops-serving-probe @ {wheel.as_uri()}\n")
    make_git_repo(repo, tmp_path / "repo")
    sla = example_sla(suite, "digits_sklearn", training_rounds=1)
    sla["ml_repo_url"] = (tmp_path / "repo").as_uri()
    sla["post_training_steps"] = STEPS
    accepted = admin.submit(sla)
    assert wait_stage(admin, accepted["project_id"], 4)["stage"] == 4
    wheel.unlink()
    project = wait_final(admin, accepted["project_id"], timeout_s=900)
    assert (project["status"], project["failed_stage"]) == ("failed", 6), project.get("cause")
    assert "serving dependencies" in project["cause"] and "flops_serving_probe" in project["cause"]
    assert [s["status"] for s in project["stages"]][-2:] == ["done", "failed"]
    assert project["final_metrics"]["accuracy"] > 0
    model = project["registered_model"]
    assert (
        MlflowClient(suite.mlflow_url).get_model_version(model["name"], model["version"]).tags["flops.project_id"]
        == project["id"]
    )
    assert project["inference"] is None
    assert "serving dependencies" in admin.timeline(project["id"])
    assert_nothing_left(suite, project)
