"""Child processes of the actors: started in their own process group, stopped with all descendants.

Flower detaches some of its helpers (the SuperLink starts its SuperExec in a new session), so
killing a process group is not enough: the actors also walk ``/proc`` for descendants and, where
the kernel allows, become a child subreaper so orphaned helpers are re-parented to them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36


def executable(name: str) -> str:
    """The path of a command of this environment (next to the interpreter), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed in this environment")
    return found


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); ``False`` if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _parent_map() -> dict[int, int]:
    """pid -> parent pid of every process visible in ``/proc``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold spaces
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """All living descendants of ``pid`` (children first)."""
    parents = _parent_map()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        return state[state.rfind(")") + 2] != "Z"
    except OSError:
        return False


def _reap(pids: Sequence[int]) -> None:
    """Collect the exit status of those ``pids`` that are our finished children (orphans we adopted
    as subreaper); children we hold a ``Popen`` for are left to ``Popen.wait``."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | Path | None = None,
    stdout: IO[bytes] | int | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in a new process group (so it and its helpers can be signalled together)."""
    return subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        start_new_session=True,
    )


def stop_trees(*procs: subprocess.Popen[bytes] | None) -> None:
    """``stop_tree`` of each process that was started (None: never started), in order."""
    for proc in procs:
        if proc is not None:
            stop_tree(proc)


def stop_tree(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """Stop a child, its process group and every descendant: SIGTERM, then SIGKILL after ``grace_s``."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        _signal(proc.pid, signal.SIGTERM)
    stop_pids(tree, grace_s)
    try:
        proc.wait(timeout=max(grace_s, 0.5))
    except subprocess.TimeoutExpired:
        log.warning("process %d ignored SIGTERM; killing it", proc.pid)
        _signal(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def stop_descendants_of_self(grace_s: float = 5.0) -> None:
    """Stop every remaining descendant of this process (helpers that escaped their group).

    Do not call it while holding ``Popen`` objects you still want exit codes from."""
    stop_pids(descendants(os.getpid()), grace_s)


def stop_pids(pids: Sequence[int], grace_s: float = 5.0) -> None:
    """SIGTERM the given processes (and their groups when they lead one), then SIGKILL stragglers."""
    if not pids:
        return
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pids)
        if not any(_alive(pid) for pid in pids):
            return
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            log.warning("process %d ignored SIGTERM; killing it", pid)
            _signal(pid, signal.SIGKILL)
    time.sleep(0.1)
    _reap(pids)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


class LogTail:
    """Copies a child's output to this process's stdout and keeps its last lines."""

    def __init__(self, stream: IO[bytes], prefix: str, keep: int = 200) -> None:
        import collections
        import threading

        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._prefix = prefix
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        import sys

        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._lines.append(line)
            sys.stdout.write(f"{self._prefix}{line}\n")
            sys.stdout.flush()
        stream.close()

    def text(self, lines: int = 40) -> str:
        """The last ``lines`` lines of output."""
        return "\n".join(list(self._lines)[-lines:])

    def join(self, timeout_s: float = 2.0) -> None:
        """Wait a little for the output to drain (after the child exited)."""
        self._thread.join(timeout_s)


def spawn_logged(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | Path | None, prefix: str
) -> tuple[subprocess.Popen[bytes], LogTail]:
    """Start a child in its own process group; its output goes to our stdout and a tail buffer."""
    proc = spawn(argv, env, cwd=cwd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    return proc, LogTail(proc.stdout, prefix)
