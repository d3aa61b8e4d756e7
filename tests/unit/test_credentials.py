"""Credentials: where they may go (a service's secret environment) and where they may not (URLs, specs, files)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from pydantic import SecretStr

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.sla import ModelFlavor, ProjectSLA
from flops_manager.orchestrator.base import Node
from flops_manager.projects import specs
from flops_manager.projects.models import Project
from flops_manager.settings import Settings
from flops_manager.tracking.mlflow_server import (
    Credentials,
    MlflowServerTracking,
    client_secret_env,
    settings_credentials,
    split_credentials,
)
from flops_manager.tracking.project_users import project_user
from flops_suite.embedded import EmbeddedSuite, SuitePorts

MQTT_PW = "mqtt-pw-0123456789abcdef"
MLFLOW_PW = "mlflow-pw-0123456789abcdef"


def test_split_credentials_takes_the_user_part_out_of_a_url() -> None:
    clean, creds = split_credentials("http://alice:p%40ss@127.0.0.1:5001/prefix")
    assert clean == "http://127.0.0.1:5001/prefix"
    assert creds == Credentials("alice", SecretStr("p@ss"))
    assert split_credentials("http://127.0.0.1:5001") == ("http://127.0.0.1:5001", None)
    assert split_credentials("https://[::1]:5001/x")[0] == "https://[::1]:5001/x"
    assert split_credentials("http://bob:secret@[::1]:5001")[0] == "http://[::1]:5001"
    assert "secret" not in repr(split_credentials("http://bob:secret@h")[1])


def test_tracking_never_hands_on_a_url_with_credentials() -> None:
    tracking = MlflowServerTracking("http://alice:hunter2@127.0.0.1:5001/", "http://alice:hunter2@ui.example:80")
    for url in (tracking.tracking_uri, tracking.ui_url, tracking.run_url("1", "abc")):
        assert "hunter2" not in url and "alice" not in url
    assert tracking.credentials == Credentials("alice", SecretStr("hunter2"))


def test_settings_credentials_prefer_explicit_settings() -> None:
    explicit = Settings(
        mlflow_tracking_uri="http://u:in-url@127.0.0.1:1",
        mlflow_username="flops",
        mlflow_password=SecretStr(MLFLOW_PW),
    )
    assert settings_credentials(explicit) == Credentials("flops", SecretStr(MLFLOW_PW))
    assert settings_credentials(Settings(mlflow_tracking_uri="http://u:in-url@127.0.0.1:1")) == Credentials(
        "u", SecretStr("in-url")
    )
    assert settings_credentials(Settings(mlflow_tracking_uri="http://127.0.0.1:1")) is None
    assert client_secret_env(None) == {}
    tracking = MlflowServerTracking.from_settings(explicit)
    assert tracking.tracking_uri == "http://127.0.0.1:1" and tracking.credentials is not None
    assert tracking.credentials.username == "flops"


def _project() -> Project:
    sla = ProjectSLA.model_validate(
        {
            "customerID": "c1",
            "ml_repo_url": "git://127.0.0.1:9418/digits_sklearn",
            "ml_model_flavor": "sklearn",
            "training_configuration": {"data_tags": ["digits"], "training_rounds": 1},
        }
    )
    return Project(id="p1", customer_id="c1", sla=sla)


def test_only_the_aggregator_gets_mlflow_credentials_and_only_as_secret_env() -> None:
    settings = Settings(
        mqtt_username="flops",
        mqtt_password=SecretStr(MQTT_PW),
        mlflow_username="flops",
        mlflow_password=SecretStr(MLFLOW_PW),
    )
    project = _project()
    key = ImageKey(repo_url=project.sla.ml_repo_url, commit="0" * 40, flavor=ModelFlavor.SKLEARN)
    manifest = ImageManifest(
        key=key, digest=key.digest, dependency_hash="h", learner="/l", aggregator="/a", app_dir="/app", created_at=0
    )
    node = Node(name="learner-0", capabilities=["learner"], data_tags=["digits"], data_dir="/d")
    aggregator = specs.aggregator_spec(settings, project, manifest, 9000, "http://127.0.0.1:5001")
    others = [
        specs.builder_spec(settings, project, key, "/registry"),
        specs.observer_spec(settings, project),
        specs.learner_spec(settings, project, manifest, 0, node, 9000),
    ]
    # The aggregator logs as its project's own MLflow user (tracking.project_users), never the manager's.
    own = project_user(Credentials("flops", SecretStr(MLFLOW_PW)), project.id)
    assert aggregator.secret_env == {
        "FLOPS_MQTT_PASSWORD": MQTT_PW,
        "MLFLOW_TRACKING_USERNAME": "flops-agg-p1",
        "MLFLOW_TRACKING_PASSWORD": own.password.get_secret_value(),
    }
    assert own.password.get_secret_value() != MLFLOW_PW
    for spec in others:
        assert spec.secret_env == {"FLOPS_MQTT_PASSWORD": MQTT_PW}, spec.name
    for spec in [aggregator, *others]:
        visible = spec.model_dump_json() + repr(spec) + json.dumps(spec.env) + " ".join(spec.command)
        assert MQTT_PW not in visible and MLFLOW_PW not in visible, spec.name


def test_suite_auth_keeps_secrets_in_private_files_and_environments(tmp_path: Path) -> None:
    suite = EmbeddedSuite(tmp_path / "home", SuitePorts(broker=1, store=2, mlflow=3, git=4, api=5), auth=True)
    creds = suite.credentials()
    assert suite.credentials() == creds  # made once, then reused
    assert stat.S_IMODE(suite.credentials_file.stat().st_mode) == 0o600
    secrets = creds.secret_values()
    assert len(set(secrets)) == 3 and all(len(s) >= 32 for s in secrets)

    suite.run_dir.mkdir(parents=True)
    conf = suite._broker_auth_conf()
    assert "allow_anonymous false" in conf and "password_file" in conf
    password_file = suite.run_dir / "mosquitto.passwd"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().startswith("flops:$7$")  # hashed in place, no plain text left
    suite._write_mlflow_auth_config()

    processes = suite._processes()
    assert "--app-name" in processes["mlflow"].command
    env = suite.manager_env()
    assert env["FLOPS_MQTT_PASSWORD"] == creds.mqtt_password.get_secret_value()
    assert env["FLOPS_MLFLOW_PASSWORD"] == creds.mlflow_password.get_secret_value()
    for path in suite.run_dir.iterdir():
        assert not any(s in path.read_text() for s in secrets), path.name
    for proc in processes.values():
        assert not any(s in " ".join(proc.command) for s in secrets), proc.name


def test_suite_without_auth_stays_anonymous(tmp_path: Path) -> None:
    suite = EmbeddedSuite(tmp_path / "home", auth=False)
    assert "FLOPS_MQTT_PASSWORD" not in suite.manager_env()
    assert "--app-name" not in suite._processes()["mlflow"].command
    assert suite._broker_auth_conf() == "allow_anonymous true\n"
    assert not suite.credentials_file.exists()


def test_aggregator_run_links_carry_no_credentials() -> None:
    from fl_actors.tracking import run_url

    link = run_url("http://alice:hunter2@127.0.0.1:5001/", "3", "r1")
    assert link == "http://127.0.0.1:5001/#/experiments/3/runs/r1"
    assert run_url("http://127.0.0.1:5001", "3", "r1") == "http://127.0.0.1:5001/#/experiments/3/runs/r1"
