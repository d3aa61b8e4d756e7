"""``python -m image_builder`` against a real Mosquitto broker and real uv-built runtimes (local plan)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flops_common.events import Event, EventKind, Source
from flops_common.image_key import ImageKey, ImageManifest
from flops_common.jobs import JOB_ENV, BuildJob, BusConfig
from flops_common.local_layout import image_dir, manifest_path
from flops_common.sla import ModelFlavor
from flops_common.stages import Stage
from image_builder.actor_runtime import MLFLOW_VERSION
from image_builder.steps import ACTOR_BUILD_STEPS, BuildStep
from tests.helpers.corpus import corpus_repo
from tests.helpers.git_repos import file_url, make_git_repo
from tests.helpers.mosquitto import EventCollector, Mosquitto
from tests.helpers.processes import sigterm_when
from tests.helpers.wheels import make_wheel

pytestmark = pytest.mark.timeout(300)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
FINAL = {EventKind.BUILD_SUCCEEDED.value, EventKind.BUILD_FAILED.value}
ALL_STEPS = [s.value for s in ACTOR_BUILD_STEPS]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="module")
def collector(broker: Mosquitto) -> Iterator[EventCollector]:
    with EventCollector(broker.port) as events:
        yield events


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One registry for the whole module, so runtimes built once are reused by later builds."""
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("origin")


class Build:
    """The outcome of one builder process."""

    def __init__(self, returncode: int, events: list[Event], output: str, job: BuildJob) -> None:
        self.returncode = returncode
        self.events = events
        self.output = output
        self.job = job

    def steps(self) -> list[Event]:
        return [e for e in self.events if e.kind == EventKind.BUILD_STEP]

    def step(self, name: str) -> Event:
        return next(e for e in self.steps() if e.data["step"] == name)

    def final(self) -> Event:
        finals = [e for e in self.events if e.kind in FINAL]
        assert len(finals) == 1, self.events
        return finals[0]


def make_job(broker: Mosquitto, registry: Path, url: str, commit: str) -> BuildJob:
    return BuildJob(
        project_id=f"p-{uuid.uuid4().hex[:10]}",
        bus=BusConfig(host="127.0.0.1", port=broker.port),
        key=ImageKey(repo_url=url, commit=commit, flavor=ModelFlavor.SKLEARN),
        registry=str(registry),
    )


