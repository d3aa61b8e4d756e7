"""Stopping a process a test started, the way an orchestrator undeploys it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def sigterm_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout_s: float, poll_s: float, exit_timeout_s: float
) -> int:
    """Once ``ready()`` holds (within ``timeout_s``, while ``proc`` runs) SIGTERM ``proc``; its exit code.

    ``proc`` is killed if it is still running when this returns or fails.
    """
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert proc.poll() is None, f"exited with {proc.returncode} before it was ready"
            assert time.monotonic() < deadline, f"not ready within {timeout_s} s"
            time.sleep(poll_s)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=exit_timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
