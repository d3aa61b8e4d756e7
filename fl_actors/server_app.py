"""FLOps' Flower ServerApp: federated training of the user's model, tracked in MLflow.

Runs inside the aggregator's environment (a process started by the SuperLink); it inherits the
aggregator's environment variables (see :mod:`fl_actors.env`).
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, Context, Message
from flwr.serverapp import Grid, ServerApp

from fl_actors import env, ml_repo
from fl_actors.cluster_channel import CHANNEL_ENV, CLUSTER_ENV
from fl_actors.cluster_client import cluster_rounds
from fl_actors.reporting import EventReporter
from fl_actors.rounds import LoopSettings, RoundReport, TrainingError, run_rounds, wait_for_nodes
from fl_actors.run_config import RunSettings
from fl_actors.strategies import build_strategy
from flops_common.events import EventKind, Source
from flops_common.hierarchy import root_training
from flops_common.stages import Stage

log = logging.getLogger(__name__)

app = ServerApp()


def model_requirements() -> list[str] | None:
    """The repo's dependencies recorded in the app's ``pyproject.toml`` (for the logged model)."""
    pyproject = ml_repo.repo_dir_of_model() / "pyproject.toml"
    try:
        with pyproject.open("rb") as handle:
            deps = tomllib.load(handle).get("project", {}).get("dependencies", [])
    except (OSError, tomllib.TOMLDecodeError):
        return None
    requirements = [str(dep) for dep in deps if not str(dep).startswith("flwr")]
    return requirements or None


def round_event_data(report: RoundReport) -> dict[str, Any]:
    """The ``data`` of a ROUND_COMPLETED event."""
    return {"round": report.server_round, "metrics": dict(report.metrics)}


def final_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    """The ``data.metrics`` of TRAINING_SUCCEEDED: accuracy and loss of the final model."""
    return {"accuracy": metrics.get("eval_accuracy"), "loss": metrics.get("eval_loss")}


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Train for the configured rounds (cycles, at a hierarchical root), log to MLflow, report over MQTT.

    In a cluster aggregator (``FLOPS_CLUSTER`` set) it serves the root's cycles instead, without MLflow.
    """
    settings = RunSettings.from_run_config(context.run_config)
    reporter = EventReporter(settings.project_id, Source.AGGREGATOR, Stage.TRAINING, env.bus_from_env())
    cluster = os.environ.get(CLUSTER_ENV)
    if cluster:
        from fl_actors.cluster_app import serve_cluster

        try:
            serve_cluster(grid, settings, cluster, Path(os.environ[CHANNEL_ENV]), reporter)
        finally:
            reporter.close()
        return
    train_and_track(grid, context, settings, reporter)


def wait_for_clusters(grid: Grid, deployed: int, needed: int, timeout_s: float) -> int:
    """Wait for every deployed cluster aggregator (so none misses cycle 1); after ``timeout_s`` go on with
    at least ``needed`` (min_clusters), else raise ``TrainingError``."""
    try:
        return wait_for_nodes(grid, max(deployed, needed), timeout_s, what="cluster aggregators deployed")
    except TrainingError:
        connected = len(list(grid.get_node_ids()))
        if connected >= needed:
            log.warning("%d of %d cluster aggregators joined; going on (min_clusters %d)", connected, deployed, needed)
            return connected
        raise TrainingError(
            f"only {connected} of the {needed} cluster aggregators required (min_clusters) "
            f"joined within {timeout_s:.0f} s"
        ) from None


def train_and_track(grid: Grid, context: Context, settings: RunSettings, reporter: EventReporter) -> None:
    """The (root) aggregator's run: rounds or cycles, MLflow, the final model, events."""
    from fl_actors.registration import register_final_model
    from fl_actors.tracking import MlflowTracker

    sla_training = settings.training
    hierarchical = sla_training.hierarchical
    # At a hierarchical root the rounds are the cycles and the participants the cluster aggregators.
    training = (
        root_training(sla_training, sla_training.min_clusters or 1, settings.connect_timeout_s)
        if hierarchical
        else sla_training
    )
    unit = "cycle" if hierarchical else "round"
    tracker = MlflowTracker(
        run_name=f"{settings.project_id or 'flops'}-run-{context.run_id}",
        tags={"flops.project_id": settings.project_id, "flwr.run_id": str(context.run_id)},
    )
    succeeded = False
    try:
        tracker.check_flavor(settings.flavor)
        strategy = build_strategy(training)  # first: a refused option is the cause, not an MLflow param error
        tracker.log_settings(settings)
        initial = ArrayRecord(ml_repo.new_model_manager().get_model_parameters())
        if hierarchical:
            wait_for_clusters(grid, settings.clusters, training.min_available_clients, settings.connect_timeout_s)
        else:
            wait_for_nodes(grid, training.min_available_clients, settings.connect_timeout_s)

        replied: dict[int, list[str]] = {}

        def on_round(report: RoundReport) -> None:
            tracker.log_round(report)
            data = round_event_data(report)
            if hierarchical:
                data = {"cycle": report.server_round, "metrics": data["metrics"]}
                data["clusters"] = replied.get(report.server_round, [])
            reporter.publish(
                EventKind.CYCLE_COMPLETED if hierarchical else EventKind.ROUND_COMPLETED,
                f"{unit} {report.server_round}/{training.training_rounds} completed",
                data,
            )

        def on_cluster_replies(cycle: int, replies: list[Message]) -> None:
            for msg in replies:
                name, rounds = cluster_rounds(msg)
                replied.setdefault(cycle, []).append(name)
                tracker.log_cluster_rounds(name, rounds)

        result = run_rounds(
            grid,
            strategy,
            initial,
            LoopSettings(
                training_rounds=training.training_rounds,
                round_timeout_s=training.round_timeout_s,
                evaluate=settings.evaluation_enabled,
                eval_in_train=settings.eval_in_train,
                poll_interval_s=settings.poll_interval_s,
            ),
            on_round,
            on_cluster_replies if hierarchical else None,
        )
        manager = ml_repo.new_model_manager()
        manager.set_model_parameters(result.arrays.to_numpy_ndarrays())
        tracker.log_model(manager.get_model(), settings.flavor, model_requirements(), ml_repo.input_example(manager))
        tracker.end(succeeded=True)
        succeeded = True
        metrics = final_metrics(result.final_metrics)
        registration = register_final_model(tracker.info.run_id, metrics)
        reporter.publish(
            EventKind.TRAINING_SUCCEEDED,
            f"training finished after {training.training_rounds} {unit}s: accuracy {metrics['accuracy']}",
            {"metrics": metrics, "mlflow": tracker.info.as_dict(), **registration},
        )
    finally:
        if not succeeded:
            tracker.end(succeeded=False)
        reporter.close()
