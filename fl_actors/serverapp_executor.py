"""FLOps' SuperExec for the aggregator (``python -m fl_actors.serverapp_executor``): a warm ServerApp.

With the SuperLink's default isolation, Flower's SuperLink starts ``flower-superexec`` once it serves,
and that starts a fresh ``flwr-serverapp`` interpreter for the run, which imports Flower, MLflow, the
model flavor and the repo's ML framework before the first round: seconds on the critical path of
every project. With the SuperLink in ``--isolation process`` mode the SuperExec is ours to run
(Flower's documented way to place ServerApps elsewhere): the aggregator starts this one *next to*
the SuperLink, so all those imports happen while the SuperLink starts and the run is submitted. For
the run's ServerApp task it then ``fork()``\\ s a child that runs Flower's own ``run_serverapp`` with
the task's token, output mirrored to the SuperLink's run log exactly as ``flwr-serverapp`` does.
The task protocol and the app loading (from the FAB Flower installed for the run) are Flower's; the
loop is the learners' (:func:`fl_actors.clientapp_executor.serve`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from fl_actors import clientapp_executor

log = logging.getLogger("fl_actors.serverapp_executor")

SERVER_APP_TASK = "flwr-serverapp"  # flwr.supercore.constant.TaskType.SERVER_APP
SERVER_APP_MODULES = (
    "flwr.superlink.runtime.run_serverapp",
    "flwr.serverapp",
    "flwr.serverapp.strategy",
    "fl_actors.server_app",
    "fl_actors.tracking",
    "mlflow",
)


def modules_for(flavor: str) -> tuple[str, ...]:
    """What the ServerApp of a ``flavor`` project imports before its first round."""
    return (*SERVER_APP_MODULES, f"mlflow.{flavor}")


def _run_child(runtime_api_address: str, token: str, parent_pid: int) -> None:
    """In the forked child: run the ServerApp task as ``flwr-serverapp`` would, then exit."""

    def task() -> None:
        from queue import Queue

        from flwr.supercore.logger import mirror_output_to_queue, restore_output
        from flwr.superlink.runtime.run_serverapp import run_serverapp

        log_queue: Queue[str | None] = Queue()
        mirror_output_to_queue(log_queue)
        run_serverapp(
            runtime_api_address=runtime_api_address,
            log_queue=log_queue,
            token=token,
            insecure=True,
            certificates=None,
            parent_pid=parent_pid,
            runtime_dependency_install=False,
        )
        restore_output()

    clientapp_executor.run_task_and_exit(task, "ServerApp")


def argv(runtime_api_address: str, app_dir: str | None, flavor: str, parent_pid: int | None = None) -> list[str]:
    """The command line that starts this executor with the current interpreter."""
    command = [
        sys.executable,
        "-m",
        "fl_actors.serverapp_executor",
        "--runtime-api-address",
        runtime_api_address,
        "--flavor",
        flavor,
        "--parent-pid",
        str(os.getpid() if parent_pid is None else parent_pid),
    ]
    return [*command, "--preload-app-dir", app_dir] if app_dir else command


def poll_interval(environ: Mapping[str, str]) -> float:
    """The AcquireTask interval (Flower's own SuperExec variable), in seconds."""
    return float(environ.get(clientapp_executor.POLL_ENV) or clientapp_executor.DEFAULT_POLL_S)


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: preload, then serve the SuperLink's ServerApp tasks until SIGTERM or the parent ends."""
    parser = argparse.ArgumentParser(description="FLOps SuperExec: a warm, forked ServerApp process")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--flavor", required=True)
    parser.add_argument("--preload-app-dir", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    opts = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic"):  # a line per HTTP call; alembic's plugin setup (Flower's LinkState imports)
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    app_dir = str(Path(opts.preload_app_dir).resolve()) if opts.preload_app_dir else None
    forgotten = clientapp_executor.preload(app_dir, modules_for(opts.flavor))
    log.info(
        "preloaded in %.1f s (repo modules left to the task: %s)",
        time.monotonic() - started,
        ", ".join(sorted(forgotten)) or "none",
    )
    with contextlib.suppress(KeyboardInterrupt):
        clientapp_executor.serve(
            opts.runtime_api_address, poll_interval(os.environ), opts.parent_pid, SERVER_APP_TASK, _run_child
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
