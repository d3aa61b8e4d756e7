"""The aggregator actor (``python -m fl_actors.aggregator``): SuperLink + one Flower run.

Reads its :class:`~flops_common.jobs.AggregatorJob` from ``FLOPS_JOB``, starts a private SuperLink
on ``job.superlink_port``, submits the project's Flower app through the SuperLink's Control API, follows
the run (its log stream and status) and reports TRAINING_STARTED / TRAINING_FAILED. The
ServerApp itself reports rounds and TRAINING_SUCCEEDED. Exit code 0 on success, 1 on failure,
143 when stopped by SIGTERM; the SuperLink and everything it spawned are always stopped.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from fl_actors import env, processes, run_config, signals
from fl_actors.control_api import ControlApiError, ControlClient, RunStatus
from fl_actors.diagnostics import error_summary, strip_ansi
from fl_actors.entrypoint import run_actor
from fl_actors.reporting import EventReporter
from fl_actors.superlink import SuperLinkError, start_serverapp_runner, start_superlink
from flops_common.events import EventKind, Source
from flops_common.hierarchy import root_training
from flops_common.jobs import AggregatorJob
from flops_common.stages import Stage

log = logging.getLogger("fl_actors.aggregator")

WARM_SERVERAPP = True  # False: Flower's own SuperExec starts a fresh flwr-serverapp for the run
STATUS_POLL_S = 30.0  # the log stream tells when the run ends; the status is checked then
MARGIN_S = 120.0


def connect_timeout_s(job: AggregatorJob) -> float:
    """How long the ServerApp waits for ``min_available_clients`` learners to connect."""
    return max(120.0, job.training.round_timeout_s)


def overall_timeout_s(job: AggregatorJob) -> float:
    """Upper bound of a whole run: learners connecting, each round's train and evaluate, a margin (at a
    hierarchical root the rounds are cycles, each within its cycle timeout)."""
    training = job.training
    if training.hierarchical:
        training = root_training(training, training.min_clusters or 1, connect_timeout_s(job))
    return connect_timeout_s(job) + (training.training_rounds + 1) * 2 * training.round_timeout_s + MARGIN_S


def workdir_name(job: AggregatorJob) -> str:
    """The aggregator's working directory (in its current directory)."""
    return f"flops-aggregator-{job.project_id}"


def actor_env(job: AggregatorJob, flwr_home: Path) -> dict[str, str]:
    """The environment of the SuperLink and, through it, of the ServerApp."""
    child = dict(os.environ)
    child.update(env.flower_env(str(flwr_home)))
    child.update(env.bus_to_env(job.bus))
    child[env.MLFLOW_TRACKING_URI] = job.mlflow_tracking_uri
    child[env.MLFLOW_EXPERIMENT_NAME] = job.mlflow_experiment
    if job.registered_model:
        child[env.REGISTERED_MODEL] = job.registered_model
        child[env.MODEL_TAGS] = json.dumps(job.model_tags)
    child.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    child.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    return child


def failure_cause(run_id: int, status: RunStatus, log_text: str) -> str:
    """A user-readable reason why a Flower run failed."""
    cause = status.details.strip() or error_summary(log_text) or "Flower reported no details"
    return f"Flower run {run_id} ended as {status.status}: {cause}"


