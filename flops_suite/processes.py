"""Background processes started by the suite, remembered by PID file and ended by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (and is not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def terminate(pid: int, grace_s: float, poll_s: float, group: bool) -> None:
    """SIGTERM ``pid`` (its process group when ``group``) and wait up to ``grace_s`` for it to end, reaping it."""
    with contextlib.suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(poll_s)


class ManagedProcess:
    """One service process: its command, log and PID file under the suite's run dir."""

    def __init__(
        self,
        name: str,
        run_dir: Path,
        command: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self._env = env
        self._cwd = cwd
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = run_dir / f"{name}.log"

    @property
    def pid(self) -> int | None:
        """The PID from the PID file, if that process still runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, ready: Callable[[], bool], timeout_s: float = 60.0) -> int:
        """Start (unless running) and wait until ``ready()``; raises with the log tail if it dies or stalls."""
        if (pid := self.pid) is not None:
            return pid
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self._env or {})}
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self._cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {proc.returncode}: {self.tail()}")
            if ready():
                return proc.pid
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s: {self.tail()}")

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM its process group, SIGKILL after ``grace_s``."""
        pid = self.pid
        if pid is not None:
            terminate(pid, grace_s, poll_s=0.1, group=True)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
        self.pid_file.unlink(missing_ok=True)

    def tail(self, lines: int = 8) -> str:
        """The end of its log."""
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ProcessService:
    """A suite service that runs as one :class:`ManagedProcess` (``self._process``)."""

    _process: ManagedProcess

    @property
    def pid(self) -> int | None:
        """The PID of the process we started, if it runs."""
        return self._process.pid