def run_builder(broker: Mosquitto, collector: EventCollector, registry: Path, url: str, commit: str) -> Build:
    job = make_job(broker, registry, url, commit)
    env = {**os.environ, JOB_ENV: job.model_dump_json()}
    proc = subprocess.run(
        [sys.executable, "-m", "image_builder"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    events = collector.wait_for(job.project_id, FINAL)
    return Build(proc.returncode, events, proc.stdout + proc.stderr, job)


def assert_no_scratch(registry: Path) -> None:
    scratch = registry / "tmp"
    assert not scratch.exists() or not any(scratch.iterdir()), list(scratch.iterdir())


def run_in(env_dir: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(env_dir) / "bin" / "python"), "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
    )


@pytest.fixture(scope="module")
def first_build(broker: Mosquitto, collector: EventCollector, registry: Path, origin: Path) -> Build:
    commit = make_git_repo(corpus_repo("valid_minimal"), origin / "valid")
    return run_builder(broker, collector, registry, file_url(origin / "valid"), commit)


def test_valid_repo_builds_and_publishes(first_build: Build, registry: Path) -> None:
    build = first_build
    assert build.returncode == 0, build.output
    assert [e.data["step"] for e in build.steps()] == ALL_STEPS
    assert all(e.source == Source.BUILDER and e.stage == Stage.IMAGE_BUILD for e in build.events)
    assert all(e.data["seconds"] >= 0 for e in build.steps())
    final = build.final()
    assert final.kind == EventKind.BUILD_SUCCEEDED
    assert build.events.index(final) == len(build.events) - 1
    manifest = ImageManifest.model_validate(final.data["manifest"])
    on_disk = ImageManifest.model_validate_json(manifest_path(registry, manifest.digest).read_text())
    assert on_disk == manifest
    assert manifest.key == build.job.key and manifest.digest == build.job.key.digest
    assert manifest.app_dir == str(image_dir(registry, manifest.digest) / "app")
    assert (Path(manifest.app_dir) / "model_manager.py").is_file()
    assert (Path(manifest.app_dir) / "pyproject.toml").is_file()
    assert not (Path(manifest.app_dir) / ".git").exists()
    assert set(manifest.step_seconds) == set(ALL_STEPS) - {BuildStep.PUBLISH.value}
    assert build.step(BuildStep.CLONE).data["commit"] == build.job.key.commit
    assert build.step(BuildStep.IMPORT_CHECK).data["parameters"] == 2
    assert_no_scratch(registry)


def test_runtimes_are_importable_and_only_the_aggregator_has_mlflow(first_build: Build) -> None:
    manifest = ImageManifest.model_validate(first_build.final().data["manifest"])
    script = (
        "import json, flwr, numpy, paho.mqtt, pydantic, fl_actors, flops_common\n"
        "try:\n    import mlflow; tracking = mlflow.__version__\n"
        "except ImportError as exc:\n    tracking = str(exc)\n"
        "print(json.dumps([flwr.__version__, fl_actors.__file__, tracking]))"
    )
    found = {}
    for role, env in (("learner", manifest.learner), ("aggregator", manifest.aggregator)):
        result = run_in(env, script)
        assert result.returncode == 0, result.stderr
        flwr_version, fl_actors_file, tracking = json.loads(result.stdout.strip().splitlines()[-1])
        assert flwr_version == "1.41.0"
        assert fl_actors_file.startswith(env + "/lib/")  # a copy inside the runtime, not the checkout
        found[role] = tracking
    assert found == {"learner": "No module named 'mlflow'", "aggregator": "3.17.2"}


def test_code_only_commit_reuses_runtimes(
    first_build: Build, broker: Mosquitto, collector: EventCollector, registry: Path, origin: Path
) -> None:
    first = ImageManifest.model_validate(first_build.final().data["manifest"])
    commit = make_git_repo(corpus_repo("fit_raises"), origin / "valid", message="code-only change")
    build = run_builder(broker, collector, registry, file_url(origin / "valid"), commit)
    assert build.returncode == 0, build.output
    manifest = ImageManifest.model_validate(build.final().data["manifest"])
    assert manifest.digest != first.digest
    assert (manifest.learner, manifest.aggregator, manifest.dependency_hash) == (
        first.learner,
        first.aggregator,
        first.dependency_hash,
    )
    environments = build.step(BuildStep.ENVIRONMENTS)
    assert environments.data["reused"] is True
    assert environments.data["seconds"] < 1.0
    # No runtime work at all: faster than the first build, whatever the machine's load.
    assert manifest.build_seconds < first.build_seconds, (manifest.step_seconds, first.step_seconds)
    assert manifest.build_seconds < 20.0, manifest.step_seconds
    assert_no_scratch(registry)


def test_same_key_again_is_answered_from_the_registry(
    first_build: Build, broker: Mosquitto, collector: EventCollector, registry: Path
) -> None:
    build = run_builder(broker, collector, registry, first_build.job.key.repo_url, first_build.job.key.commit)
    assert build.returncode == 0
    assert build.steps() == []
    assert build.final().data == first_build.final().data


@pytest.mark.parametrize(
    ("repo", "step", "cause"),
    [
        (
            "missing_model_manager",
            BuildStep.CONTRACT,
            "ML repo contract not met: model_manager.py is missing at the repo root",
        ),
        (
            "no_model_manager_class",
            BuildStep.CONTRACT,
            "ML repo contract not met: model_manager.py has no class ModelManager",
        ),
        (
            "missing_method",
            BuildStep.CONTRACT,
            "ML repo contract not met: class ModelManager in model_manager.py lacks method(s): evaluate_model",
        ),
        (
            "syntax_error",
            BuildStep.CONTRACT,
            "ML repo contract not met: model_manager.py line 31: SyntaxError: expected ':'",
        ),
        (
            "missing_data_manager_and_deps",
            BuildStep.CONTRACT,
            "ML repo contract not met: data_manager.py is missing at the repo root; no dependency file: add "
            "requirements.txt, pyproject.toml with [project.dependencies], or conda.yaml with dependencies",
        ),
        (
            "import_error",
            BuildStep.IMPORT_CHECK,
            "importing model_manager failed: ModuleNotFoundError: No module named "
            "'flops_missing_helper_package' (model_manager.py line 4)",
        ),
        (
            "unsatisfiable_dependency",
            BuildStep.ENVIRONMENTS,
            "installing the dependencies failed: No solution found when resolving dependencies: Because ",
        ),
    ],
    ids=[
        "missing_model_manager",
        "no_model_manager_class",
        "missing_method",
        "syntax_error",
        "missing_data_manager_and_deps",
        "import_error",
        "unsatisfiable_dependency",
    ],
)
def test_broken_repo_fails_with_its_cause(
    first_build: Build,  # built first: runtimes for numpy-only repos are then reused
    broker: Mosquitto,
    collector: EventCollector,
    registry: Path,
    origin: Path,
    repo: str,
    step: BuildStep,
    cause: str,
) -> None:
    commit = make_git_repo(corpus_repo(repo), origin / repo)
    build = run_builder(broker, collector, registry, file_url(origin / repo), commit)
    assert build.returncode == 1, build.output
    final = build.final()
    assert final.kind == EventKind.BUILD_FAILED
    assert final.data == {"step": step.value}
    assert final.message.startswith(cause), final.message
    if repo == "unsatisfiable_dependency":
        assert "you require numpy>=1000" in final.message and len(final.message) < 700
        assert final.message.endswith("your requirements are unsatisfiable.")
    steps = [e.data["step"] for e in build.steps()]
    assert steps == ALL_STEPS[: ALL_STEPS.index(step.value)]
    assert not manifest_path(registry, build.job.key.digest).exists()
    assert not image_dir(registry, build.job.key.digest).exists()
    assert_no_scratch(registry)


def test_missing_commit_and_missing_repo(
    broker: Mosquitto, collector: EventCollector, registry: Path, origin: Path, tmp_path: Path
) -> None:
    make_git_repo(corpus_repo("valid_minimal"), origin / "valid")
    missing = "0123456789" * 4
    build = run_builder(broker, collector, registry, file_url(origin / "valid"), missing)
    assert (build.returncode, build.final().kind, build.final().data) == (1, "build_failed", {"step": "clone"})
    assert build.final().message == f"commit {missing} does not exist in repo {file_url(origin / 'valid')}"
    nowhere = file_url(tmp_path / "nowhere")
    build = run_builder(broker, collector, registry, nowhere, missing)
    assert build.final().message.startswith(f"cannot fetch repo {nowhere}: fatal: ")
    assert_no_scratch(registry)


def test_credentials_stay_out_of_events_and_logs(broker: Mosquitto, collector: EventCollector, registry: Path) -> None:
    url = "https://alice:s3cr3t-token@127.0.0.1:1/team/repo.git"  # nothing listens on port 1
    build = run_builder(broker, collector, registry, url, "a" * 40)
    assert build.final().data == {"step": "clone"}
    assert build.final().message.startswith("cannot fetch repo https://127.0.0.1:1/team/repo.git: ")
    assert "s3cr3t" not in build.output
    assert "s3cr3t" not in json.dumps([e.message for e in build.events])


def test_sigterm_reports_and_cleans_up(
    broker: Mosquitto, collector: EventCollector, registry: Path, origin: Path, tmp_path: Path
) -> None:
    """Undeployed mid-build: BUILD_FAILED, no scratch, no half runtime, no leftover uv or probe."""
    source = tmp_path / "src"
    shutil.copytree(corpus_repo("valid_minimal"), source)
    (source / "requirements.txt").write_text("numpy\npackaging\n")  # new dependencies: runtimes are built
    commit = make_git_repo(source, origin / "sigterm")
    job = make_job(broker, registry, file_url(origin / "sigterm"), commit)
    proc = subprocess.Popen(
        [sys.executable, "-m", "image_builder"],
        cwd=PROJECT_ROOT,
        env={**os.environ, JOB_ENV: job.model_dump_json()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def dependencies_done() -> bool:
        return any(e.data.get("step") == "dependencies" for e in collector.events(job.project_id))

    assert sigterm_when(proc, dependencies_done, timeout_s=60, poll_s=0.05, exit_timeout_s=30) == 1
    final = collector.wait_for(job.project_id, FINAL)[-1]
    assert (final.kind, final.data) == (EventKind.BUILD_FAILED, {"step": "environments"})
    assert final.message == "the builder was stopped before the build finished"
    assert_no_scratch(registry)
    deps = next(e for e in collector.events(job.project_id) if e.data.get("step") == "dependencies")
    envs = registry / "envs" / deps.data["dependency_hash"]
    assert not envs.exists() or not any(envs.iterdir())
    leftovers = subprocess.run(["pgrep", "-f", str(registry / "tmp")], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""


def test_concurrent_builders_share_one_runtime_build(
    broker: Mosquitto, collector: EventCollector, registry: Path, origin: Path, tmp_path: Path
) -> None:
    """Two builders of different commits with the same new dependencies: one builds, the other reuses."""
    jobs = []
    for name in ("valid_minimal", "fit_raises"):
        source = tmp_path / name
        shutil.copytree(corpus_repo(name), source)
        (source / "requirements.txt").write_text("numpy\nsix\n")
        commit = make_git_repo(source, origin / f"concurrent-{name}")
        jobs.append(make_job(broker, registry, file_url(origin / f"concurrent-{name}"), commit))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "image_builder"],
            cwd=PROJECT_ROOT,
            env={**os.environ, JOB_ENV: job.model_dump_json()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for job in jobs
    ]
    assert [proc.wait(timeout=240) for proc in procs] == [0, 0]
    builds = [Build(0, collector.wait_for(job.project_id, FINAL), "", job) for job in jobs]
    manifests = [ImageManifest.model_validate(b.final().data["manifest"]) for b in builds]
    assert manifests[0].learner == manifests[1].learner and manifests[0].digest != manifests[1].digest
    assert sorted(b.step(BuildStep.ENVIRONMENTS).data["reused"] for b in builds) == [False, True]
    assert_no_scratch(registry)


def test_a_dependency_that_pulls_mlflow_into_the_learner_is_refused(
    broker: Mosquitto, collector: EventCollector, registry: Path, origin: Path, tmp_path: Path
) -> None:
    """Also shows that ``uv_find_links`` reaches uv: the package exists only in a local directory."""
    links = tmp_path / "wheels"
    make_wheel(links, "flops-pulls-mlflow", "1.0", [f"mlflow-skinny=={MLFLOW_VERSION}"])
    source = tmp_path / "src"
    shutil.copytree(corpus_repo("valid_minimal"), source)
    (source / "requirements.txt").write_text("numpy\nflops-pulls-mlflow==1.0\n")
    commit = make_git_repo(source, origin / "pulls-mlflow")
    job = make_job(broker, registry, file_url(origin / "pulls-mlflow"), commit)
    job = job.model_copy(update={"uv_find_links": [str(links)]})
    proc = subprocess.run(
        [sys.executable, "-m", "image_builder"],
        cwd=PROJECT_ROOT,
        env={**os.environ, JOB_ENV: job.model_dump_json()},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    final = collector.wait_for(job.project_id, FINAL)[-1]
    assert final.data == {"step": "environments"}
    assert final.message == (
        f"the repo's dependencies pull mlflow-skinny=={MLFLOW_VERSION} into the learner runtime; "
        "learners carry no MLflow"
    )
    assert_no_scratch(registry)
