"""Starting a Flower SuperLink for one project and waiting until it serves.

Flower 1.41's SuperLink serves its Fleet, Control and Runtime APIs on one HTTP port
(``--port``), so one port per project is all it needs. With ``warm_serverapp`` the SuperLink runs in
``--isolation process`` mode and FLOps' warm ServerApp runner (:mod:`fl_actors.serverapp_executor`),
started *before* the SuperLink so that it imports MLflow and the ML framework while the SuperLink
starts, takes the run's ServerApp task instead of Flower's SuperExec.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from fl_actors import processes, serverapp_executor
from fl_actors.diagnostics import error_summary


class SuperLinkError(RuntimeError):
    """The SuperLink did not start; ``output`` holds its last lines."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def superlink_argv(port: int, host: str = "127.0.0.1", warm_serverapp: bool = False) -> list[str]:
    """The command line of a SuperLink that never installs app dependencies at run time; with
    ``warm_serverapp`` it leaves the ServerApp to an external SuperExec (``--isolation process``)."""
    isolation = ["--isolation", "process"] if warm_serverapp else []
    return [
        processes.executable("flower-superlink"),
        "--insecure",
        "--host",
        host,
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
        *isolation,
    ]


def start_serverapp_runner(
    port: int, app_dir: str, flavor: str, env: Mapping[str, str], cwd: Path, host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[bytes], processes.LogTail]:
    """Start the warm ServerApp runner for the SuperLink on ``host:port`` (it waits for the SuperLink)."""
    return processes.spawn_logged(
        serverapp_executor.argv(f"{host}:{port}", app_dir, flavor), env, cwd, prefix="[serverapp-runner] "
    )


def is_serving(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether an HTTP server answers on ``host:port`` (any HTTP status counts)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def start_superlink(
    port: int,
    env: Mapping[str, str],
    cwd: Path,
    timeout_s: float = 300.0,
    host: str = "127.0.0.1",
    warm_serverapp: bool = False,
) -> tuple[subprocess.Popen[bytes], processes.LogTail]:
    """Start ``flower-superlink`` and return once it answers HTTP; raise ``SuperLinkError`` if not."""
    if is_serving(host, port):
        raise SuperLinkError(f"port {port} on {host} is already in use: cannot start the SuperLink")
    proc, tail = processes.spawn_logged(superlink_argv(port, host, warm_serverapp), env, cwd, prefix="[superlink] ")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail.join()
            raise SuperLinkError(
                f"the SuperLink exited with code {proc.returncode}: {error_summary(tail.text())}", tail.text()
            )
        if is_serving(host, port):
            return proc, tail
        time.sleep(0.25)
    processes.stop_tree(proc)
    raise SuperLinkError(
        f"the SuperLink did not answer on {host}:{port} within {timeout_s:.0f} s: {error_summary(tail.text())}",
        tail.text(),
    )
