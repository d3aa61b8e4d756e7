"""FLOps' SuperExec for a learner (``python -m fl_actors.clientapp_executor``): warm ClientApp processes.

Flower's own SuperExec starts one ``flwr-clientapp`` process per message, and each spends seconds
importing Flower, numpy and the ML framework before it trains for a fraction of a second. With the
SuperNode in ``--isolation process`` mode the SuperExec is ours to run (Flower's documented way to
place ClientApps elsewhere): this one imports all of that **once**, then, for every task it
acquires from the SuperNode's Runtime API, ``fork()``\\ s a child that runs Flower's own
``run_clientapp`` with the task's token. Each message still runs in its own short-lived process,
exactly as with Flower's executor (fresh state, a crash only fails that message, the token protocol
and the app loading are Flower's), only without the imports.

What is preloaded: Flower's ClientApp runtime, FLOps' ClientApp and the third-party modules the
repo's ``model_manager`` imports. The repo's own modules are imported to find those and then
forgotten, so each child loads the user's code from the FAB Flower installed for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from fl_actors import object_pulls, pacing, ports

log = logging.getLogger("fl_actors.clientapp_executor")

POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"  # the same variable Flower's SuperExec reads
DEFAULT_POLL_S = 0.2
CLIENT_APP_TASK = "flwr-clientapp"  # flwr.supercore.constant.TaskType.CLIENT_APP
CLIENT_APP_MODULES = ("flwr.supernode.runtime.run_clientapp", "flwr.clientapp", "fl_actors.client_app")


def preload(app_dir: str | None, modules: Sequence[str] = CLIENT_APP_MODULES) -> list[str]:
    """Import ``modules`` (what every task process needs) and the third-party modules the repo's
    ``model_manager`` imports; return the names of the repo modules imported (and forgotten)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the task process meets (and reports) the same error: only warm less
            log.warning("could not preload %s (%s: %s)", name, type(exc).__name__, exc)
    if not app_dir:
        return []
    repo = Path(app_dir).resolve()
    sys.path.insert(0, str(repo))
    try:
        importlib.import_module("model_manager")
    except Exception as exc:  # the child reports the real error to the server; only warm less
        log.warning("could not preload the repo's model_manager (%s: %s)", type(exc).__name__, exc)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(repo))
    return forget_modules_under(repo)


def forget_modules_under(directory: Path) -> list[str]:
    """Drop modules loaded from ``directory`` (the user's code) from ``sys.modules``."""
    gone = []
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(directory):
            del sys.modules[name]
            gone.append(name)
    return gone


def run_task_and_exit(task: Callable[[], None], what: str) -> NoReturn:
    """In a forked child: run one Flower task with default signal handling, then exit with its code.

    Flower's runtimes end every task with ``sys.exit``; anything else is logged and exits 1.
    """
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        task()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        log.exception("%s task failed", what)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run_child(runtime_api_address: str, token: str, parent_pid: int) -> None:
    """In the forked child: run one ClientApp task with Flower's own runtime, then exit."""

    def task() -> None:
        from flwr.supernode.runtime.run_clientapp import run_clientapp

        run_clientapp(runtime_api_address=runtime_api_address, token=token, insecure=True, parent_pid=parent_pid)

    run_task_and_exit(task, "ClientApp")


def _reap(children: dict[int, int | None]) -> int:
    """Collect finished children (pid -> its pidfd, closed here); how many had finished."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        pidfd = children.pop(pid, None)
        if pidfd is not None:
            os.close(pidfd)
        reaped += 1


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` ends (``None`` where the kernel has none)."""
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _wait_for_an_exit(children: dict[int, int | None], timeout_s: float) -> None:
    """Sleep until one of ``children`` ends or ``timeout_s`` passed."""
    pidfds = [fd for fd in children.values() if fd is not None]
    if pidfds:
        select.select(pidfds, [], [], timeout_s)
    else:
        time.sleep(timeout_s)


def serve(
    runtime_api_address: str,
    poll_s: float,
    parent_pid: int | None,
    task_type: str = CLIENT_APP_TASK,
    run_child: Callable[[str, str, int], None] = _run_child,
) -> None:
    """Acquire ``task_type`` tasks from the Runtime API and fork a warm child for each, until stopped.

    ``run_child(runtime_api_address, token, parent_pid)`` runs one task in the forked child and never
    returns. While a task runs, polls are ``poll_s`` apart unless it ends sooner: its node hands out
    one message at a time, so the next comes only after this task's reply. Once it ended they are paced
    (:class:`~fl_actors.pacing.Pacer`, at most ``poll_s`` apart): the next message of a round comes
    soon after the last reply, and polling fast meanwhile would take the CPU from the task itself.
    The ServerApp runner (:mod:`fl_actors.serverapp_executor`) serves its tasks the same way.
    """
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    object_pulls.retry_sooner()  # before any fork: every task process pulls its message's objects
    client = RuntimeHttpClient.from_server_address(
        server_address=runtime_api_address,
        insecure=True,
        root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
        retry_invoker=make_simple_http_retry_invoker(),
    )
    request = AcquireTaskRequest(supported_task_types=[task_type])
    host, port = ports.split_address(runtime_api_address)
    if ports.is_loopback(host):  # started before the API's server: wait without connecting to its port
        parent_alive = lambda: parent_pid is None or os.getppid() == parent_pid  # noqa: E731
        if not ports.wait_until(lambda: ports.is_listening(port), parent_alive, timeout_s=math.inf):
            client.close()
            log.info("the learner is gone; stopping")
            return
    pacer = pacing.Pacer(cap_s=poll_s)
    children: dict[int, int | None] = {}  # task processes not reaped yet: pid -> pidfd
    try:
        while True:
            if parent_pid is not None and os.getppid() != parent_pid:
                log.info("the learner is gone; stopping")
                return
            if _reap(children):
                pacer.restart()
            try:
                answer = client.AcquireTask(request)
            except Exception as exc:  # the SuperNode is starting or going away: try again
                log.debug("AcquireTask failed: %s", exc)
                time.sleep(max(poll_s, 0.5))
                continue
            if answer.HasField("task") and answer.token:
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    run_child(runtime_api_address, answer.token, os.getppid())
                children[pid] = _pidfd(pid)
                continue  # more tasks may be waiting: ask again at once
            if children:
                _wait_for_an_exit(children, poll_s)
            else:
                time.sleep(pacer.interval())
    finally:
        client.close()
        for pidfd in children.values():
            if pidfd is not None:
                os.close(pidfd)


def argv(runtime_api_address: str, app_dir: str | None) -> list[str]:
    """The command line that starts this executor with the current interpreter."""
    command = [sys.executable, "-m", "fl_actors.clientapp_executor", "--runtime-api-address", runtime_api_address]
    if app_dir:
        command += ["--preload-app-dir", app_dir]
    return [*command, "--parent-pid", str(os.getpid())]


def main(args: list[str] | None = None) -> int:
    """Entry point: preload, then serve tasks until SIGTERM or the parent ends."""
    parser = argparse.ArgumentParser(description="FLOps SuperExec: warm, forked ClientApp processes")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--preload-app-dir", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    opts = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Runtime API call otherwise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    forgotten = preload(opts.preload_app_dir)
    log.info(
        "preloaded in %.1f s (repo modules left to each task: %s)",
        time.monotonic() - started,
        ", ".join(sorted(forgotten)) or "none",
    )
    poll_s = float(os.environ.get(POLL_ENV) or DEFAULT_POLL_S)
    with contextlib.suppress(KeyboardInterrupt):
        serve(opts.runtime_api_address, poll_s, opts.parent_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
