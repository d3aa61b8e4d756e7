"""Credentials, when configured, never leak: an authenticated broker and MLflow, one real project.

A suite of its own (free ports, temporary home) runs Mosquitto with ``allow_anonymous false`` and a
hashed password file, and ``mlflow server --app-name basic-auth``; random passwords are made at start-up.
The digits project trains to success through them. Then the secrets are looked for everywhere they
could have gone: every file under the suite home (except the 0600 credentials file that holds them),
the project, its events and timeline through the API, every document of the store, and the command
line of every process on the machine, sampled while the project's services ran. Absent means absent:
no redacted form is expected either.
"""

from __future__ import annotations

import base64
import json
import mmap
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from pymongo import MongoClient

from flops_manager.bus.broker_acl import BrokerRole, project_password, project_username
from flops_manager.cli.client import FlopsClient
from flops_manager.orchestrator.local import service_processes
from flops_manager.tracking.mlflow_server import Credentials
from flops_manager.tracking.project_users import project_user
from flops_suite.embedded import EmbeddedSuite, SuiteCredentials
from tests.e2e.conftest import FINAL, assert_nothing_left, example_sla

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def creds(auth_suite: EmbeddedSuite) -> SuiteCredentials:
    """The credentials the suite made."""
    return auth_suite.credentials()


def _project_logins(creds: SuiteCredentials, project_id: str) -> dict[str, str]:
    """The project's own broker users and MLflow user and their passwords (derived from the manager's)."""
    logins = [
        (project_username(project_id, role), project_password(creds.mqtt_password, project_id, role))
        for role in BrokerRole
    ]
    tracking = project_user(Credentials(creds.mlflow_username, creds.mlflow_password), project_id)
    return {user: password.get_secret_value() for user, password in [*logins, (tracking.username, tracking.password)]}


