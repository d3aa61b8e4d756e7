"""The federated round loop of FLOps' ServerApp, on top of a Flower strategy.

It calls the strategy's own ``configure_*``/``aggregate_*`` methods, like ``Strategy.start``,
and adds what FLOps needs:

* a callback per finished round (MLflow, events) with its metrics and duration;
* replies polled at a pace (at most ``poll_interval_s`` apart) instead of ``Grid.send_and_receive``'s fixed 3 s;
* optionally (``eval_in_train``) the evaluation of the global model of round r rides in the
  train replies of round r+1, and only the last model gets its own evaluate exchange:
  R+1 message exchanges per run instead of 2R, with the same metrics per round;
* a clear error when a round gets no usable reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fl_actors import records as rk
from fl_actors.pacing import Pacer

log = logging.getLogger("flwr")  # Flower's logger: shows in `flwr log`


class TrainingError(RuntimeError):
    """A round could not go on; the message says why, for the user."""


@dataclass
class RoundReport:
    """What happened in one round, once its evaluation is known."""

    server_round: int
    train_replies: int
    train_failures: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class LoopSettings:
    """How the loop runs (``training_rounds`` and ``round_timeout_s`` as the SLA names them)."""

    training_rounds: int
    round_timeout_s: float
    evaluate: bool = True
    eval_in_train: bool = True
    poll_interval_s: float = 0.5
    # Learners evaluate the model they receive in round 1 (hierarchical mode: the root's global model).
    eval_first: bool = False


@dataclass
class LoopResult:
    """The final global arrays and the reports of all rounds."""

    arrays: ArrayRecord
    reports: list[RoundReport]

    @property
    def final_metrics(self) -> dict[str, float]:
        """The metrics of the last round."""
        return self.reports[-1].metrics if self.reports else {}


def send_and_receive(
    grid: Grid, messages: Iterable[Message], timeout_s: float, poll_interval_s: float
) -> list[Message]:
    """Push messages and pull their replies until all arrived or ``timeout_s`` passed.

    Polls are paced from the push (at most ``poll_interval_s`` apart): a short exchange is seen to
    end within milliseconds, a long one costs a few polls a second."""
    started = time.monotonic()
    pacer = Pacer(cap_s=poll_interval_s, since=started)
    pending = {mid for mid in grid.push_messages(list(messages)) if mid}
    sent = len(pending)
    replies: list[Message] = []
    deadline = started + timeout_s
    while pending:
        arrived = list(grid.pull_messages(pending))
        replies.extend(arrived)
        pending.difference_update(msg.metadata.reply_to_message_id for msg in arrived)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(pacer.interval())
    log.info("exchange: %d of %d replies in %.2f s", len(replies), sent, time.monotonic() - started)
    return replies


def wait_for_nodes(
    grid: Grid,
    count: int,
    timeout_s: float,
    poll_interval_s: float = 0.5,
    what: str = "learners required (min_available_clients)",
) -> int:
    """Wait until ``count`` nodes (``what``: learners, or a root's cluster aggregators) are connected; raise
    ``TrainingError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        connected = len(list(grid.get_node_ids()))
        if connected >= count:
            return connected
        if time.monotonic() >= deadline:
            raise TrainingError(f"only {connected} of the {count} {what} connected within {timeout_s:.0f} s")
        time.sleep(poll_interval_s)


def _describe_failures(server_round: int, phase: str, sent: int, replies: list[Message]) -> str:
    errors = [msg for msg in replies if msg.has_error()]
    text = f"round {server_round}: no learner returned a usable {phase} result"
    text += f" ({len(replies)} of {sent} replied"
    text += f", {len(errors)} with an error)" if errors else ")"
    for msg in errors[:5]:
        text += f"; learner {msg.metadata.src_node_id}: {msg.error.reason}"
    if len(replies) < sent:
        text += "; learners that did not reply in time were cut off by the round timeout"
    return text


def _weighted(replies: list[Message], keys: dict[str, str], weight_key: str) -> dict[str, float]:
    """Weighted averages of metric ``keys`` (reply key -> output name) over replies."""
    total = 0.0
    sums = dict.fromkeys(keys.values(), 0.0)
    for msg in replies:
        metrics = next(iter(msg.content.metric_records.values()), MetricRecord())
        if weight_key not in metrics or any(key not in metrics for key in keys):
            continue
        weight = float(metrics[weight_key])  # type: ignore[arg-type]
        total += weight
        for key, name in keys.items():
            sums[name] += float(metrics[key]) * weight  # type: ignore[arg-type]
    if total <= 0:
        return {}
    return {name: value / total for name, value in sums.items()}


def _slowest_compute(replies: list[Message]) -> float:
    """The longest time a learner spent in the user's code for these replies (0 if none said)."""
    slowest = 0.0
    for msg in replies:
        if msg.has_error():
            continue
        for record in msg.content.metric_records.values():
            if rk.COMPUTE_S in record:
                slowest = max(slowest, float(record[rk.COMPUTE_S]))  # type: ignore[arg-type]
    return slowest


def _eval_from_record(record: MetricRecord | None) -> dict[str, float]:
    if record is None:
        return {}
    names = {rk.EVAL_LOSS: "eval_loss", rk.EVAL_ACCURACY: "eval_accuracy"}
    return {names[key]: float(value) for key, value in record.items() if key in names}  # type: ignore[arg-type]


def _train_from_record(record: MetricRecord | None) -> dict[str, float]:
    if record is None or rk.TRAIN_LOSS not in record:
        return {}
    return {"train_loss": float(record[rk.TRAIN_LOSS])}  # type: ignore[arg-type]


def run_rounds(
    grid: Grid,
    strategy: Strategy,
    initial_arrays: ArrayRecord,
    settings: LoopSettings,
    on_round: Callable[[RoundReport], None],
    on_train_replies: Callable[[int, list[Message]], None] | None = None,
) -> LoopResult:
    """Run ``settings.training_rounds`` rounds; call ``on_round`` for each as soon as its metrics are known,
    and ``on_train_replies`` with each round's usable train replies (before they are aggregated)."""
    arrays = initial_arrays
    reports: list[RoundReport] = []
    merged = settings.eval_in_train and settings.evaluate
    waiting: RoundReport | None = None  # merged mode: the round whose evaluation is pending

    def finish(report: RoundReport) -> None:
        reports.append(report)
        on_round(report)

    for server_round in range(1, settings.training_rounds + 1):
        started = time.monotonic()
        eval_received = (merged and server_round > 1) or (settings.eval_first and server_round == 1)
        config = ConfigRecord({rk.EVAL_GLOBAL: eval_received})
        messages = list(strategy.configure_train(server_round, arrays, config, grid))
        replies = send_and_receive(grid, messages, settings.round_timeout_s, settings.poll_interval_s)
        valid = [msg for msg in replies if not msg.has_error()]
        if not valid:
            raise TrainingError(_describe_failures(server_round, "training", len(messages), replies))
        if on_train_replies is not None:
            on_train_replies(server_round, valid)
        if waiting is not None:
            waiting.metrics.update(
                _weighted(
                    valid,
                    {rk.GLOBAL_EVAL_LOSS: "eval_loss", rk.GLOBAL_EVAL_ACCURACY: "eval_accuracy"},
                    rk.GLOBAL_EVAL_EXAMPLES,
                )
            )
            finish(waiting)
            waiting = None
        new_arrays, train_metrics = strategy.aggregate_train(server_round, replies)
        if new_arrays is not None:
            arrays = new_arrays
        report = RoundReport(
            server_round=server_round,
            train_replies=len(valid),
            train_failures=len(messages) - len(valid),
            seconds=0.0,
            metrics=_train_from_record(train_metrics),
        )
        compute_s = _slowest_compute(valid)
        if settings.evaluate and (not merged or server_round == settings.training_rounds):
            eval_messages = list(strategy.configure_evaluate(server_round, arrays, ConfigRecord(), grid))
            eval_replies = send_and_receive(grid, eval_messages, settings.round_timeout_s, settings.poll_interval_s)
            if eval_messages and not any(not msg.has_error() for msg in eval_replies):
                raise TrainingError(_describe_failures(server_round, "evaluation", len(eval_messages), eval_replies))
            report.metrics.update(_eval_from_record(strategy.aggregate_evaluate(server_round, eval_replies)))
            compute_s += _slowest_compute(eval_replies)
        report.seconds = time.monotonic() - started
        report.metrics["round_time_s"] = report.seconds
        # the slowest learner's time in the user's code: the rest of round_time_s is overhead
        report.metrics["client_compute_s"] = compute_s
        report.metrics["clients_replied"] = float(report.train_replies)
        if merged and server_round < settings.training_rounds:
            waiting = report
        else:
            finish(report)
    return LoopResult(arrays=arrays, reports=reports)
