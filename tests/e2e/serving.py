"""What the serving tests of every backend share: the post-training steps, test rows in MLflow's
scoring formats, and predictions read back from an answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np

from flops_suite.embedded import EmbeddedSuite

STEPS = ["build_image_for_trained_model", "deploy_trained_model_image"]


def sample_rows(suite: EmbeddedSuite, count: int = 20, node: str = "learner-0") -> np.ndarray:
    """The first test rows of ``node``'s digits, scaled as the examples train on them."""
    with np.load(suite.home / "nodes" / node / "data" / "digits" / "part.npz") as part:
        return (part["x_test"][:count] / 16.0).astype(np.float32)


def as_csv(rows: np.ndarray) -> bytes:
    """CSV with a header row, full float32 precision."""
    header = ",".join(f"p{i}" for i in range(rows.shape[1]))
    lines = [",".join(repr(float(v)) for v in row) for row in rows]
    return ("\n".join([header, *lines]) + "\n").encode()


def as_split_json(rows: np.ndarray) -> bytes:
    """MLflow's ``dataframe_split`` JSON."""
    columns = [f"p{i}" for i in range(rows.shape[1])]
    return json.dumps({"dataframe_split": {"columns": columns, "data": rows.tolist()}}).encode()


def as_array(predictions: list[Any]) -> np.ndarray:
    """MLflow's ``predictions``: a list of values, or of column -> value records (a DataFrame's answer)."""
    if predictions and isinstance(predictions[0], dict):
        return np.asarray([list(record.values()) for record in predictions])
    return np.asarray(predictions)


def assert_answers_as_registered(suite: EmbeddedSuite, url: str, model_uri: str, node: str = "learner-0") -> None:
    """``url``'s ``/invocations`` (CSV and JSON) predicts what ``mlflow.pyfunc.load_model(model_uri)`` does here,
    for test rows of ``node``'s digits.

    For a flavor this environment can load (sklearn); MLflow's credentials, if any, in the environment.
    """
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(suite.mlflow_url)
    rows = sample_rows(suite, node=node)
    frame = pd.DataFrame(rows, columns=[f"p{i}" for i in range(rows.shape[1])])
    expected = np.asarray(mlflow.pyfunc.load_model(model_uri).predict(frame))
    for body, content_type in ((as_csv(rows), "text/csv"), (as_split_json(rows), "application/json")):
        answer = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": content_type}, timeout=60)
        assert answer.status_code == 200, answer.text
        served = as_array(answer.json()["predictions"])
        assert served.shape == expected.shape and np.array_equal(served.astype(expected.dtype), expected)
