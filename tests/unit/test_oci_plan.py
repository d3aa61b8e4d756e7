"""The pure parts of the oci build plan and image naming: labels, Dockerfile text, failure causes, log rate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from flops_common.image_key import ImageKey
from flops_common.jobs import JOB_ENV, BuildJob
from flops_common.oci_images import DEFAULT_BASE_IMAGE, actor_labels, actor_ref, manifest_from_labels
from flops_common.redaction import strip_userinfo
from flops_common.sla import ModelFlavor, ProjectSLA
from flops_manager.projects import specs
from flops_manager.projects.models import Project
from flops_manager.settings import Settings
from image_builder.plans.oci import (
    CODE_DOCKERFILE,
    DEPS_DOCKERFILE,
    InputServer,
    LogForwarder,
    _build_failure,
    engine_platform,
    find_links_inputs,
    label_instruction,
    local_wheels,
)
from image_builder.steps import BuildStep

KEY = ImageKey(repo_url="https://bob:tok3n@git.example/ml.git", commit="f" * 40, flavor=ModelFlavor.SKLEARN)


class RecordingNotifier:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str, **data: Any) -> None:
        self.lines.append(message)


def test_labels_round_trip_without_credentials() -> None:
    labels = actor_labels(KEY, "learner", "proj1", "dephash", "r:5000/flops/deps:x")
    assert "tok3n" not in json.dumps(labels)
    manifest = manifest_from_labels("r:5000", labels, KEY)
    assert manifest is not None
    assert manifest.key == KEY  # the caller's key, credentials and all
    assert manifest.learner == actor_ref("r:5000", "learner", KEY.digest) == f"r:5000/flops/learner:{KEY.digest}"
    assert manifest_from_labels("r:5000", labels, KEY.model_copy(update={"commit": "e" * 40})) is None
    assert manifest_from_labels("r:5000", {"foo": "bar"}) is None
    assert strip_userinfo("git@host:x/y.git") == "git@host:x/y.git"


def test_label_instruction_is_one_step_and_quotes_everything() -> None:
    line = label_instruction({"b": 'say "hi" $HOME', "a": "x\\y"})
    assert line == 'LABEL a="x\\\\y" b="say \\"hi\\" \\$HOME"'
    text = CODE_DOCKERFILE.format(role="learner", parent="p", check="check", app_dir="/opt/flops/app", labels=line)
    assert text.count("LABEL") == 1 and "FROM p" in text


def test_dependency_dockerfile_keeps_inputs_out_of_layers() -> None:
    text = DEPS_DOCKERFILE.format(base=DEFAULT_BASE_IMAGE, url="http://127.0.0.1:1/t")
    assert "COPY" not in text  # uv and the CA bundle are fetched and deleted inside one RUN
    assert "rm -f /tmp/flops-stage.py" in text


def test_input_server_serves_only_its_files() -> None:
    server = InputServer({"a.txt": b"hello"})
    try:
        assert httpx.get(f"{server.url}/a.txt").content == b"hello"
        assert httpx.get(f"{server.url}/b.txt").status_code == 404
        base = server.url.rsplit("/", 1)[0]
        assert httpx.get(f"{base}/a.txt").status_code == 404  # the random path is needed
    finally:
        server.close()


def test_failure_causes_come_from_the_in_build_reports() -> None:
    uv_output = (
        "  \u00d7 No solution found when resolving dependencies:\n  ╰─▶ Because nothing==9 was not found, we fail."
    )
    lines = ["Step 2/4 : RUN ...", "FLOPS_STAGE_FAILED " + json.dumps({"phase": "resolve", "output": uv_output})]
    error = _build_failure("dependencies", BuildStep.ENVIRONMENTS, "returned a non-zero code: 3", lines)
    assert error.step is BuildStep.ENVIRONMENTS and "No solution found" in error.cause
    probe = {
        "ok": False,
        "what": "importing model_manager",
        "error": "NameError: x",
        "file": "model_manager.py",
        "line": 3,
    }
    error = _build_failure("learner", BuildStep.IMPORT_CHECK, "non-zero", ["FLOPS_PROBE_RESULT " + json.dumps(probe)])
    assert error.step is BuildStep.IMPORT_CHECK
    assert error.cause == "importing model_manager failed: NameError: x (model_manager.py line 3)"
    mlflow = {"phase": "mlflow", "message": "the repo's dependencies pull mlflow==3 into the learner"}
    error = _build_failure("dependencies", BuildStep.ENVIRONMENTS, "x", ["FLOPS_STAGE_FAILED " + json.dumps(mlflow)])
    assert "learners carry no MLflow" not in error.cause and "pull mlflow" in error.cause
    error = _build_failure("learner", BuildStep.IMPORT_CHECK, "manifest unknown", ["Step 1/4 : FROM x"])
    assert error.cause.startswith("docker build of the learner failed: manifest unknown")


def test_log_forwarder_bounds_the_rate() -> None:
    notifier = RecordingNotifier()
    forwarder = LogForwarder(notifier, rate_per_s=0.001, burst=5)  # type: ignore[arg-type]
    for i in range(50):
        forwarder.line("build learner", f"line {i}")
    forwarder.line("build learner", " ---> 1234abcd")  # builder noise is never forwarded
    forwarder.close()
    assert notifier.lines[:5] == [f"build learner: line {i}" for i in range(5)]
    assert len(notifier.lines) == 6 and "45 more build log lines" in notifier.lines[-1]


def test_engine_platform() -> None:
    assert engine_platform({"OSType": "linux", "Architecture": "x86_64"}) == "linux/amd64"
    assert engine_platform({"OSType": "linux", "Architecture": "aarch64"}) == "linux/arm64"


@pytest.mark.parametrize(("registry", "plan"), [("local", "local"), ("oci", "oci")])
def test_builder_plan_follows_the_registry(registry: str, plan: str) -> None:
    assert Settings(registry=registry).builder_plan == plan


def test_input_server_answers_head_as_uv_asks_before_a_find_links_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"0" * 10)
    server = InputServer(find_links_inputs(local_wheels([str(tmp_path), str(tmp_path / "missing")])))
    try:
        page = httpx.get(f"{server.url}/wheels/").text
        assert f'href="{wheel.name}"' in page
        head = httpx.head(f"{server.url}/wheels/{wheel.name}")
        assert head.status_code == 200 and head.headers["content-length"] == "10" and head.content == b""
        assert httpx.get(f"{server.url}/wheels/{wheel.name}").content == wheel.read_bytes()
        assert httpx.head(f"{server.url}/wheels/other.whl").status_code == 404
    finally:
        server.close()


@pytest.mark.parametrize("registry", ["local", "oci"])
def test_both_plans_offer_the_find_links_wheels_to_the_actor_builder(registry: str, tmp_path: Path) -> None:
    settings = Settings(registry=registry, uv_find_links=[str(tmp_path)])
    sla = ProjectSLA.model_validate(
        {
            "customerID": "c1",
            "ml_repo_url": "git://127.0.0.1:9418/digits_pytorch",
            "ml_model_flavor": "pytorch",
            "training_configuration": {"data_tags": ["digits"], "training_rounds": 1},
        }
    )
    spec = specs.builder_spec(settings, Project(id="p1", customer_id="c1", sla=sla), KEY, "127.0.0.1:5000")
    assert BuildJob.model_validate_json(spec.env[JOB_ENV]).uv_find_links == [str(tmp_path)]
    assert spec.read_only_paths == [str(tmp_path)]  # a container builder reads them in place