def follow_run(
    control: ControlClient,
    run_id: int,
    timeout_s: float,
    superlink: subprocess.Popen[bytes],
    log_path: Path,
    runner: subprocess.Popen[bytes] | None = None,
) -> RunStatus:
    """Wait until the run finishes; raise ``TimeoutError``/``RuntimeError`` if it cannot (also when the
    warm ServerApp ``runner`` exits: nothing else would run the ServerApp)."""
    deadline = time.monotonic() + timeout_s
    next_status = time.monotonic() + STATUS_POLL_S
    with log_path.open("ab") as log_file:
        stream = control.stream_log(run_id, log_file)
        try:
            while True:
                if superlink.poll() is not None:
                    raise RuntimeError(f"the SuperLink exited (code {superlink.returncode}) during the run")
                if runner is not None and runner.poll() is not None:
                    raise RuntimeError(f"the ServerApp runner exited (code {runner.returncode}) during the run")
                stream_ended = stream.poll() is not None
                if stream_ended or time.monotonic() >= next_status:
                    status = control.status(run_id)
                    if status.finished:
                        return status
                    if stream_ended:  # stream broke off early: poll status more often
                        stream = control.stream_log(run_id, log_file)
                    next_status = time.monotonic() + STATUS_POLL_S
                if time.monotonic() >= deadline:
                    control.stop(run_id)
                    raise TimeoutError(
                        f"training did not finish within {timeout_s:.0f} s "
                        f"(learners connecting + rounds x round_timeout_s + margin); the run was stopped"
                    )
                time.sleep(1.0)
        finally:
            control.close()  # ends a stream still open


def run(job: AggregatorJob, workdir: Path, reporter: EventReporter) -> int:
    """Start the SuperLink, run the app, report; return the exit code."""
    flwr_home = workdir / "flwr-home"
    child_env = actor_env(job, flwr_home)
    control = ControlClient(f"{job.superlink_host}:{job.superlink_port}")
    superlink: subprocess.Popen[bytes] | None = None
    superlink_log: processes.LogTail | None = None
    runner: subprocess.Popen[bytes] | None = None
    run_id: int | None = None
    try:
        if WARM_SERVERAPP:  # first, so that it imports while the SuperLink starts
            runner, _ = start_serverapp_runner(
                job.superlink_port, job.app_dir, job.flavor.value, child_env, workdir, host=job.superlink_host
            )
        superlink, superlink_log = start_superlink(
            job.superlink_port, child_env, workdir, host=job.superlink_host, warm_serverapp=WARM_SERVERAPP
        )
        overrides = workdir / "run-config.toml"
        values = run_config.for_job(job, connect_timeout_s(job))
        values.update(json.loads(os.environ.get(env.RUN_CONFIG_OVERRIDES) or "{}"))
        overrides.write_text(run_config.to_toml(values), encoding="utf-8")
        run_id = control.run(Path(job.app_dir), overrides)
        reporter.publish(EventKind.TRAINING_STARTED, f"Flower run {run_id} submitted", {"run_id": str(run_id)})
        status = follow_run(control, run_id, overall_timeout_s(job), superlink, workdir / f"run-{run_id}.log", runner)
        if status.succeeded:
            log.info("Flower run %s completed in %.1f s", run_id, status.elapsed_s)
            return 0
        log_text = strip_ansi((workdir / f"run-{run_id}.log").read_text(errors="replace"))
        cause = failure_cause(run_id, status, log_text)
        reporter.publish(
            EventKind.TRAINING_FAILED,
            cause,
            {"run_id": str(run_id), "status": status.status, "log_tail": log_text[-4000:]},
        )
        return 1
    except signals.Terminated:
        if run_id is not None:
            control.stop(run_id)
        raise
    except (ControlApiError, TimeoutError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        reporter.publish(
            EventKind.TRAINING_FAILED,
            str(exc),
            {
                "run_id": str(run_id) if run_id else None,
                "superlink_log": exc.output
                if isinstance(exc, SuperLinkError)
                else (superlink_log.text() if superlink_log else ""),
            },
        )
        return 1
    finally:
        processes.stop_trees(superlink, runner)


def main() -> int:
    """Entry point: run the job from ``FLOPS_JOB``; an unexpected error is reported as TRAINING_FAILED."""
    return run_actor(AggregatorJob, Source.AGGREGATOR, Stage.TRAINING, workdir_name, run, EventKind.TRAINING_FAILED)


if __name__ == "__main__":
    sys.exit(main())
