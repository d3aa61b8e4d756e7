"""Builds actor runtimes (relocatable virtualenvs) with uv."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from image_builder.actor_runtime import RUNTIME_PACKAGES, copy_runtime_packages
from image_builder.uv_tool import UvError, run_uv, uv_environment

COMPLETE_MARKER = ".flops-env-complete"
OFFLINE_FIRST_ENV = "FLOPS_UV_OFFLINE_FIRST"
WARM_UP_TIMEOUT_S = 600
_WARM_UP = """
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        pass
"""


def offline_first() -> bool:
    """Whether installs try uv's cache alone before asking the index (``FLOPS_UV_OFFLINE_FIRST``, default on).

    With a warm cache this skips seconds of index revalidation; unpinned requirements then resolve to
    the newest version the cache knows. Anything the cache lacks falls back to the index.
    """
    return os.environ.get(OFFLINE_FIRST_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def base_python() -> str:
    """The interpreter the builder itself runs on (outside any virtualenv)."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def env_python(env: Path) -> Path:
    """The Python executable of a runtime."""
    return env / "bin" / "python"


def site_packages(env: Path) -> Path:
    """The ``site-packages`` directory of a runtime built with the builder's Python."""
    return env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def is_complete(env: Path) -> bool:
    """Whether ``env`` was fully built (its marker is written last)."""
    return (env / COMPLETE_MARKER).is_file() and env_python(env).exists()


def create_runtime(
    env: Path,
    requirements: Sequence[str],
    find_links: Sequence[str] = (),
    requirement_files: Sequence[Path] = (),
    constraint_files: Sequence[Path] = (),
    packages: Sequence[str] = RUNTIME_PACKAGES,
) -> None:
    """Create a relocatable virtualenv at ``env`` and install ``requirements`` plus the FLOps ``packages``.

    The env can be renamed afterwards (entry points locate their Python relatively).
    Raises UvError when uv fails (e.g. the requirements cannot be satisfied).
    """
    uv_env = uv_environment(env.parent)
    run_uv(["venv", "--no-config", "--quiet", "--relocatable", "--python", base_python(), str(env)], uv_env)
    args = ["pip", "install", "--no-config", "--python", str(env_python(env))]
    for link in find_links:
        args += ["--find-links", link]
    for path in requirement_files:
        args += ["--requirement", str(path)]
    for path in constraint_files:
        args += ["--constraint", str(path)]
    args += ["--", *requirements]
    if offline_first():
        try:
            run_uv([*args[:2], "--offline", *args[2:]], uv_env)
        except UvError:
            run_uv(args, uv_env)
    else:
        run_uv(args, uv_env)
    copy_runtime_packages(site_packages(env), packages)


def warm_up(envs: Sequence[tuple[Path, Sequence[str]]]) -> None:
    """Import each env's modules once, all envs in parallel, so their bytecode is written.

    Actor processes then start without compiling (they may run with PYTHONDONTWRITEBYTECODE=1, and a
    Flower SuperNode starts one per message). Modules that fail to import are skipped.
    """
    procs = [
        subprocess.Popen(
            [str(env_python(env)), "-I", "-c", _WARM_UP, *modules],
            cwd=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for env, modules in envs
        if modules
    ]
    deadline = time.monotonic() + WARM_UP_TIMEOUT_S
    try:
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def mark_complete(env: Path, record: dict[str, object]) -> None:
    """Write the marker that makes ``env`` reusable (last thing written into a runtime)."""
    payload = {"created_at": time.time(), **record}
    (env / COMPLETE_MARKER).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def freeze(env: Path) -> str:
    """``name==version`` lines of everything installed in ``env``."""
    return run_uv(["pip", "freeze", "--no-config", "--python", str(env_python(env))], uv_environment(env))
