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
from image_builder.bytecode_reuse import adopt
from image_builder.uv_tool import UvError, run_uv, uv_environment

COMPLETE_MARKER = ".flops-env-complete"
OFFLINE_FIRST_ENV = "FLOPS_UV_OFFLINE_FIRST"
COMPILE_TIMEOUT_S = 600
# Test suites inside packages (a quarter of an aggregator runtime's modules: pandas, scipy, sklearn,
# numpy) are never imported by an actor: not worth compiling.
NOT_COMPILED = r"[/\\]tests[/\\]"


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


def _compileall(env: Path) -> None:
    """``compileall`` of an env's ``site-packages`` on every core; files that do not compile (templates,
    Python 2 leftovers) are skipped."""
    with contextlib.suppress(subprocess.TimeoutExpired):  # modules left uncompiled compile at first import
        subprocess.run(
            [
                str(env_python(env)),
                "-I",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "-x",
                NOT_COMPILED,
                str(site_packages(env)),
            ],
            cwd=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=COMPILE_TIMEOUT_S,
            check=False,
        )


def adopt_bytecode(donor: Path, target: Path) -> int:
    """Give the modules of the ``site-packages`` dir ``target`` the ``.pyc`` files ``donor`` has for the
    same source (:func:`image_builder.bytecode_reuse.adopt`); return how many. Modules that already have
    bytecode are left alone."""
    adopted = 0
    for pyc in donor.rglob("__pycache__/*.pyc"):
        package = pyc.parent.parent
        module = pyc.name.split(".", 1)[0] + ".py"
        dst_dir = target / package.relative_to(donor)
        dst_pyc = dst_dir / "__pycache__" / pyc.name
        if not dst_pyc.exists() and (dst_dir / module).is_file():
            adopted += adopt(str(pyc), str(package / module), str(dst_dir / module), str(dst_pyc))
    return adopted


def share_bytecode(source: Path, target: Path) -> int:
    """Give ``target``'s modules the ``.pyc`` files of the runtime ``source`` (:func:`adopt_bytecode`)."""
    return adopt_bytecode(site_packages(source), site_packages(target))


def compile_bytecode(primary: Path, others: Sequence[Path] = ()) -> None:
    """Compile every module of the envs' ``site-packages`` to bytecode, each module once.

    Actor processes run with ``PYTHONDONTWRITEBYTECODE=1`` on some machines (and in read-only images),
    so a module without a ``.pyc`` is compiled again by every process that imports it: ``mlflow``
    alone costs seconds per aggregator start. ``compileall`` (timestamp-checked ``.pyc`` files, valid
    after the env is renamed into place) writes them all once at build time: ``primary`` (the superset)
    first; the ``others`` take its ``.pyc`` of the modules they share and compile only the rest.
    """
    _compileall(primary)
    for env in others:
        share_bytecode(primary, env)
        _compileall(env)


def mark_complete(env: Path, record: dict[str, object]) -> None:
    """Write the marker that makes ``env`` reusable (last thing written into a runtime)."""
    payload = {"created_at": time.time(), **record}
    (env / COMPLETE_MARKER).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def freeze(env: Path) -> str:
    """``name==version`` lines of everything installed in ``env``."""
    return run_uv(["pip", "freeze", "--no-config", "--python", str(env_python(env))], uv_environment(env))
