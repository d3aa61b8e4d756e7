"""The SuperNode launcher: the Flower source it patches is the one it was written for, and the cap holds."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fl_actors import pacing, supernode_launcher

# The patched module of flwr 1.41.0. When this changes, re-read the module: the launcher assumes its
# only uses of ``time`` are the waits below, all of them polls that may end sooner.
PATCHED_SHA256 = "d6342f743fdf768f63305b88414ae2654e9a21bda153739da19c608e8d375067"
EXPECTED_TIME_USES = [("sleep", 3), ("sleep", 0.5), ("sleep", 0.5)]


def _patched_source() -> Path:
    spec = importlib.util.find_spec(supernode_launcher.PATCHED_MODULE)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


def test_flower_is_the_pinned_release() -> None:
    assert importlib.metadata.version("flwr") == "1.41.0"


def test_patched_module_source_is_unchanged() -> None:
    digest = hashlib.sha256(_patched_source().read_bytes()).hexdigest()
    assert digest == PATCHED_SHA256, "flwr's SuperNode loop changed: re-check fl_actors/supernode_launcher.py"


def test_the_loop_uses_time_only_for_its_poll_waits() -> None:
    tree = ast.parse(_patched_source().read_text())
    # ``time`` is a module global bound by ``import time`` (so replacing it reaches every use) ...
    assert any(
        isinstance(node, ast.Import) and any(a.name == "time" and a.asname is None for a in node.names)
        for node in tree.body
    )
    assert not any(isinstance(node, ast.ImportFrom) and node.module == "time" for node in ast.walk(tree))
    # ... and every use of it is a sleep between two polls.
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "time":
            uses.append(node)
    calls = [
        (node.func.attr, node.args[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
    ]
    assert len(uses) == len(calls)
    assert sorted(calls, key=repr) == sorted(EXPECTED_TIME_USES, key=repr)


def test_paced_sleep_shortens_busy_waits_and_paces_idle_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    clock = [100.0]
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    paced = supernode_launcher.PacedSleep(0.2)
    paced.sleep(0.5)  # waiting for the ClientApp's reply: in-process checks, always short
    assert slept == [supernode_launcher.BUSY_WAIT_S]
    paced.sleep(3)  # right after the reply: the next message is due, pull again soon
    clock[0] += 0.5
    paced.sleep(3)  # a tenth of the time since the last busy wait
    clock[0] += 10
    paced.sleep(3)  # idle for long: back to the cap
    assert slept[1:] == [pacing.FLOOR_S, pytest.approx(0.05), 0.2]
    paced.sleep(0.05)
    paced.sleep(3)  # a busy wait restarts the pace
    assert slept[-2:] == [supernode_launcher.BUSY_WAIT_S, pacing.FLOOR_S]
    assert paced.cap_s == 0.2
    assert paced.perf_counter is time.perf_counter


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 0.2), ("", 0.2), ("0.05", 0.05), ("3", 3.0), ("0", 0.2), ("-1", 0.2), ("soon", 0.2), ("nan", 0.2)],
)
def test_poll_interval_setting(raw: str | None, expected: float) -> None:
    environ = {} if raw is None else {supernode_launcher.POLL_ENV: raw}
    assert supernode_launcher.poll_interval(environ) == expected


def test_launcher_patches_flower_and_runs_its_supernode_cli() -> None:
    # A real launcher process: Flower's own argument parser answers --help after the patch was applied.
    code = (
        "import sys\n"
        "from fl_actors import supernode_launcher as s\n"
        "loop = s.patch(0.1)\n"
        "assert isinstance(loop.time, s.PacedSleep) and loop.time.cap_s == 0.1\n"
        "from flwr.supercore.inflatable import inflatable_utils as u\n"
        "assert u.pull_objects.__kwdefaults__['initial_backoff'] == 0.02\n"
        "sys.argv = ['x', '--help']\n"
        "s.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--superlink" in done.stdout and "--isolation" in done.stdout


def test_argv_uses_this_interpreter() -> None:
    argv = supernode_launcher.argv(["--insecure"])
    assert argv == [sys.executable, "-m", "fl_actors.supernode_launcher", "--insecure"]
