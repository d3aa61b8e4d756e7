"""The learner actor (``python -m fl_actors.learner``): local data first, then a Flower SuperNode.

Reads its :class:`~flops_common.jobs.LearnerJob` from ``FLOPS_JOB``, loads this node's data with the
repo's ``DataManager`` (``FLOPS_DATA_DIR`` = ``job.data_dir``) *before* connecting, reports
LEARNER_READY (``data.samples``) or LEARNER_FAILED with the cause, then runs
``flower-supernode`` until it ends or this process is stopped. SIGTERM stops the SuperNode and
every ClientApp process it started. Learners carry no MLflow.

The SuperNode runs in ``--isolation process`` mode next to FLOps' own SuperExec
(:mod:`fl_actors.clientapp_executor`), which forks each ClientApp process from a warm process
instead of starting and importing a fresh interpreter per message (``bench/RESULTS.md``).
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from fl_actors import clientapp_executor, env, ml_repo, ports, processes, supernode_launcher
from fl_actors.diagnostics import error_summary
from fl_actors.entrypoint import run_actor
from fl_actors.reporting import EventReporter
from flops_common.events import EventKind, Source
from flops_common.jobs import LearnerJob
from flops_common.stages import Stage

log = logging.getLogger("fl_actors.learner")


def workdir_name(job: LearnerJob) -> str:
    """The learner's working directory (in its current directory)."""
    return f"flops-learner-{job.project_id}-{job.learner_index}"


def load_data(job: LearnerJob) -> dict[str, int]:
    """Load the node's data through the repo's contract; return the sample counts."""
    os.environ[env.DATA_DIR] = job.data_dir
    ml_repo.add_to_path(job.app_dir)
    train, test = ml_repo.load_local_data()
    counts = {"samples": ml_repo.count_samples(train), "test_samples": ml_repo.count_samples(test)}
    del train, test
    gc.collect()
    if counts["samples"] <= 0:
        raise ValueError(f"the data in {job.data_dir} holds no training samples")
    return counts


WARM_CLIENTAPPS = True  # False: Flower's own SuperExec, one fresh interpreter per message
SUPERLINK_WAIT_S = 300.0  # then the SuperNode starts anyway and retries by itself


def runtime_api_address(job: LearnerJob) -> str:
    """Where the SuperNode serves its Runtime API (for the SuperExec)."""
    return f"127.0.0.1:{job.supernode_port}"


def wait_until_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 300.0) -> bool:
    """Wait until ``port`` is listened on; ``False`` if ``proc`` ended or the time ran out first."""
    return ports.wait_until(lambda: ports.is_listening(port), lambda: proc.poll() is None, timeout_s)


def wait_for_superlink(address: str, timeout_s: float = SUPERLINK_WAIT_S) -> bool:
    """Wait until the SuperLink at ``address`` listens (``False`` after ``timeout_s``).

    The SuperNode is started only then: started earlier, it backs off exponentially between failed
    connection attempts (seconds by the time a starting SuperLink answers), and the first round waits
    for it.
    """
    started = time.monotonic()
    ready = ports.wait_until(lambda: ports.is_reachable(address), timeout_s=timeout_s, poll_s=0.1)
    log.info(
        "SuperLink at %s %s after %.1f s", address, "listens" if ready else "not listening", time.monotonic() - started
    )
    return ready


def supernode_argv(job: LearnerJob, warm: bool = WARM_CLIENTAPPS) -> list[str]:
    """The SuperNode command line (Flower's, through :mod:`fl_actors.supernode_launcher` for its
    shorter poll): insecure link, own Runtime API port, no run-time installs."""
    isolation = ["--isolation", "process"] if warm else []
    return supernode_launcher.argv(
        [
            "--insecure",
            "--superlink",
            job.superlink_address,
            "--host",
            "127.0.0.1",
            "--port",
            str(job.supernode_port),
            "--node-config",
            f"learner-index={job.learner_index}",
            *isolation,
        ]
    )


def supernode_env(job: LearnerJob, flwr_home: Path) -> dict[str, str]:
    """The SuperNode's (and its ClientApps') environment, without the actor's secrets: user code
    runs in the ClientApp processes and needs neither the broker nor MLflow."""
    child = {key: value for key, value in os.environ.items() if key not in env.SECRETS}
    child.update(env.flower_env(str(flwr_home)))
    child[env.DATA_DIR] = job.data_dir
    return child


def run(job: LearnerJob, workdir: Path, reporter: EventReporter) -> int:
    """Load data, report, run the SuperNode until it ends; return the exit code."""
    try:
        counts = load_data(job)
    except Exception as exc:
        cause = f"learner {job.learner_index} could not load its data from {job.data_dir}: {type(exc).__name__}: {exc}"
        log.error("%s\n%s", cause, traceback.format_exc())
        reporter.publish(EventKind.LEARNER_FAILED, cause, {"learner_index": job.learner_index})
        return 1
    reporter.publish(
        EventKind.LEARNER_READY,
        f"learner {job.learner_index} loaded {counts['samples']} training samples",
        {"learner_index": job.learner_index, **counts},
    )
    supernode: subprocess.Popen[bytes] | None = None
    executor: subprocess.Popen[bytes] | None = None
    try:
        flower_env = supernode_env(job, workdir / "flwr-home")
        if WARM_CLIENTAPPS:  # imports now; it asks for tasks once the SuperNode's Runtime API listens
            executor, _ = processes.spawn_logged(
                clientapp_executor.argv(runtime_api_address(job), job.app_dir),
                flower_env,
                workdir,
                prefix="[superexec] ",
            )
        wait_for_superlink(job.superlink_address)
        supernode, tail = processes.spawn_logged(supernode_argv(job), flower_env, workdir, prefix="[supernode] ")
        code = supernode.wait()
        tail.join()
        if code != 0:
            cause = (
                f"learner {job.learner_index}: the Flower SuperNode exited with code {code}: "
                f"{error_summary(tail.text())}"
            )
            reporter.publish(
                EventKind.LEARNER_FAILED, cause, {"learner_index": job.learner_index, "log_tail": tail.text()}
            )
            return 1
        return 0
    finally:
        processes.stop_trees(supernode, executor)


def main() -> int:
    """Entry point: run the job from ``FLOPS_JOB``; an unexpected error ends it with a traceback."""
    # No LEARNER_FAILED for a crash: the manager sees the exit and k-of-n participation may go on.
    return run_actor(LearnerJob, Source.LEARNER, Stage.ACTOR_DEPLOYMENT, workdir_name, run)


if __name__ == "__main__":
    sys.exit(main())
