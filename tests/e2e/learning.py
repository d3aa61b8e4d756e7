"""Did a project learn? Its eval loss over the rounds (MLflow) against a centrally trained sklearn model."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier

from flops_manager.cli.client import FlopsClient

N_CLASSES = 10
# How near the federated model must come to the central one (a few short rounds, not convergence).
ACCURACY_MARGIN = 0.05
LOSS_MARGIN = 0.15


@dataclass(frozen=True)
class Scores:
    """Loss and accuracy of a model on the learners' pooled test data."""

    loss: float
    accuracy: float


def eval_losses(mlflow_url: str, run_id: str) -> list[float]:
    """The aggregated eval loss of each round, in round order."""
    history = MlflowClient(mlflow_url).get_metric_history(run_id, "eval_loss")
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def pooled_digits(admin: FlopsClient, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every learner node's ``part.npz`` of ``tag`` pooled: the same split the learners trained on."""
    parts = []
    for node in admin.nodes():
        path = Path(node.get("data_dir") or "") / tag / "part.npz"
        if node.get("data_dir") and path.is_file():
            with np.load(path) as npz:
                parts.append({key: npz[key] for key in npz.files})
    assert parts, f"no node holds data under tag {tag!r}"
    x_train, y_train, x_test, y_test = (
        np.concatenate([p[k] for p in parts]) for k in ("x_train", "y_train", "x_test", "y_test")
    )
    return x_train / 16.0, y_train, x_test / 16.0, y_test  # the examples scale pixels 0..16 to 0..1 the same way


Pooled = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def pooled_parquet_digits(admin: FlopsClient, tag: str) -> Pooled:
    """Every learner node's ``<tag>.*.parquet`` digits (``image``, ``label``) pooled, split as the addon-style
    sklearn and keras repos split them: each node's rows in file-name order, its first 80% for training."""
    parts = []
    for node in admin.nodes():
        files = sorted((Path(node.get("data_dir") or "/nonexistent") / tag).glob(f"{tag}.*.parquet"))
        if not files:
            continue
        rows = [pq.read_table(f).to_pydict() for f in files]
        x = np.array([im for r in rows for im in r["image"]], dtype=np.float64).reshape(-1, 64)
        y = np.array([label for r in rows for label in r["label"]], dtype=np.int64)
        split = int(0.8 * len(x))
        parts.append((x[:split], y[:split], x[split:], y[split:]))
    assert parts, f"no node holds parquet data under tag {tag!r}"
    x_train, y_train, x_test, y_test = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return x_train / 16.0, y_train, x_test / 16.0, y_test


def central_baseline(
    admin: FlopsClient, tag: str, kind: str, pool: Callable[[FlopsClient, str], Pooled] = pooled_digits
) -> Scores:
    """A model of the same kind trained centrally by sklearn: ``logistic`` or ``mlp`` (64 hidden units),
    on the learners' data as ``pool`` gathers it."""
    x_train, y_train, x_test, y_test = pool(admin, tag)
    model: Any = (
        LogisticRegression(max_iter=1000)
        if kind == "logistic"
        else MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    loss = float(log_loss(y_test, model.predict_proba(x_test), labels=np.arange(N_CLASSES)))
    return Scores(loss=loss, accuracy=float(model.score(x_test, y_test)))


def assert_learned(
    admin: FlopsClient,
    mlflow_url: str,
    project: dict[str, Any],
    tag: str,
    kind: str,
    pool: Callable[[FlopsClient, str], Pooled] = pooled_digits,
    central: Scores | None = None,
) -> list[float]:
    """The eval loss fell over the rounds and the final model came near a central one of its kind
    (trained on the learners' data as ``pool`` gathers it, unless ``central`` gives its scores)."""
    losses = eval_losses(mlflow_url, project["mlflow"]["run_id"])
    assert len(losses) == project["rounds_completed"] >= 2, losses
    assert losses[0] < np.log(N_CLASSES), f"round 1 no better than chance: {losses}"
    assert losses[-1] < losses[0], f"eval loss did not fall: {losses}"
    for before, after in itertools.pairwise(losses):
        assert after <= before * 1.02, f"eval loss rose between rounds: {losses}"
    central = central or central_baseline(admin, tag, kind, pool)
    final = Scores(loss=project["final_metrics"]["loss"], accuracy=project["final_metrics"]["accuracy"])
    assert final.loss == pytest.approx(losses[-1])
    assert final.accuracy >= central.accuracy - ACCURACY_MARGIN, (final, central)
    assert final.loss <= central.loss + LOSS_MARGIN, (final, central)
    return losses
