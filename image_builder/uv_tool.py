"""Runs uv: the binary, its environment (cache, link mode) and its resolver messages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

UV_TIMEOUT_S = 1800
MAX_CAUSE_CHARS = 600
_BOX = re.compile("^[\\s\u00d7\u2570\u2500\u25b6\u2502\u251c]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class UvError(Exception):
    """uv failed; ``output`` is its combined stdout and stderr."""

    def __init__(self, args: Sequence[str], returncode: int, output: str) -> None:
        super().__init__(f"uv {' '.join(args[:2])} exited with {returncode}")
        self.returncode = returncode
        self.output = output


def uv_bin() -> str:
    """The uv executable: the one of the ``uv`` package in this environment, else the one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise RuntimeError("uv is not installed") from None
        return found


def cache_dir(env: dict[str, str]) -> Path:
    """uv's cache directory under ``env``."""
    out = subprocess.run([uv_bin(), "cache", "dir"], env=env, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def link_mode(cache: Path, target: Path) -> str:
    """``hardlink`` when the cache and ``target`` share a filesystem (instant installs), else ``copy``."""
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        same = os.stat(probe).st_dev == os.stat(target).st_dev
    except OSError:
        same = False
    return "hardlink" if same else "copy"


def uv_environment(target: Path) -> dict[str, str]:
    """The environment uv runs with: no colors, no Python downloads, the right link mode for ``target``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env.update({"NO_COLOR": "1", "UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never"})
    if "UV_LINK_MODE" not in os.environ:
        env["UV_LINK_MODE"] = link_mode(cache_dir(env), target)
    return env


def run_uv(args: Sequence[str], env: dict[str, str], timeout_s: float = UV_TIMEOUT_S) -> str:
    """Run ``uv ARGS``; return its standard output or raise UvError."""
    proc = subprocess.run(
        [uv_bin(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise UvError(list(args), proc.returncode, proc.stderr + proc.stdout)
    return proc.stdout


def failure_summary(output: str) -> str:
    """The short reason of a failed uv run: the resolver's explanation, else its error lines."""
    lines = [_BOX.sub("", _ANSI.sub("", line)).strip() for line in output.splitlines()]
    lines = [line for line in lines if line and not line.startswith("Using Python")]
    for index, line in enumerate(lines):
        if "No solution found" in line:
            reason_lines: list[str] = []
            for rest in lines[index + 1 :]:
                if rest.startswith("hint:"):
                    break
                reason_lines.append(rest.removeprefix("cause:").strip())
            reason = " ".join(reason_lines)
            text = f"No solution found when resolving dependencies: {reason}".strip()
            break
    else:
        errors = [i for i, line in enumerate(lines) if line.startswith(("error:", "\u00d7", "Caused by:"))]
        text = " ".join(lines[errors[0] :]) if errors else " ".join(lines[-3:])
    return text if len(text) <= MAX_CAUSE_CHARS else text[: MAX_CAUSE_CHARS - 1] + "…"
