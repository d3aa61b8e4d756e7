"""The Oakestra FLOps addon's ML repos run unchanged: addon-style repos (templates, ``load_dataset()``,
conda-only ``conda.yaml``) train end to end on parquet node data put there with ``flops data add``.

The Keras one trains with the ``tensorflow`` flavor (``tests/e2e/test_keras_flow.py`` covers ``keras``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from flops_manager.cli.client import ApiError, FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final
from tests.e2e.learning import Scores, assert_learned, pooled_parquet_digits
from tests.helpers.parquet_digits import write_digits_parquet

HERE = Path(__file__).parent
ADDON_REPOS = HERE.parent / "addon_repos"

pytestmark = pytest.mark.e2e
TAG = "addon-digits"
DIGITS = 1797


def flops(suite: EmbeddedSuite, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """The ``flops`` CLI against the suite, as a user runs it."""
    env = {
        **os.environ,
        "FLOPS_API_URL": suite.api_url,
        "FLOPS_TOKEN": token or suite.admin_token(),
        "FLOPS_HOME": str(suite.home),
    }
    return subprocess.run(
        [sys.executable, "-m", "flops_manager.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def addon_data(suite: EmbeddedSuite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Digits as parquet: learner-0 gets the even rows in two files, learner-1 the odd rows in one."""
    folder = tmp_path_factory.mktemp("parquet")
    rows = np.arange(DIGITS)
    even, odd = rows[rows % 2 == 0], rows[rows % 2 == 1]
    half = len(even) // 2
    write_digits_parquet(folder / "part-1.parquet", even[:half])
    write_digits_parquet(folder / "part-2.parquet", even[half:])
    write_digits_parquet(folder / "odd.parquet", odd)
    for node, files in (("learner-0", ["part-1.parquet", "part-2.parquet"]), ("learner-1", ["odd.parquet"])):
        out = flops(suite, "data", "add", "--node", node, "--tag", TAG, *[str(folder / f) for f in files])
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"under tag {TAG}" in out.stdout
    return {"learner-0": len(even), "learner-1": len(odd)}


def _sla(suite: EmbeddedSuite, example: str, repo: str) -> dict[str, Any]:
    sla = example_sla(suite, example, data_tags=[TAG], training_rounds=3, round_timeout_s=180)
    sla["ml_repo_url"] = suite.git_url(repo)
    return sla


# Runs in the project's aggregator runtime (TensorFlow, mlflow-skinny): what the model loads back as.
LOAD_MODEL = """
import json, sys
import mlflow, numpy as np
native = mlflow.tensorflow.load_model(sys.argv[1])
pyfunc = mlflow.pyfunc.load_model(sys.argv[1])
x = np.zeros((3, 64), dtype=np.float32)
print(json.dumps({
    "native": type(native).__module__ + "." + type(native).__qualname__,
    "keras_model": isinstance(native, __import__("keras").Model),
    "pyfunc_shape": list(np.asarray(pyfunc.predict(x)).shape),
}))
"""