def _needles(creds: SuiteCredentials, project_id: str) -> dict[str, bytes]:
    """Every form a secret could leak in: itself, a basic-auth header value, and its two halves."""
    found: dict[str, bytes] = {}
    users = {creds.mqtt_password.get_secret_value(): creds.mqtt_username}
    users[creds.mlflow_password.get_secret_value()] = creds.mlflow_username
    users |= {password: user for user, password in _project_logins(creds, project_id).items()}
    for index, secret in enumerate([*creds.secret_values(), *_project_logins(creds, project_id).values()]):
        found[f"secret {index}"] = secret.encode()
        found[f"secret {index} (first half)"] = secret[: len(secret) // 2].encode()
        found[f"secret {index} (second half)"] = secret[len(secret) // 2 :].encode()
        if secret in users:
            found[f"secret {index} (basic auth)"] = base64.b64encode(f"{users[secret]}:{secret}".encode())
    return found


def _leaks(text: bytes | str, needles: dict[str, bytes]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [name for name, needle in needles.items() if needle in data]


def _connect_result(suite: EmbeddedSuite, username: str | None, password: str | None) -> Any:
    """The broker's CONNACK reason code for these credentials (None if it never answered)."""
    answered = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.setdefault("reason", reason)
        answered.set()

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", suite.ports.broker, keepalive=10)
    client.loop_start()
    try:
        answered.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return result.get("reason")


def test_broker_refuses_anonymous_and_wrong_password(auth_suite: EmbeddedSuite, creds: SuiteCredentials) -> None:
    anonymous = _connect_result(auth_suite, None, None)
    assert anonymous is not None and anonymous.is_failure, f"anonymous client was not refused: {anonymous}"
    wrong = _connect_result(auth_suite, creds.mqtt_username, "not-the-password")
    assert wrong is not None and wrong.is_failure, f"wrong password was not refused: {wrong}"
    right = _connect_result(auth_suite, creds.mqtt_username, creds.mqtt_password.get_secret_value())
    assert right is not None and not right.is_failure, f"the suite's own credentials were refused: {right}"


def test_mlflow_refuses_requests_without_credentials(auth_suite: EmbeddedSuite, creds: SuiteCredentials) -> None:
    url = f"{auth_suite.mlflow_url}/api/2.0/mlflow/experiments/search"
    assert httpx.get(url, params={"max_results": 1}, timeout=10).status_code == 401
    wrong = httpx.get(url, params={"max_results": 1}, auth=(creds.mlflow_username, "nope"), timeout=10)
    assert wrong.status_code == 401
    auth = (creds.mlflow_username, creds.mlflow_password.get_secret_value())
    assert httpx.get(url, params={"max_results": 1}, auth=auth, timeout=10).status_code == 200
    # The manager reaches MLflow with its credentials (an authenticated call, not only /health).
    admin = FlopsClient(auth_suite.api_url, auth_suite.admin_token())
    assert admin.tracking()["healthy"] is True


class ProcessSampler:
    """Command lines of every process on the machine and the environments of the project's services."""

    def __init__(self, services_dir: Path) -> None:
        self._services_dir = services_dir
        self.cmdlines: dict[tuple[int, bytes], None] = {}
        self.environ: dict[str, list[bytes]] = {}  # service name -> environ of its processes

    def sample(self) -> None:
        """One pass over /proc."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    self.cmdlines[(int(entry.name), (entry / "cmdline").read_bytes())] = None
                except OSError:
                    continue
        for record in self._services_dir.glob("*/service.json"):
            try:
                marker = json.loads(record.read_text())["info"]["marker"]
            except (OSError, ValueError, KeyError):
                continue
            for pid in service_processes(marker):
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                    self.cmdlines[(pid, Path(f"/proc/{pid}/cmdline").read_bytes())] = None
                except OSError:
                    continue
                self.environ.setdefault(record.parent.name, []).append(environ)


def _files_under(root: Path) -> Iterator[Path]:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                yield path


def _file_leaks(path: Path, needles: dict[str, bytes]) -> list[str]:
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return []
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return [name for name, needle in needles.items() if data.find(needle) != -1]
    except (OSError, ValueError):
        return []


def test_project_trains_through_authenticated_services_and_no_secret_leaks(
    auth_suite: EmbeddedSuite, creds: SuiteCredentials
) -> None:
    started = time.monotonic()
    admin = FlopsClient(auth_suite.api_url, auth_suite.admin_token())
    admin.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])
    accepted = admin.submit(example_sla(auth_suite, "digits_sklearn", training_rounds=2))
    project_id = accepted["project_id"]

    sampler = ProcessSampler(auth_suite.home / "services" / project_id)
    deadline = time.monotonic() + 600
    project = admin.project(project_id)
    while project["status"] not in FINAL and time.monotonic() < deadline:
        sampler.sample()
        time.sleep(0.3)
        project = admin.project(project_id)
    assert project["status"] == "succeeded", f"{project['status']} at stage {project['stage']}: {project.get('cause')}"
    assert project["rounds_completed"] == 2
    assert project["final_metrics"]["accuracy"] >= 0.85
    assert_nothing_left(auth_suite, project)
    print(f"project with authenticated broker and MLflow: {time.monotonic() - started:.1f} s")

    # The run is in MLflow, readable with the credentials and refused without them.
    run_get = f"{auth_suite.mlflow_url}/api/2.0/mlflow/runs/get"
    auth = (creds.mlflow_username, creds.mlflow_password.get_secret_value())
    params = {"run_id": project["mlflow"]["run_id"]}
    assert httpx.get(run_get, params=params, timeout=10).status_code == 401
    run = httpx.get(run_get, params=params, auth=auth, timeout=10)
    assert run.status_code == 200
    assert "eval_accuracy" in {m["key"] for m in run.json()["run"]["data"]["metrics"]}

    # The sampler saw every service of the project running, and the secrets went where they belong:
    # the aggregator's own MLflow login into its environment only; to every service its project's
    # broker password (the observer its own user's); the manager's passwords to none.
    assert {"builder", "observer", "aggregator", "learner-0", "learner-1"} <= set(sampler.environ)
    own_mlflow = project_user(Credentials(creds.mlflow_username, creds.mlflow_password), project_id)
    mlflow_pw = f"MLFLOW_TRACKING_PASSWORD={own_mlflow.password.get_secret_value()}".encode()
    manager_mlflow_pw = f"MLFLOW_TRACKING_PASSWORD={creds.mlflow_password.get_secret_value()}".encode()
    manager_pw = f"FLOPS_MQTT_PASSWORD={creds.mqtt_password.get_secret_value()}".encode()
    logins = _project_logins(creds, project_id)
    assert any(mlflow_pw in env.split(b"\0") for env in sampler.environ["aggregator"])
    assert not [s for s, envs in sampler.environ.items() if any(manager_mlflow_pw in e for e in envs)]
    for service, environs in sampler.environ.items():
        role = BrokerRole.OBSERVER if service == "observer" else BrokerRole.SERVICE
        mqtt_pw = f"FLOPS_MQTT_PASSWORD={logins[project_username(project_id, role)]}".encode()
        assert any(mqtt_pw in env.split(b"\0") for env in environs), f"{service} had not its project's login"
        assert not any(manager_pw in env.split(b"\0") for env in environs), f"{service} got the manager's"
        if service != "aggregator":
            assert not any(_leaks(env, {"mlflow": mlflow_pw}) for env in environs), f"{service} got MLflow's"
    service_cmdlines = [b" ".join(cmd.split(b"\0")) for _pid, cmd in sampler.cmdlines]
    assert any(b"flower-superlink" in c for c in service_cmdlines)
    assert any(b"fl_actors.supernode_launcher" in c for c in service_cmdlines)  # flower-supernode

    needles = _needles(creds, project_id)
    leaks: list[str] = []

    # 1. Command lines of every process seen while the project ran (its services and everything else).
    for pid, cmdline in sampler.cmdlines:
        for name in _leaks(cmdline, needles):
            leaks.append(f"cmdline of pid {pid} ({cmdline[:80]!r}): {name}")

    # 2. The API: the project, its events and its timeline.
    for what, body in (
        ("GET /projects/{id}", json.dumps(admin.project(project_id))),
        ("GET /projects/{id}/events", json.dumps(admin.events(project_id))),
        ("GET /projects/{id}/timeline", admin.timeline(project_id)),
        ("GET /projects", json.dumps(admin.projects())),
        ("GET /tracking", json.dumps(admin.tracking())),
    ):
        leaks += [f"{what}: {name}" for name in _leaks(body, needles)]

    # 3. Every document of every collection in the store, raw.
    mongo: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://127.0.0.1:{auth_suite.ports.store}", serverSelectionTimeoutMS=10_000
    )
    try:
        db = mongo["flops"]
        names = db.list_collection_names()
        assert {"projects", "events"} <= set(names)
        for collection in names:
            for doc in db[collection].find({}):
                for name in _leaks(json.dumps(doc, default=str), needles):
                    leaks.append(f"store {collection} {doc.get('_id')}: {name}")
    finally:
        mongo.close()

    # 4. Every file under the suite home: logs, service logs and records, timelines, databases, registry.
    scanned = 0
    for path in _files_under(auth_suite.home):
        if path == auth_suite.credentials_file:
            continue
        scanned += 1
        leaks += [f"{path.relative_to(auth_suite.home)}: {name}" for name in _file_leaks(path, needles)]
    service_logs = list((auth_suite.home / "services" / project_id).glob("*/output.log"))
    assert len(service_logs) >= 5 and scanned > len(service_logs)

    assert leaks == [], "secrets leaked:\n" + "\n".join(leaks)
    # The project's broker users and its MLflow user were removed when it ended.
    for user, password in logins.items():
        if user.startswith("flops-agg-"):
            continue  # the MLflow user: checked below
        refused = _connect_result(auth_suite, user, password)
        assert refused is not None and refused.is_failure, f"{user} still accepted after the project ended"
    own_auth = (own_mlflow.username, own_mlflow.password.get_secret_value())
    assert httpx.get(run_get, params=params, auth=own_auth, timeout=10).status_code == 401
    # The scanner finds what is there: the one file meant to hold the secrets holds each of them.
    assert set(_file_leaks(auth_suite.credentials_file, needles)) >= {f"secret {i}" for i in range(3)}
    assert stat.S_IMODE(auth_suite.credentials_file.stat().st_mode) == 0o600
