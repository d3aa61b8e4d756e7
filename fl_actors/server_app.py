"""FLOps' Flower ServerApp: federated training of the user's model, tracked in MLflow.

Runs inside the aggregator's environment (a process started by the SuperLink); it inherits the
aggregator's environment variables (see :mod:`fl_actors.env`).
"""

from __future__ import annotations

import logging
import tomllib
from typing import Any

from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp

from fl_actors import env, ml_repo
from fl_actors.reporting import EventReporter
from fl_actors.rounds import LoopSettings, RoundReport, run_rounds, wait_for_nodes
from fl_actors.run_config import RunSettings
from fl_actors.strategies import build_strategy
from flops_common.events import EventKind, Source
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
    """Train for the configured rounds, log to MLflow, report over MQTT."""
    from fl_actors.registration import register_final_model
    from fl_actors.tracking import MlflowTracker

    settings = RunSettings.from_run_config(context.run_config)
    training = settings.training
    reporter = EventReporter(settings.project_id, Source.AGGREGATOR, Stage.TRAINING, env.bus_from_env())
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
        wait_for_nodes(grid, training.min_available_clients, settings.connect_timeout_s)

        def on_round(report: RoundReport) -> None:
            tracker.log_round(report)
            reporter.publish(
                EventKind.ROUND_COMPLETED,
                f"round {report.server_round}/{training.training_rounds} completed",
                round_event_data(report),
            )

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
            f"training finished after {training.training_rounds} rounds: accuracy {metrics['accuracy']}",
            {"metrics": metrics, "mlflow": tracker.info.as_dict(), **registration},
        )
    finally:
        if not succeeded:
            tracker.end(succeeded=False)
        reporter.close()