def load_in_runtime(suite: EmbeddedSuite, python: Path, model_uri: str) -> dict[str, Any]:
    """Load ``model_uri`` with ``mlflow.tensorflow`` and ``mlflow.pyfunc`` in the runtime of ``python``."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "SSL_CERT_FILE") if k in os.environ}
    env |= {"MLFLOW_TRACKING_URI": suite.mlflow_url, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [str(python), "-c", LOAD_MODEL, model_uri], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def _assert_trained(suite: EmbeddedSuite, admin: FlopsClient, project: dict[str, Any], min_accuracy: float) -> None:
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 3
    assert project["final_metrics"]["accuracy"] >= min_accuracy
    history = MlflowClient(suite.mlflow_url).get_metric_history(project["mlflow"]["run_id"], "eval_loss")
    losses = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(losses) == 3 and losses[-1] < losses[0], losses  # the loss falls over the rounds
    assert_nothing_left(suite, project)


def test_data_ls_shows_files_and_rows(suite: EmbeddedSuite, admin: FlopsClient, addon_data: dict[str, int]) -> None:
    out = flops(suite, "data", "ls", "--json")
    assert out.returncode == 0, out.stderr
    listing = {(e["node"], e["tag"]): e for e in json.loads(out.stdout)}
    assert listing[("learner-0", TAG)]["rows"] == addon_data["learner-0"]
    assert [f["name"] for f in listing[("learner-0", TAG)]["files"]] == [
        f"{TAG}.part-1.parquet",
        f"{TAG}.part-2.parquet",
    ]
    assert listing[("learner-1", TAG)]["rows"] == addon_data["learner-1"]
    nodes = {n["name"]: n for n in admin.nodes()}
    assert TAG in nodes["learner-0"]["data_tags"] and TAG not in nodes["learner-2"]["data_tags"]
    assert "rows" in flops(suite, "data", "ls").stdout


def test_data_add_refuses_what_it_cannot_use(suite: EmbeddedSuite, admin: FlopsClient, tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    out = flops(suite, "data", "add", "--node", "learner-2", "--tag", "junk", str(junk))
    assert out.returncode == 2 and "HTTP 422" in out.stdout and "not a readable parquet file" in out.stdout
    good = tmp_path / "good.parquet"
    write_digits_parquet(good, slice(0, 10))
    with pytest.raises(ApiError) as info:
        admin.add_data("learner-2", "bad.tag", good)
    assert info.value.status_code == 422
    with pytest.raises(ApiError) as info:
        admin.add_data("builder-0", "t", good)
    assert info.value.status_code == 404
    customer = FlopsClient(suite.api_url, admin.issue_token("addon-customer"))
    with pytest.raises(ApiError) as info:
        customer.add_data("learner-2", "t", good)
    assert info.value.status_code == 403
    with pytest.raises(ApiError) as info:
        customer.data()
    assert info.value.status_code == 403
    assert "junk" not in {t for n in admin.nodes() for t in n["data_tags"]}  # nothing of a refusal landed


def test_addon_sklearn_repo_trains_on_parquet_node_data(
    suite: EmbeddedSuite, admin: FlopsClient, addon_data: dict[str, int]
) -> None:
    project = wait_final(admin, admin.submit(_sla(suite, "digits_sklearn", "addon_digits_sklearn"))["project_id"])
    _assert_trained(suite, admin, project, min_accuracy=0.85)
    assert_learned(admin, suite.mlflow_url, project, TAG, "logistic", pool=pooled_parquet_digits)
    build = [
        e for e in admin.events(project["id"]) if e["kind"] == "build_step" and e["data"].get("step") == "dependencies"
    ]
    requirements = build[-1]["data"]["requirements"] if build else []
    assert "scikit-learn==1.9.1.*" in requirements and any(r.startswith("datasets") for r in requirements), build


@pytest.mark.timeout(1500)  # a cold PyTorch runtime (torch, datasets) and three rounds on 2 shared cores
def test_addon_pytorch_repo_trains_on_parquet_node_data(
    suite: EmbeddedSuite, admin: FlopsClient, addon_data: dict[str, int]
) -> None:
    project = wait_final(
        admin,
        admin.submit(_sla(suite, "digits_pytorch", "addon_digits_pytorch"))["project_id"],
        timeout_s=1200,
    )
    _assert_trained(suite, admin, project, min_accuracy=0.8)
    # Near the repo's own CNN trained centrally for as many epochs (3 rounds x 2 local epochs), in the runtime
    # the learners used, on their rows split as the repo splits them.
    learner = Path(admin.project(project["id"])["manifest"]["learner"])
    data_dirs = [n["data_dir"] for n in admin.nodes() if TAG in n.get("data_tags", [])]
    assert len(data_dirs) == 2, data_dirs
    script, repo = HERE / "central_cnn.py", ADDON_REPOS / "addon_digits_pytorch"
    out = subprocess.run(
        [str(learner / "bin" / "python"), str(script), str(repo), TAG, "6", *data_dirs],
        capture_output=True,
        text=True,
        env={k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    central = json.loads(out.stdout.strip().splitlines()[-1])
    assert_learned(admin, suite.mlflow_url, project, TAG, "cnn", central=Scores(central["loss"], central["accuracy"]))


@pytest.mark.timeout(1200)  # a cold TensorFlow runtime (tensorflow, datasets) and three rounds on 2 shared cores
def test_addon_keras_repo_trains_and_logs_the_tensorflow_flavor(
    suite: EmbeddedSuite, admin: FlopsClient, addon_data: dict[str, int]
) -> None:
    sla = _sla(suite, "digits_keras", "addon_digits_keras")
    sla["ml_model_flavor"] = "tensorflow"
    project = wait_final(admin, admin.submit(sla)["project_id"], timeout_s=900)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 3
    assert_learned(admin, suite.mlflow_url, project, TAG, "mlp", pool=pooled_parquet_digits)
    run_id = project["mlflow"]["run_id"]
    client = MlflowClient(suite.mlflow_url)
    assert client.get_run(run_id).data.tags["flops.model_serialization"] == "keras"

    # Logged in MLflow's tensorflow flavor; registered, it loads back as a Keras model (TensorFlow >= 2.16
    # stores a Keras model as .keras even in this flavor) and predicts through pyfunc.
    models = client.search_logged_models(experiment_ids=[project["mlflow"]["experiment_id"]])
    logged = [m for m in models if m.source_run_id == run_id and m.name == "model"]
    assert len(logged) == 1
    mlflow.set_tracking_uri(suite.mlflow_url)
    info = mlflow.models.get_model_info(logged[0].model_uri)
    assert {"tensorflow", "python_function"} <= set(info.flavors) and "keras" not in info.flavors
    assert info.flavors["tensorflow"]["model_type"] == "keras"
    assert info.signature is not None
    version = mlflow.register_model(logged[0].model_uri, f"addon-keras-{project['id']}")
    aggregator = Path(admin.project(project["id"])["manifest"]["aggregator"])
    loaded = load_in_runtime(suite, aggregator / "bin" / "python", f"models:/{version.name}/{version.version}")
    assert loaded["keras_model"] and loaded["native"].startswith("keras."), loaded
    assert loaded["pyfunc_shape"] == [3, 10], loaded
    assert_nothing_left(suite, project)


def test_flops_check_on_this_machines_node_data(suite: EmbeddedSuite, addon_data: dict[str, int]) -> None:
    out = flops(suite, "check", suite.git_url("addon_digits_sklearn"), "--data-tag", TAG, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["data_dir"].endswith(f"learner-0/data/{TAG}")
    assert report["trial"]["fit_samples"] == int(0.8 * addon_data["learner-0"])
    assert report["trial"]["accuracy"] > 0.8
