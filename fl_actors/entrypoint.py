"""The one ``main()`` of an actor: job, work directory, reporter, signals, and cleanup of every child."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fl_actors import processes, signals
from fl_actors.reporting import EventReporter
from flops_common.events import EventKind, Source
from flops_common.jobs import JobT, load_job
from flops_common.stages import Stage


def run_actor(
    job_model: type[JobT],
    source: Source,
    stage: Stage,
    workdir_name: Callable[[JobT], str],
    run: Callable[[JobT, Path, EventReporter], int],
    crash_event: EventKind | None = None,
) -> int:
    """Run the actor's job from ``FLOPS_JOB`` with ``run``; return its exit code.

    ``run`` gets the job, its work directory (``workdir_name(job)`` in the current directory) and
    a reporter. SIGTERM/SIGINT end it with exit code 143. An unexpected exception is reported as
    ``crash_event`` (exit code 1) when one is given, else raised. Every process the actor started
    is stopped before this returns (the actor is their subreaper).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger(f"fl_actors.{source.value}")
    signals.install()
    processes.become_subreaper()
    job = load_job(job_model)
    workdir = Path.cwd() / workdir_name(job)
    workdir.mkdir(parents=True, exist_ok=True)
    reporter = EventReporter(job.project_id, source, stage, job.bus)
    try:
        return run(job, workdir, reporter)
    except signals.Terminated as stop:
        log.warning("%s %s", source.value, stop)
        return signals.EXIT_TERMINATED
    except Exception as exc:
        if crash_event is None:
            raise
        log.exception("%s failed", source.value)  # a user must see why: report it
        reporter.publish(crash_event, f"{source.value} failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        processes.stop_descendants_of_self()
        reporter.close()
