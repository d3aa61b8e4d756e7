"""The root-facing ClientApp side of a cluster aggregator: each root message becomes a cluster request.

The ClientApp process that Flower (through FLOps' warm runner) starts for a root message hands the
message's arrays to the cluster's long-lived ServerApp (:mod:`fl_actors.cluster_app`) and waits for
its answer; the reply carries the cluster's aggregate, its metrics under the ClientApp's keys (so the
root's strategy weighs it by ``num-examples`` like a learner), and its rounds for the root's MLflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from fl_actors import records as rk
from fl_actors.cluster_channel import CHANNEL_ENV, CLUSTER_ENV, Channel, CycleRequest, RequestKind

CYCLE_TIMEOUT_ENV = "FLOPS_CYCLE_TIMEOUT_S"  # how long a ClientApp waits for its cluster's answer
CLUSTER_RECORD = "flops-cluster"  # the reply's ConfigRecord: the cluster's name and rounds (JSON)


class ClusterFailed(RuntimeError):
    """The cluster could not answer; the root receives this as the node's error."""


def is_cluster_aggregator() -> bool:
    """Whether this ClientApp runs in a cluster aggregator (else on a learner)."""
    return bool(os.environ.get(CHANNEL_ENV))


def forward(msg: Message, kind: RequestKind) -> Message:
    """Hand a root message to the cluster ServerApp and turn its answer into the reply."""
    cluster = os.environ.get(CLUSTER_ENV, "")
    config = msg.content.config_records.get(rk.CONFIG, ConfigRecord())
    request = CycleRequest(
        kind=kind,
        arrays=msg.content.array_records[rk.ARRAYS].to_numpy_ndarrays(),
        cycle=int(config.get("server-round", 0)),  # type: ignore[arg-type]  # the strategies set it
        eval_global=bool(config.get(rk.EVAL_GLOBAL, False)),
    )
    reply = Channel(Path(os.environ[CHANNEL_ENV])).ask(request, float(os.environ.get(CYCLE_TIMEOUT_ENV, "3600")))
    if reply.error:
        raise ClusterFailed(reply.error)
    metrics: dict[str, int | float] = dict(reply.metrics)
    metrics[rk.NUM_EXAMPLES] = int(reply.metrics.get(rk.NUM_EXAMPLES, 0))
    content = RecordDict(
        {
            rk.METRICS: MetricRecord(metrics),  # type: ignore[arg-type]
            CLUSTER_RECORD: ConfigRecord({"name": cluster, "rounds": json.dumps(reply.rounds)}),
        }
    )
    if kind == "train":
        content[rk.ARRAYS] = ArrayRecord(reply.arrays)
    return Message(content=content, reply_to=msg)


def cluster_rounds(msg: Message) -> tuple[str, list[dict[str, object]]]:
    """The cluster name and round reports a cluster aggregator's reply carries (``("", [])`` if none)."""
    record = msg.content.config_records.get(CLUSTER_RECORD)
    if record is None:
        return "", []
    return str(record.get("name", "")), list(json.loads(str(record.get("rounds", "[]"))))
