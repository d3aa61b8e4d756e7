"""Stand-ins for the actors' unit tests: an in-process Flower Grid (messages go straight to FLOps'
ClientApp), digits partitions, and aggregator jobs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Context, Error, Message, RecordDict

from flops_common.jobs import AggregatorJob, BusConfig
from flops_common.sla import ModelFlavor, TrainingConfiguration

REPO_ROOT = Path(__file__).resolve().parents[2]
SKLEARN_REPO = REPO_ROOT / "examples" / "ml_repos" / "digits_sklearn"


def aggregator_job(flavor: ModelFlavor = ModelFlavor.SKLEARN, **training: Any) -> AggregatorJob:
    """An aggregator job for project ``p-1`` whose training configuration is the SLA's defaults plus ``training``."""
    return AggregatorJob(
        project_id="p-1",
        bus=BusConfig(),
        flavor=flavor,
        app_dir="/app",
        superlink_port=9100,
        training=TrainingConfiguration.model_validate({"data_tags": ["digits"], **training}),
        mlflow_tracking_uri="http://127.0.0.1:5000",
        mlflow_experiment="p-1",
    )


def write_digits_partitions(root: Path, count: int = 2) -> list[Path]:
    """``count`` partitions of sklearn's digits as ``part.npz`` files (75 % train)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    split = int(len(x) * 0.75)
    dirs = []
    for index in range(count):
        part = root / f"data-{index}"
        part.mkdir(parents=True)
        np.savez(
            part / "part.npz",
            x_train=x[:split][index::count],
            y_train=y[:split][index::count],
            x_test=x[split:][index::count],
            y_test=y[split:][index::count],
        )
        dirs.append(part)
    return dirs


class FakeGrid:
    """Nodes ``1..n`` each with a data directory; replies are computed on push."""

    def __init__(self, data_dirs: list[Path], failing_nodes: frozenset[int] = frozenset()) -> None:
        self.data_dirs = {index + 1: path for index, path in enumerate(data_dirs)}
        self.failing_nodes = failing_nodes
        self.exchanges: list[str] = []
        self._replies: dict[str, Message] = {}
        # What a ServerApp process learns from the SuperLink; Message() needs it.
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity.run_id = 1
        TaskIdentity.node_id = 0
        TaskIdentity.task_id = 1

    def get_node_ids(self) -> Iterable[int]:
        return list(self.data_dirs)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        from fl_actors.client_app import app

        ids = []
        messages = list(messages)
        if messages:
            self.exchanges.append(messages[0].metadata.message_type)
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = msg.object_id
            node = msg.metadata.dst_node_id
            if node in self.failing_nodes:
                reply = Message(Error(code=0, reason="boom on purpose"), reply_to=msg)
            else:
                os.environ["FLOPS_DATA_DIR"] = str(self.data_dirs[node])
                context = Context(run_id=1, node_id=node, node_config={}, state=RecordDict(), run_config={})
                reply = app(message=msg, context=context)
            self._replies[msg.metadata.message_id] = reply
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(mid) for mid in list(message_ids) if mid in self._replies]
