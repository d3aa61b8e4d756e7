"""Child processes are stopped with all their descendants, even ones that left the group."""

from __future__ import annotations

import os
import sys
import time

from fl_actors import processes

# A child that starts a grandchild in its own session (like Flower's SuperLink does), then waits.
_TREE = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "time.sleep(60)\n"
)


def _wait_for_descendants(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = processes.descendants(pid)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} descendants of {pid}")


def test_stop_tree_stops_detached_grandchildren() -> None:
    proc = processes.spawn([sys.executable, "-c", _TREE], os.environ)
    grandchildren = _wait_for_descendants(proc.pid, 2)
    processes.stop_tree(proc, grace_s=5)
    assert proc.returncode is not None
    for pid in grandchildren:
        assert not processes._alive(pid)


def test_a_child_ignoring_sigterm_is_killed() -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc, tail = processes.spawn_logged([sys.executable, "-c", code], os.environ, None, prefix="[t] ")
    deadline = time.monotonic() + 10
    while "ready" not in tail.text() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    processes.stop_tree(proc, grace_s=0.5)
    assert proc.returncode == -9
    assert time.monotonic() - started < 5


def test_spawn_logged_keeps_the_tail() -> None:
    proc, tail = processes.spawn_logged(
        [sys.executable, "-c", "print('\\n'.join(str(i) for i in range(100)))"], os.environ, None, prefix=""
    )
    proc.wait(timeout=10)
    tail.join()
    assert tail.text(3) == "97\n98\n99"
