"""Starts and stops the whole one-machine management suite.

With ``auth`` (the default; ``FLOPS_SUITE_AUTH=0`` turns it off) the broker refuses anonymous clients
and MLflow runs its basic auth: one ``flops`` user on each, random passwords made on first start and kept in
``credentials.json`` (mode 0600) under the suite home. They reach Mosquitto as a hashed password file,
MLflow and the manager only through their environment, never a command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from pydantic import BaseModel, SecretStr

from flops_manager.bus.broker_acl import acl_text
from flops_suite.example_repos import publish_examples
from flops_suite.processes import ManagedProcess, port_open

if TYPE_CHECKING:
    from flops_manager.orchestrator.base import Orchestrator

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class SuitePorts(BaseModel):
    """The port of each suite service (on the suite's host address)."""

    broker: int = 1883
    store: int = 27018
    mlflow: int = 5001
    git: int = 9418
    api: int = 8081


SUITE_USER = "flops"
AUTH_ENV = "FLOPS_SUITE_AUTH"
HOST_ENV = "FLOPS_SUITE_HOST"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (only this machine can reach it)."""
    return host == "localhost" or host.startswith("127.")


class SuiteCredentials(BaseModel):
    """The suite's service credentials (``SecretStr``: they never print)."""

    mqtt_username: str = SUITE_USER
    mqtt_password: SecretStr
    mlflow_username: str = SUITE_USER
    mlflow_password: SecretStr
    mlflow_secret_key: SecretStr  # Flask's CSRF key of MLflow's auth app

    @classmethod
    def generate(cls) -> SuiteCredentials:
        """Fresh random passwords."""
        return cls(
            mqtt_password=SecretStr(secrets.token_urlsafe(32)),
            mlflow_password=SecretStr(secrets.token_urlsafe(32)),
            mlflow_secret_key=SecretStr(secrets.token_hex(32)),
        )

    def secret_values(self) -> list[str]:
        """Every secret string, for leak checks."""
        return [s.get_secret_value() for s in (self.mqtt_password, self.mlflow_password, self.mlflow_secret_key)]


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner may read (0600 before any byte is written)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in {"1", "true", "yes", "on"}


def _bin(name: str) -> str:
    """An executable of this environment (the venv running the suite), else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


# Job execution (MLflow 3's background job runner) is off: FLOps never uses it and it slows the start.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def mlflow_server_command(port: int, database: Path, artifacts: Path, host: str = "127.0.0.1") -> list[str]:
    """``mlflow server`` on ``host:port`` with one worker, a SQLite store and proxied artifacts."""
    return [
        _bin("mlflow"),
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{database}",
        "--artifacts-destination",
        str(artifacts),
        # MLflow answers only requests naming a loopback or RFC 1918 host unless told which others.
        *([] if is_loopback(host) else ["--allowed-hosts", f"{host},{host}:{port},localhost:*,127.0.0.1:*"]),
    ]


class EmbeddedSuite:
    """Broker, store, MLflow, git server for the examples, and the manager, each a process."""

    def __init__(
        self,
        home: Path,
        ports: SuitePorts | None = None,
        manager_env: dict[str, str] | None = None,
        auth: bool | None = None,
        host: str | None = None,
    ) -> None:
        self.home = home.resolve()
        self.ports = ports or SuitePorts()
        self._manager_env = manager_env or {}
        self.run_dir = self.home / "suite"
        # Broker, MLflow, git server and manager listen here; the store stays on loopback (only the manager uses it).
        self.host = host or os.environ.get(HOST_ENV) or "127.0.0.1"
        # Security by default: per-project broker and MLflow users need the suite's own logins (and beyond
        # loopback other hosts reach the broker and MLflow).
        self.auth = _env_flag(AUTH_ENV, default=True) if auth is None else auth

    @property
    def credentials_file(self) -> Path:
        """Where the broker and MLflow credentials are kept (mode 0600; ``auth`` only)."""
        return self.home / "credentials.json"

    def credentials(self) -> SuiteCredentials:
        """The suite's credentials, created on first use.

        New credentials also drop MLflow's user database: it takes the admin password only when it
        creates the admin user, so an old database would keep an old password.
        """
        if not self.credentials_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fresh = SuiteCredentials.generate()
            (self.home / "data" / "mlflow-auth.db").unlink(missing_ok=True)
            _write_private(
                self.credentials_file,
                json.dumps(
                    {
                        "mqtt_username": fresh.mqtt_username,
                        "mqtt_password": fresh.mqtt_password.get_secret_value(),
                        "mlflow_username": fresh.mlflow_username,
                        "mlflow_password": fresh.mlflow_password.get_secret_value(),
                        "mlflow_secret_key": fresh.mlflow_secret_key.get_secret_value(),
                    }
                ),
            )
        return SuiteCredentials.model_validate_json(self.credentials_file.read_text())

    @property
    def admin_token_file(self) -> Path:
        """Where the admin token is kept (mode 0600)."""
        return self.home / "admin-token"

    @property
    def api_url(self) -> str:
        """The manager's base URL."""
        return f"http://{self.host}:{self.ports.api}"

    @property
    def mlflow_url(self) -> str:
        """The MLflow server's URL."""
        return f"http://{self.host}:{self.ports.mlflow}"

    def git_url(self, example: str) -> str:
        """The git:// URL of a served example repo."""
        return f"git://{self.host}:{self.ports.git}/{example}"

    def admin_token(self) -> str:
        """The admin token, created on first use."""
        if not self.admin_token_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another thread made it first
                fd = os.open(self.admin_token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(32))
        return self.admin_token_file.read_text().strip()

    def manager_env(self) -> dict[str, str]:
        """The manager's settings as environment variables (secrets only in its environment)."""
        return {
            "FLOPS_HOME": str(self.home),
            "FLOPS_API_HOST": self.host,
            "FLOPS_API_PORT": str(self.ports.api),
            "FLOPS_MQTT_HOST": self.host,
            "FLOPS_MQTT_PORT": str(self.ports.broker),
            "FLOPS_MONGO_URI": f"mongodb://127.0.0.1:{self.ports.store}",
            "FLOPS_MLFLOW_TRACKING_URI": self.mlflow_url,
            "FLOPS_ADMIN_TOKEN": self.admin_token(),
            "FLOPS_UV_FIND_LINKS": json.dumps([p for p in ("/opt/wheels",) if Path(p).is_dir()]),
            **self._auth_env(),
            **self._manager_env,
        }

    def _auth_env(self) -> dict[str, str]:
        if not self.auth:
            return {}
        creds = self.credentials()
        return {
            "FLOPS_MQTT_USERNAME": creds.mqtt_username,
            "FLOPS_MQTT_PASSWORD": creds.mqtt_password.get_secret_value(),
            # The manager adds each project's broker users to these files and signals the broker.
            "FLOPS_MQTT_PASSWORD_FILE": str(self.run_dir / "mosquitto.passwd"),
            "FLOPS_MQTT_ACL_FILE": str(self.run_dir / "mosquitto.acl"),
            "FLOPS_MQTT_BROKER_PID_FILE": str(self.run_dir / "broker.pid"),
            "FLOPS_MLFLOW_USERNAME": creds.mlflow_username,
            "FLOPS_MLFLOW_PASSWORD": creds.mlflow_password.get_secret_value(),
        }

    def _mlflow_auth(self) -> tuple[list[str], dict[str, str]]:
        """Extra arguments and environment of MLflow's basic auth (secrets only in the environment)."""
        if not self.auth:
            return [], {}
        creds = self.credentials()
        return ["--app-name", "basic-auth"], {
            "MLFLOW_AUTH_CONFIG_PATH": str(self.run_dir / "mlflow-auth.ini"),
            "MLFLOW_AUTH_ADMIN_USERNAME": creds.mlflow_username,
            "MLFLOW_AUTH_ADMIN_PASSWORD": creds.mlflow_password.get_secret_value(),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": creds.mlflow_secret_key.get_secret_value(),
        }

    def _processes(self) -> dict[str, ManagedProcess]:
        data = self.home / "data"
        broker_conf = self.run_dir / "mosquitto.conf"
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        mlflow_args, mlflow_env = self._mlflow_auth()
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
                    *mlflow_server_command(self.ports.mlflow, data / "mlflow.db", data / "mlflow-artifacts", self.host),
                    *mlflow_args,
                ],
                env={**MLFLOW_SERVER_ENV, **mlflow_env},
            ),
            "git": ManagedProcess(
                "git",
                self.run_dir,
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    f"--listen={self.host}",
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
            f"listener {self.ports.broker} {self.host}\n{self._broker_auth_conf()}"
            # Durable sessions and queued QoS 1 events survive a broker restart.
            f"persistence true\npersistence_location {self.home / 'data'}/\nautosave_interval 5\n"
            "max_queued_messages 10000\n"
        )
        if self.auth:
            self._write_mlflow_auth_config()
        publish_examples(PROJECT_ROOT / "examples" / "ml_repos", self.home / "example-repos")
        publish_examples(PROJECT_ROOT / "tests" / "addon_repos", self.home / "example-repos")  # addon-style repos
        self.admin_token()  # made once here: the threads below all read it
        # Start them side by side: MLflow alone takes seconds to import and migrate its database.
        with ThreadPoolExecutor(max_workers=4) as pool:
            for started in [pool.submit(self.start_service, n) for n in ("broker", "store", "git", "mlflow")]:
                started.result()
        if with_manager:
            self.start_manager()
        (self.run_dir / "suite.json").write_text(self.ports.model_dump_json())

    def _broker_auth_conf(self) -> str:
        """Anonymous clients for the plain suite; with ``auth`` a hashed password file and no anonymous."""
        if not self.auth:
            return "allow_anonymous true\n"
        password_file = self.run_dir / "mosquitto.passwd"
        creds = self.credentials()
        # mosquitto_passwd -U hashes a "user:password" file in place (PBKDF2-SHA512, "$7$"): the
        # password never appears on a command line, and the plain text lives only in this 0600 file.
        _write_private(password_file, f"{creds.mqtt_username}:{creds.mqtt_password.get_secret_value()}\n")
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        try:
            done = subprocess.run([tool, "-U", str(password_file)], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            password_file.unlink(missing_ok=True)
            raise RuntimeError(f"cannot hash the broker's password file with {tool}: {exc}") from exc
        if done.returncode != 0 or ":$7$" not in password_file.read_text():
            password_file.unlink(missing_ok=True)
            raise RuntimeError(f"mosquitto_passwd -U failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        os.chmod(password_file, 0o600)
        acl_file = self.run_dir / "mosquitto.acl"
        _write_private(acl_file, acl_text([creds.mqtt_username], []))
        # Run as the suite's own user (as root Mosquitto would switch to "mosquitto", which can read
        # neither the 0600 password file nor a private home); without root this line has no effect.
        user = pwd.getpwuid(os.getuid()).pw_name
        return f"user {user}\nallow_anonymous false\npassword_file {password_file}\nacl_file {acl_file}\n"

    def _write_mlflow_auth_config(self) -> None:
        """MLflow's auth config: its user database under the suite home, no permissions by default, and
        verified logins cached.

        The admin user and password come from the environment (``MLFLOW_AUTH_ADMIN_*``), not this file.
        """
        _write_private(
            self.run_dir / "mlflow-auth.ini",
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{self.home / 'data' / 'mlflow-auth.db'}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without it every request pays a PBKDF2 check (seconds per model logged on 2 cores); with one
            # worker a deleted user or a changed password leaves the cache at once.
            "auth_cache_ttl_seconds = 300\n",
        )

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
            "broker": lambda: port_open(self.ports.broker, self.host),
            "store": lambda: port_open(self.ports.store),
            "git": lambda: port_open(self.ports.git, self.host),
            "mlflow": lambda: self._http_ok(f"{self.mlflow_url}/health"),
        }[name]
        self._processes()[name].start(ready, 300)

    @contextmanager
    def running(self) -> Iterator[EmbeddedSuite]:
        """The suite up for a ``with`` block and down after it (also when starting it failed half-way)."""
        try:
            self.up()
            yield self
        finally:
            self.down()

    def down(self) -> None:
        """Stop the manager first (projects' services keep their own groups), then the rest."""
        self._processes()["manager"].stop()
        # Services of projects the manager no longer watches must not outlive the suite.
        for backend in self._service_backends():
            for handle in backend.list_services():
                backend.undeploy(handle)
        for name in ("git", "mlflow", "store", "broker"):
            self._processes()[name].stop()

    def _service_backends(self) -> list[Orchestrator]:
        """The local backend, and the manager's configured one (containers or Swarm services) if another."""
        from flops_manager.components import make_orchestrator
        from flops_manager.orchestrator.local import LocalOrchestrator
        from flops_manager.settings import Settings

        backends: list[Orchestrator] = [LocalOrchestrator(self.home / "nodes", self.home / "services", 0, 0)]
        env = {**os.environ, **self.manager_env()}
        name = env.get("FLOPS_ORCHESTRATOR", "local")
        if name != "local":
            docker_host = env.get("FLOPS_DOCKER_HOST") or env.get("DOCKER_HOST")
            backends.append(make_orchestrator(Settings(home=self.home, orchestrator=name, docker_host=docker_host)))
        return backends

    def status(self) -> dict[str, int | None]:
        """Each service's PID, None when stopped."""
        return {name: proc.pid for name, proc in self._processes().items()}

    def logs_of(self, name: str) -> Path:
        """The log file of one service."""
        return self._processes()[name].log_file
