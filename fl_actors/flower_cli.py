"""The ``flwr`` command line, as the aggregator uses it: connection, run, list, log stream, stop.

Every call runs ``flwr`` of this environment with ``--format json`` where it exists and turns
``"success": false`` answers into :class:`FlowerCliError` carrying Flower's own message.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fl_actors import processes

CONNECTION = "flops"
CONFIG_FILE = "config.toml"
CLI_TIMEOUT_S = 120.0


class FlowerCliError(RuntimeError):
    """A ``flwr`` command failed; the message is Flower's explanation."""


@dataclass(frozen=True)
class RunStatus:
    """A run's state as ``flwr list`` reports it (e.g. ``running``, ``finished:failed``)."""

    status: str
    details: str
    elapsed_s: float

    @property
    def finished(self) -> bool:
        """Whether the run reached a final state."""
        return self.status.startswith("finished")

    @property
    def succeeded(self) -> bool:
        """Whether the run finished successfully."""
        return self.status == "finished:completed"


def executable(name: str) -> str:
    """The path of a Flower command of this environment (next to the interpreter), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed in this environment")
    return found


def write_connection(flwr_home: Path, address: str) -> None:
    """Write ``FLWR_HOME/config.toml`` with one insecure SuperLink connection named ``flops``."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / CONFIG_FILE).write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\naddress = "{address}"\ninsecure = true\n',
        encoding="utf-8",
    )


class FlowerCli:
    """Runs ``flwr`` commands against one SuperLink connection."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._env = env
        self._cwd = cwd
        self._flwr = executable("flwr")

    def _json(self, args: list[str], timeout_s: float = CLI_TIMEOUT_S) -> dict[str, Any]:
        done = subprocess.run(
            [self._flwr, *args, "--format", "json"],
            env=self._env,
            cwd=self._cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        try:
            answer: dict[str, Any] = json.loads(done.stdout[done.stdout.find("{") :])
        except json.JSONDecodeError as exc:
            text = (done.stdout + done.stderr).strip()[-2000:]
            raise FlowerCliError(f"flwr {args[0]} gave no JSON answer (exit {done.returncode}): {text}") from exc
        if not answer.get("success", False):
            raise FlowerCliError(str(answer.get("error-message", answer)).strip())
        return answer

    def run(self, app_dir: Path, run_config_file: Path) -> int:
        """Submit the app with run config overrides; return the run id."""
        answer = self._json(["run", str(app_dir), CONNECTION, "--run-config", str(run_config_file)])
        return int(answer["run-id"])

    def status(self, run_id: int) -> RunStatus:
        """The run's status from ``flwr list --run-id``."""
        answer = self._json(["list", CONNECTION, "--run-id", str(run_id)])
        run = answer["runs"][0]
        details = str(run.get("status-details", ""))
        return RunStatus(
            status=str(run.get("status", "")),
            details="" if details == "N/A" else details,
            elapsed_s=float(run.get("elapsed", 0.0)),
        )

    def stop(self, run_id: int) -> None:
        """Stop a run (``flwr stop``); errors are ignored (the run may be finished already)."""
        with contextlib.suppress(FlowerCliError, subprocess.TimeoutExpired):
            self._json(["stop", str(run_id), CONNECTION], timeout_s=60)

    def stream_log(self, run_id: int, out: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start ``flwr log --stream`` into ``out``; the process ends when the run finishes."""
        return processes.spawn(
            [self._flwr, "log", str(run_id), CONNECTION, "--stream"], self._env, cwd=self._cwd, stdout=out
        )
