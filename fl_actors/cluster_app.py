"""The cluster ServerApp of hierarchical mode: one long-lived Flower run on the cluster's own SuperLink.

It waits for its learners, then serves the root's requests as they come through the cluster channel
(:mod:`fl_actors.cluster_channel`): *train* runs ``training_rounds`` rounds with the SLA's strategy from
the root's global arrays and answers with the cluster's aggregate, weighted by the examples its learners
trained on; *evaluate* evaluates the root's arrays on the cluster's learners. No process starts per
cycle. Each round is reported as it ends (ROUND_COMPLETED with ``data.cluster``); the rounds also travel
to the root with the reply, which logs them to MLflow (a cluster carries no MLflow).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fl_actors import records as rk
from fl_actors.cluster_channel import Channel, ChannelTimeout, CycleReply, CycleRequest
from fl_actors.reporting import EventReporter
from fl_actors.rounds import LoopSettings, RoundReport, TrainingError, run_rounds, send_and_receive, wait_for_nodes
from fl_actors.run_config import RunSettings
from fl_actors.strategies import build_strategy
from flops_common.events import EventKind

log = logging.getLogger("flwr")
IDLE_WAIT_S = 3600.0  # between requests; the manager undeploys the cluster aggregator when the project ends


def _sum_metric(replies: list[Message], key: str) -> float:
    total = 0.0
    for msg in replies:
        for record in msg.content.metric_records.values():
            if key in record:
                total += float(record[key])  # type: ignore[arg-type]
    return total


def _global_eval(replies: list[Message]) -> dict[str, float]:
    """The learners' evaluation of the model they received, weighted by their evaluation examples."""
    examples = _sum_metric(replies, rk.GLOBAL_EVAL_EXAMPLES)
    result = {rk.GLOBAL_EVAL_LOSS: 0.0, rk.GLOBAL_EVAL_ACCURACY: 0.0, rk.GLOBAL_EVAL_EXAMPLES: examples}
    if examples <= 0:
        return result
    for msg in replies:
        record = next(iter(msg.content.metric_records.values()), MetricRecord())
        weight = float(record.get(rk.GLOBAL_EVAL_EXAMPLES, 0))  # type: ignore[arg-type]
        for key in (rk.GLOBAL_EVAL_LOSS, rk.GLOBAL_EVAL_ACCURACY):
            result[key] += float(record.get(key, 0.0)) * weight / examples  # type: ignore[arg-type]
    return result


class ClusterServer:
    """One cluster's side of hierarchical training: a strategy, its learners, the root's requests."""

    def __init__(
        self, grid: Grid, settings: RunSettings, cluster: str, reporter: EventReporter, strategy: Strategy
    ) -> None:
        self.grid = grid
        self.settings = settings
        self.cluster = cluster
        self.reporter = reporter
        self.strategy = strategy

    def train(self, request: CycleRequest) -> CycleReply:
        """``training_rounds`` rounds from the root's arrays; the aggregate and what the root needs to weigh it."""
        training = self.settings.training
        rounds = training.training_rounds
        examples: dict[int, float] = {}
        received_eval: dict[str, float] = {}
        reports: list[dict[str, Any]] = []
        started = time.monotonic()

        def on_replies(server_round: int, replies: list[Message]) -> None:
            examples[server_round] = _sum_metric(replies, rk.NUM_EXAMPLES)
            if server_round == 1 and request.eval_global:
                received_eval.update(_global_eval(replies))

        def on_round(report: RoundReport) -> None:
            step = (request.cycle - 1) * rounds + report.server_round  # the cluster's round count over cycles
            reports.append({"round": step, "cycle": request.cycle, "metrics": dict(report.metrics)})
            self.reporter.publish(
                EventKind.ROUND_COMPLETED,
                f"cluster {self.cluster}: round {report.server_round}/{rounds} of cycle {request.cycle}",
                {"cluster": self.cluster, "cycle": request.cycle, "round": step, "metrics": dict(report.metrics)},
            )

        result = run_rounds(
            self.grid,
            self.strategy,
            ArrayRecord(request.arrays),
            LoopSettings(
                training_rounds=rounds,
                round_timeout_s=training.round_timeout_s,
                evaluate=self.settings.evaluation_enabled,
                eval_in_train=self.settings.eval_in_train,
                poll_interval_s=self.settings.poll_interval_s,
                eval_first=request.eval_global,
            ),
            on_round,
            on_replies,
        )
        metrics = {rk.NUM_EXAMPLES: examples[rounds], rk.COMPUTE_S: time.monotonic() - started}
        if "train_loss" in result.final_metrics:
            metrics[rk.TRAIN_LOSS] = result.final_metrics["train_loss"]
        if request.eval_global:
            metrics.update(received_eval)
        return CycleReply(request.request_id, metrics, result.arrays.to_numpy_ndarrays(), reports)

    def evaluate(self, request: CycleRequest) -> CycleReply:
        """Evaluate the root's arrays on this cluster's learners."""
        started = time.monotonic()
        arrays = ArrayRecord(request.arrays)
        messages = list(self.strategy.configure_evaluate(request.cycle, arrays, ConfigRecord(), self.grid))
        training = self.settings.training
        replies = send_and_receive(self.grid, messages, training.round_timeout_s, self.settings.poll_interval_s)
        valid = [msg for msg in replies if not msg.has_error()]
        if messages and not valid:
            raise TrainingError(f"no learner of cluster {self.cluster} returned an evaluation ({len(replies)} replied)")
        aggregated = self.strategy.aggregate_evaluate(request.cycle, valid) or MetricRecord()
        metrics = {
            rk.EVAL_LOSS: float(aggregated.get(rk.EVAL_LOSS, 0.0)),  # type: ignore[arg-type]
            rk.EVAL_ACCURACY: float(aggregated.get(rk.EVAL_ACCURACY, 0.0)),  # type: ignore[arg-type]
            rk.NUM_EXAMPLES: _sum_metric(valid, rk.NUM_EXAMPLES),
            rk.COMPUTE_S: time.monotonic() - started,
        }
        return CycleReply(request.request_id, metrics)

    def answer(self, request: CycleRequest) -> CycleReply:
        """The reply to one request; a round that cannot go on is answered with its cause."""
        try:
            return self.train(request) if request.kind == "train" else self.evaluate(request)
        except TrainingError as exc:
            log.error("cluster %s: %s", self.cluster, exc)
            return CycleReply(request.request_id, {}, error=f"cluster {self.cluster}: {exc}")


def serve_cluster(grid: Grid, settings: RunSettings, cluster: str, channel_dir: Path, reporter: EventReporter) -> None:
    """Wait for the cluster's learners, then answer the root's requests until this run is stopped."""
    training = settings.training
    server = ClusterServer(grid, settings, cluster, reporter, build_strategy(training))
    connected = wait_for_nodes(grid, training.min_available_clients, settings.connect_timeout_s)
    data = {"cluster": cluster, "learners": connected}
    reporter.publish(EventKind.LOG, f"cluster {cluster}: {connected} learner(s) connected", data)
    channel = Channel(channel_dir)
    while True:
        try:
            request = channel.next_request(IDLE_WAIT_S)
        except ChannelTimeout:
            continue
        log.info("cluster %s: %s request of cycle %d", cluster, request.kind, request.cycle)
        channel.answer(server.answer(request))
