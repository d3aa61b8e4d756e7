"""The contract check that runs the repo: imports it in a runtime and probes ModelManager()."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from flops_common.untrusted import hand_over, untrusted_popen_options
from image_builder import probe
from image_builder.errors import BuildError
from image_builder.steps import BuildStep

IMPORT_CHECK_TIMEOUT_S = 300
# The repo's code runs here: it sees no FLOps secrets, only what a process needs.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "TZ")


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


def format_failure(result: dict[str, Any]) -> str:
    """The user-facing cause of a failed probe."""
    cause = f"{result.get('what', 'import check')} failed: {result.get('error', 'unknown error')}"
    if result.get("file"):
        cause += f" ({result['file']} line {result.get('line')})"
    return cause


def remove_bytecode(app_dir: Path) -> None:
    """Delete the ``__pycache__`` directories a probe wrote into the app."""
    for cache in sorted(app_dir.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)


class ImportProbe(AbstractContextManager["ImportProbe"]):
    """One probe process (``probe.py``) in a runtime; use as a context manager, it is killed on exit.

    With ``write_bytecode`` the runtime keeps the bytecode of everything the repo imports, so actor
    processes start faster (the app gets ``__pycache__`` directories too: see :func:`remove_bytecode`).
    """

    def __init__(self, python: Path, app_dir: Path, write_bytecode: bool = False) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="flops-probe-"))
        self._result = self._scratch / "result.json"
        self._stderr_path = self._scratch / "stderr.txt"
        data_dir = self._scratch / "data"
        data_dir.mkdir()
        # The repo's code runs unprivileged when the orchestrator named a user for it; it writes its
        # result here.
        hand_over(self._scratch)
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update({"FLOPS_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"})
        flags = ["-I"] if write_bytecode else ["-I", "-B"]
        with open(self._stderr_path, "wb") as stderr:
            self._proc = subprocess.Popen(
                [str(python), *flags, probe.__file__, str(app_dir), str(self._result)],
                cwd=app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                **untrusted_popen_options(),
            )

    def result(self, timeout_s: float = IMPORT_CHECK_TIMEOUT_S) -> dict[str, Any]:
        """Wait for the probe; return its summary or raise BuildError(IMPORT_CHECK) with the cause."""
        try:
            returncode = self._proc.wait(timeout=max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            raise BuildError(BuildStep.IMPORT_CHECK, f"importing the repo took longer than {timeout_s:.0f} s") from None
        if not self._result.is_file():
            stderr = self._stderr_path.read_text(encoding="utf-8", errors="replace")
            raise BuildError(
                BuildStep.IMPORT_CHECK,
                f"the import check exited with code {returncode} without a result: {_tail(stderr)}",
            )
        result: dict[str, Any] = json.loads(self._result.read_text(encoding="utf-8"))
        if not result.get("ok"):
            raise BuildError(BuildStep.IMPORT_CHECK, format_failure(result))
        return result

    def close(self) -> None:
        """Kill the probe if it still runs and remove its scratch files."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_imports(
    python: Path, app_dir: Path, timeout_s: float = IMPORT_CHECK_TIMEOUT_S, write_bytecode: bool = False
) -> dict[str, Any]:
    """Probe the app in the runtime of ``python``; return the probe's summary or raise BuildError."""
    with ImportProbe(python, app_dir, write_bytecode) as running:
        return running.result(timeout_s)


def check_imports_in(
    runtimes: dict[str, Path], app_dir: Path, timeout_s: float = IMPORT_CHECK_TIMEOUT_S
) -> dict[str, dict[str, Any]]:
    """Probe the app in several runtimes at once (keeping their bytecode); results by runtime name.

    A failure is reported for the first runtime in ``runtimes`` order that failed; the cause of any
    runtime but the first names it. The app is left without ``__pycache__``.
    """
    deadline = time.monotonic() + timeout_s
    probes = {name: ImportProbe(python, app_dir, write_bytecode=True) for name, python in runtimes.items()}
    try:
        results: dict[str, dict[str, Any]] = {}
        failures: dict[str, BuildError] = {}
        for name, running in probes.items():
            try:
                results[name] = running.result(deadline - time.monotonic())
            except BuildError as exc:
                failures[name] = exc
    finally:
        for running in probes.values():
            running.close()
        remove_bytecode(app_dir)
    for index, name in enumerate(runtimes):
        if name in failures:
            cause = failures[name].cause
            raise BuildError(BuildStep.IMPORT_CHECK, cause if index == 0 else f"in the {name} runtime: {cause}")
    return results
