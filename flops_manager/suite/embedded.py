"""Starts and stops the whole one-machine management suite."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from pydantic import BaseModel

from flops_manager.suite.example_repos import publish_examples
from flops_manager.suite.processes import ManagedProcess, port_open

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SuitePorts(BaseModel):
    """Where each suite service listens on 127.0.0.1."""

    broker: int = 1883
    store: int = 27018
    mlflow: int = 5001
    git: int = 9418
    api: int = 8081


def _bin(name: str) -> str:
    """An executable of this environment (the venv running the suite), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


class EmbeddedSuite:
    """Broker, store, MLflow, git server for the examples, and the manager, each a process."""

    def __init__(
        self, home: Path, ports: SuitePorts | None = None, manager_env: dict[str, str] | None = None
    ) -> None:
        self.home = home.resolve()
        self.ports = ports or SuitePorts()
        self._manager_env = manager_env or {}
        self.run_dir = self.home / "suite"

    @property
    def admin_token_file(self) -> Path:
        """Where the admin token is kept (mode 0600)."""
        return self.home / "admin-token"

    @property
    def api_url(self) -> str:
        """The manager's base URL."""
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def mlflow_url(self) -> str:
        """The MLflow server's URL."""
        return f"http://127.0.0.1:{self.ports.mlflow}"

    def git_url(self, example: str) -> str:
        """The git:// URL of a served example repo."""
        return f"git://127.0.0.1:{self.ports.git}/{example}"

    def admin_token(self) -> str:
        """The admin token, created on first use."""
        if not self.admin_token_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.admin_token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        return self.admin_token_file.read_text().strip()

    def manager_env(self) -> dict[str, str]:
        """The manager's settings as environment variables (secrets only in its environment)."""
        return {
            "FLOPS_HOME": str(self.home),
            "FLOPS_API_PORT": str(self.ports.api),
            "FLOPS_MQTT_PORT": str(self.ports.broker),
            "FLOPS_MONGO_URI": f"mongodb://127.0.0.1:{self.ports.store}",
            "FLOPS_MLFLOW_TRACKING_URI": self.mlflow_url,
            "FLOPS_ADMIN_TOKEN": self.admin_token(),
            "FLOPS_UV_FIND_LINKS": json.dumps([p for p in ("/opt/wheels",) if Path(p).is_dir()]),
            **self._manager_env,
        }

    def _processes(self) -> dict[str, ManagedProcess]:
        data = self.home / "data"
        broker_conf = self.run_dir / "mosquitto.conf"
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return {
            "broker": ManagedProcess("broker", self.run_dir, [mosquitto, "-c", str(broker_conf)]),
            "store": ManagedProcess(
                "store",
                self.run_dir,
                [
                    _bin("secantusd-py"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.ports.store),
                    "--storage-path",
                    str(data / "store"),
                    "--log-level",
                    "WARNING",
                ],
            ),
            "mlflow": ManagedProcess(
                "mlflow",
                self.run_dir,
                [
                    _bin("mlflow"),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.ports.mlflow),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{data / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(data / "mlflow-artifacts"),
                ],
                env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            ),
            "git": ManagedProcess(
                "git",
                self.run_dir,
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--listen=127.0.0.1",
                    f"--port={self.ports.git}",
                    f"--base-path={self.home / 'example-repos'}",
                    str(self.home / "example-repos"),
                ],
            ),
            "manager": ManagedProcess(
                "manager",
                self.run_dir,
                [sys.executable, "-m", "flops_manager.app"],
                env=self.manager_env(),
                cwd=PROJECT_ROOT,
            ),
        }

    def _http_ok(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def up(self, with_manager: bool = True) -> None:
        """Start every service that is not running yet and wait until each answers."""
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            raise RuntimeError("mosquitto is not installed: run `make deps` (deploy/install-system-deps.sh)")
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "mosquitto.conf").write_text(
            f"listener {self.ports.broker} 127.0.0.1\nallow_anonymous true\n"
            # Durable sessions and queued QoS 1 events survive a broker restart.
            f"persistence true\npersistence_location {self.home / 'data'}/\nautosave_interval 5\n"
            "max_queued_messages 10000\n"
        )
        publish_examples(PROJECT_ROOT / "examples" / "ml_repos", self.home / "example-repos")
        # Start them side by side: MLflow alone takes seconds to import and migrate its database.
        with ThreadPoolExecutor(max_workers=4) as pool:
            for started in [pool.submit(self.start_service, n) for n in ("broker", "store", "git", "mlflow")]:
                started.result()
        if with_manager:
            self.start_manager()
        (self.run_dir / "suite.json").write_text(self.ports.model_dump_json())

    def start_manager(self) -> None:
        """Start the manager (after the other services) and wait for ``/health``."""
        self._processes()["manager"].start(lambda: self._http_ok(f"{self.api_url}/health"), 60)

    def stop_service(self, name: str) -> None:
        """Stop one service (``broker``, ``store``, ``mlflow``, ``git`` or ``manager``)."""
        self._processes()[name].stop()

    def start_service(self, name: str) -> None:
        """Start one stopped service again."""
        if name == "manager":
            self.start_manager()
            return
        ready = {
            "broker": lambda: port_open(self.ports.broker),
            "store": lambda: port_open(self.ports.store),
            "git": lambda: port_open(self.ports.git),
            "mlflow": lambda: self._http_ok(f"{self.mlflow_url}/health"),
        }[name]
        self._processes()[name].start(ready, 300)

    def down(self) -> None:
        """Stop the manager first (projects' services keep their own groups), then the rest."""
        self._processes()["manager"].stop()
        from flops_manager.orchestrator.local import LocalOrchestrator

        # Services of projects the manager no longer watches must not outlive the suite.
        local = LocalOrchestrator(self.home / "nodes", self.home / "services", 0, 0)
        for handle in local.list_services():
            local.undeploy(handle)
        for name in ("git", "mlflow", "store", "broker"):
            self._processes()[name].stop()

    def status(self) -> dict[str, int | None]:
        """Each service's PID, None when stopped."""
        return {name: proc.pid for name, proc in self._processes().items()}

    def logs_of(self, name: str) -> Path:
        """The log file of one service."""
        return self._processes()[name].log_file
