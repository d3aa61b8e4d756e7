"""MLflow logging of a training run (aggregator side only: learners carry no MLflow).

``mlflow`` is imported lazily, when a tracker starts, so that importing this module costs nothing.
Where to log comes from MLflow's own variables, set by the aggregator:
``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` (credentials: ``MLFLOW_TRACKING_USERNAME``/
``MLFLOW_TRACKING_PASSWORD``).
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fl_actors import env
from fl_actors.rounds import RoundReport
from fl_actors.run_config import RunSettings
from flops_common.redaction import strip_userinfo
from flops_common.sla import ModelFlavor

log = logging.getLogger("flwr")  # Flower's logger: shows in the run's log

MODEL_NAME = "model"
DEFAULT_EXPERIMENT = "flops"
LOGIN_TIMEOUT_S = 120.0
_NOT_YET = (401, 403, 404)  # the project's user, its grant or its experiment is still being made


@dataclass(frozen=True)
class RunInfo:
    """Where a training run lives in MLflow."""

    experiment_id: str
    run_id: str
    run_url: str

    def as_dict(self) -> dict[str, str]:
        """The fields of the TRAINING_SUCCEEDED event's ``data.mlflow``."""
        return {"experiment_id": self.experiment_id, "run_id": self.run_id, "run_url": self.run_url}


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI address of a run (empty when tracking is not over HTTP), never with credentials."""
    if not tracking_uri.startswith(("http://", "https://")):
        return ""
    # A run link travels in events and documents: never with the URI's credentials.
    return f"{strip_userinfo(tracking_uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return flat


def run_params(settings: RunSettings) -> dict[str, str]:
    """A run's MLflow params: the SLA's training configuration under its own field names (nested
    ones dotted: ``strategy.name``, ``strategy.options.eta``), the flavor and ``eval_in_train``."""
    training = settings.training
    # exclude_none: a classic run has no training_cycles or min_clusters to show
    params = _flat(training.model_dump(mode="json", exclude_none=True) | {"learners": training.learner_count})
    return params | {"flavor": settings.flavor.value, "eval_in_train": str(settings.eval_in_train)}


def sklearn_serialization() -> str:
    """``skops`` (safe to load) when the aggregator has it, else ``cloudpickle``."""
    import importlib.util

    return "skops" if importlib.util.find_spec("skops") is not None else "cloudpickle"


def keras_signature(model: Any, input_example: Any) -> Any:
    """A TensorSpec signature (dynamic batch) from one prediction on the example; None without one.

    mlflow.keras cannot save an input example (it writes it before making the model's directory), and
    takes only TensorSpec inputs with a batch dimension of -1.
    """
    if input_example is None:
        return None
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    x = np.asarray(input_example)
    y = np.asarray(model(x))
    return ModelSignature(
        inputs=Schema([TensorSpec(x.dtype, (-1, *x.shape[1:]))]),
        outputs=Schema([TensorSpec(y.dtype, (-1, *y.shape[1:]))]),
    )


def access_checks(environ: Mapping[str, str]) -> list[str]:
    """The MLflow REST paths the aggregator's login must read before it logs (none without a login)."""
    uri = environ.get(env.MLFLOW_TRACKING_URI, "")
    if not environ.get("MLFLOW_TRACKING_USERNAME") or not uri.startswith(("http://", "https://")):
        return []
    experiment = environ.get(env.MLFLOW_EXPERIMENT_NAME) or DEFAULT_EXPERIMENT
    paths = [f"2.0/mlflow/experiments/get-by-name?{urllib.parse.urlencode({'experiment_name': experiment})}"]
    model = environ.get(env.REGISTERED_MODEL)
    if model:
        paths.append(f"2.0/mlflow/registered-models/get?{urllib.parse.urlencode({'name': model})}")
    return paths


def wait_for_access(environ: Mapping[str, str], timeout_s: float = LOGIN_TIMEOUT_S, poll_s: float = 0.2) -> float:
    """Wait until this aggregator's MLflow login can read its experiment and registered model; return the
    seconds waited.

    The manager makes the project's MLflow user beside the deployment (its password is derived, so the
    aggregator already holds it): seconds before the first run is submitted, rarely after. An answer other
    than 401/403/404 is left to MLflow's client to report.
    """
    paths = access_checks(environ)
    if not paths:
        return 0.0
    base = strip_userinfo(environ.get(env.MLFLOW_TRACKING_URI, "")).rstrip("/")
    login = f"{environ['MLFLOW_TRACKING_USERNAME']}:{environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
    header = "Basic " + base64.b64encode(login.encode()).decode()
    started = time.monotonic()
    for path in paths:
        while True:
            request = urllib.request.Request(f"{base}/api/{path}", headers={"Authorization": header})
            try:
                with urllib.request.urlopen(request, timeout=10):
                    break
            except urllib.error.HTTPError as exc:
                if exc.code not in _NOT_YET:
                    break
                if time.monotonic() - started >= timeout_s:
                    raise RuntimeError(
                        f"MLflow refused the project's login for {timeout_s:.0f} s "
                        f"(HTTP {exc.code} on {path.split('?')[0]}): its user was not made"
                    ) from None
            time.sleep(poll_s)
    return time.monotonic() - started


def tensorflow_serialization(model: Any, flavor: ModelFlavor) -> str:
    """How MLflow's keras/tensorflow flavor stores ``model``: ``keras`` (a ``.keras`` file) or ``saved_model``.

    mlflow.keras writes every Keras 3 model as ``.keras``; mlflow.tensorflow does too for a Keras model on
    TensorFlow >= 2.16 (it loads back as a Keras model), and a TensorFlow SavedModel only for a plain
    ``tf.Module`` (it loads back as the restored module).
    """
    if flavor == ModelFlavor.KERAS:
        return "keras"
    keras_model = importlib.import_module("tensorflow").keras.Model
    return "keras" if isinstance(model, keras_model) else "saved_model"


class MlflowTracker:
    """One MLflow run: params, per-round metrics, the final model."""

    def __init__(self, run_name: str, tags: dict[str, str]) -> None:
        waited = wait_for_access(os.environ)
        if waited >= 1.0:
            log.info("waited %.1f s for the project's MLflow login", waited)
        import mlflow

        self._mlflow = mlflow
        tracking_uri = os.environ.get(env.MLFLOW_TRACKING_URI, "")
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        experiment = mlflow.set_experiment(os.environ.get(env.MLFLOW_EXPERIMENT_NAME) or DEFAULT_EXPERIMENT)
        run = mlflow.start_run(experiment_id=experiment.experiment_id, run_name=run_name, tags=tags)
        self.info = RunInfo(
            experiment_id=str(experiment.experiment_id),
            run_id=run.info.run_id,
            run_url=run_url(mlflow.get_tracking_uri(), str(experiment.experiment_id), run.info.run_id),
        )

    @staticmethod
    def check_flavor(flavor: ModelFlavor) -> None:
        """Import MLflow's module of the flavor now, so a missing package fails before training."""
        try:
            importlib.import_module(f"mlflow.{flavor.value}")
        except ImportError as exc:
            raise RuntimeError(
                f"the aggregator environment cannot log {flavor.value} models to MLflow: {exc} "
                f"(mlflow.{flavor.value} needs it; add it to the aggregator image)"
            ) from exc

    def log_settings(self, settings: RunSettings) -> None:
        """Log the run's training configuration as params (:func:`run_params`)."""
        self._mlflow.log_params(run_params(settings))

    def log_round(self, report: RoundReport) -> None:
        """Log one round's metrics with the round number as step (at a hierarchical root: one cycle's)."""
        self._mlflow.log_metrics(dict(report.metrics), step=report.server_round)

    def log_cluster_rounds(self, cluster: str, rounds: list[dict[str, Any]]) -> None:
        """Log a cluster's rounds of one cycle as ``<cluster>/<metric>``, step = the cluster's round over cycles.

        Prefixed metrics in the root's one run rather than nested runs: the MLflow UI groups metrics by
        their ``/`` prefix (one section per cluster), one chart can overlay the clusters' curves, and the
        run holding the model also holds every number that led to it.
        """
        for entry in rounds:
            metrics = {f"{cluster}/{name}": float(value) for name, value in dict(entry["metrics"]).items()}
            self._mlflow.log_metrics(metrics, step=int(entry["round"]))

    def log_model(
        self, model: Any, flavor: ModelFlavor, pip_requirements: list[str] | None, input_example: Any = None
    ) -> None:
        """Log the trained model in its flavor under the name ``model``.

        PyTorch models are pickled; the repo's input example (``ModelManager.get_input_example()``,
        optional) gives MLflow a signature.
        """
        if flavor == ModelFlavor.SKLEARN:
            import mlflow.sklearn

            serialization = sklearn_serialization()
            self._mlflow.set_tag("flops.model_serialization", serialization)
            mlflow.sklearn.log_model(
                model, name=MODEL_NAME, pip_requirements=pip_requirements, serialization_format=serialization
            )
        elif flavor == ModelFlavor.PYTORCH:
            import mlflow.pytorch

            # pt2 export needs a TensorSpec signature that MLflow does not infer reliably from an example.
            serialization = "pickle"
            self._mlflow.set_tag("flops.model_serialization", serialization)
            mlflow.pytorch.log_model(
                model,
                name=MODEL_NAME,
                pip_requirements=pip_requirements,
                serialization_format=serialization,
                input_example=input_example,
            )
        elif flavor in (ModelFlavor.KERAS, ModelFlavor.TENSORFLOW):
            module = importlib.import_module(f"mlflow.{flavor.value}")
            self._mlflow.set_tag("flops.model_serialization", tensorflow_serialization(model, flavor))
            module.log_model(
                model,
                name=MODEL_NAME,
                pip_requirements=pip_requirements,
                signature=keras_signature(model, input_example),
            )
        else:  # pragma: no cover - the enum has no other members
            raise ValueError(f"cannot log a model of flavor {flavor}")

    def end(self, succeeded: bool) -> None:
        """Close the run as FINISHED or FAILED."""
        self._mlflow.end_run(status="FINISHED" if succeeded else "FAILED")
