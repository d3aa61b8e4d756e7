"""A real federated run: aggregator + 2 learners as processes, real Flower, broker and MLflow.

The actor environments are built here the way the local image builder builds them: a uv venv
with the repo's requirements, ``flwr==1.41.0`` (+ ``mlflow-skinny``, ``pandas`` for the
aggregator) and a ``.pth`` file that makes this checkout's ``fl_actors``/``flops_common`` importable.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fl_actors.fab import prepare_app_dir
from flops_common.events import EventKind
from flops_common.jobs import AggregatorJob, BusConfig, LearnerJob
from flops_common.sla import ModelFlavor, StrategyConfig
from tests.helpers.mosquitto import EventCollector, Mosquitto, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SKLEARN_REPO = REPO_ROOT / "examples" / "ml_repos" / "digits_sklearn"
FLWR = "flwr==1.41.0"

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
    reason="needs the mosquitto broker",
)


def _uv() -> str:
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.exists() else (shutil.which("uv") or "uv")


def _build_env(path: Path, packages: list[str]) -> Path:
    """A venv with the packages and this checkout importable (``.pth``); returns its python."""
    env = {**os.environ, "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")}
    subprocess.run([_uv(), "venv", "-q", "--python", "3.11", str(path)], check=True, env=env)
    python = path / "bin" / "python"
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--python", str(python), "--find-links", "/opt/wheels", *packages],
        check=True,
        env=env,
    )
    site = next((path / "lib").glob("python3.*/site-packages"))
    (site / "flops_checkout.pth").write_text(f"{REPO_ROOT}\n")
    return python


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flower-run")


@pytest.fixture(scope="module")
def mlflow_server(workdir: Path) -> Iterator[str]:
    """``mlflow server`` on a free port (sqlite + proxied artifacts), stopped by PID."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--artifacts-destination",
            str(workdir / "mlartifacts"),
        ],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=(workdir / "mlflow.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture(scope="module")
def broker(workdir: Path) -> Iterator[Mosquitto]:
    instance = Mosquitto(workdir)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def actor_envs(workdir: Path) -> dict[str, Path]:
    """Learner and aggregator venvs for the sklearn example (built like the local builder does)."""
    base = ["scikit-learn", "numpy", FLWR, "pydantic", "paho-mqtt"]
    return {
        "learner": _build_env(workdir / "env-learner", base),
        "aggregator": _build_env(workdir / "env-aggregator", [*base, "mlflow-skinny", "pandas"]),
    }


@pytest.fixture(scope="module")
def partitions(workdir: Path) -> list[Path]:
    """Two halves of sklearn's digits as ``part.npz`` files, as the mock data provider writes them."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    split = int(len(x) * 0.75)
    dirs = []
    for index in range(2):
        part = workdir / f"data-{index}"
        part.mkdir()
        np.savez(
            part / "part.npz",
            x_train=x[:split][index::2],
            y_train=y[:split][index::2],
            x_test=x[split:][index::2],
            y_test=y[split:][index::2],
        )
        dirs.append(part)
    return dirs


def _serverapp_running(processes: list[str]) -> bool:
    """Whether a ServerApp task process is among ``processes`` (command lines)."""
    warm = sum("fl_actors.serverapp_executor" in p for p in processes)
    return warm >= 2 or any("flwr-serverapp" in p for p in processes)


def _processes_mentioning(*markers: str) -> list[str]:
    """Living (non-zombie) processes whose command line, environment or cwd mention a marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat[stat.rfind(")") + 2] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if any(marker in text for marker in markers for text in (cmdline, environ, cwd)):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _aggregator_job(project_id: str, app_dir: Path, port: int, broker: Mosquitto, mlflow_url: str, **kw: object):
    values: dict = {
        "project_id": project_id,
        "bus": BusConfig(host="127.0.0.1", port=broker.port),
        "flavor": ModelFlavor.SKLEARN,
        "app_dir": str(app_dir),
        "superlink_port": port,
        "rounds": 3,
        "strategy": StrategyConfig(),
        "min_available_clients": 2,
        "min_fit_clients": 2,
        "min_evaluate_clients": 2,
        "learners": 2,
        "round_timeout_s": 90,
        "mlflow_tracking_uri": mlflow_url,
        "mlflow_experiment": project_id,
    }
    values.update(kw)
    return AggregatorJob(**values)


def test_three_rounds_two_learners_digits_sklearn(
    workdir: Path,
    mlflow_server: str,
    broker: Mosquitto,
    actor_envs: dict[str, Path],
    partitions: list[Path],
) -> None:
    import mlflow

    project_id = "it-digits"
    app_dir = workdir / "app"
    prepare_app_dir(SKLEARN_REPO, app_dir, project_id)
    _wait_http(f"{mlflow_server}/health", 60)
    bus = BusConfig(host="127.0.0.1", port=broker.port)
    superlink_port, *supernode_ports = free_port(), free_port(), free_port()
    aggregator_job = _aggregator_job(project_id, app_dir, superlink_port, broker, mlflow_server)
    collector = EventCollector(broker.port)
    actors_dir = workdir / "actors"
    actors_dir.mkdir()
    learners = []
    try:
        for index, (data_dir, port) in enumerate(zip(partitions, supernode_ports, strict=True)):
            job = LearnerJob(
                project_id=project_id,
                bus=bus,
                learner_index=index,
                app_dir=str(app_dir),
                superlink_address=f"127.0.0.1:{superlink_port}",
                supernode_port=port,
                data_dir=str(data_dir),
            )
            learners.append(
                subprocess.Popen(
                    [str(actor_envs["learner"]), "-m", "fl_actors.learner"],
                    env={**os.environ, "FLOPS_JOB": job.model_dump_json()},
                    cwd=actors_dir,
                    stdout=(actors_dir / f"learner-{index}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        started = time.monotonic()
        aggregator = subprocess.run(
            [str(actor_envs["aggregator"]), "-m", "fl_actors.aggregator"],
            env={**os.environ, "FLOPS_JOB": aggregator_job.model_dump_json()},
            cwd=actors_dir,
            stdout=(actors_dir / "aggregator.log").open("wb"),
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        )
        elapsed = time.monotonic() - started
        log_tail = (actors_dir / "aggregator.log").read_text(errors="replace")[-3000:]
        assert aggregator.returncode == 0, log_tail
        events = collector.wait_for(project_id, {EventKind.TRAINING_SUCCEEDED}, timeout_s=10)
    finally:
        for proc in learners:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in learners:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        collector.close()
    print(f"aggregator wall time: {elapsed:.1f} s")

    kinds = [event.kind for event in events]
    ready = [event for event in events if event.kind == EventKind.LEARNER_READY]
    assert sorted(event.data["samples"] for event in ready) == [673, 674]
    assert kinds.count(EventKind.TRAINING_STARTED) == 1
    rounds = [event for event in events if event.kind == EventKind.ROUND_COMPLETED]
    assert [event.data["round"] for event in rounds] == [1, 2, 3]
    assert all(event.data["metrics"]["clients_replied"] == 2 for event in rounds)
    assert EventKind.TRAINING_FAILED not in kinds
    succeeded = events[kinds.index(EventKind.TRAINING_SUCCEEDED)]
    assert succeeded.data["metrics"]["accuracy"] >= 0.85
    assert succeeded.data["metrics"]["loss"] > 0
    run_ref = succeeded.data["mlflow"]
    assert run_ref["run_url"].startswith(mlflow_server)

    client = mlflow.MlflowClient(mlflow_server)
    run = client.get_run(run_ref["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == run_ref["experiment_id"]
    assert run.data.params["strategy"] == "FedAvg"
    assert run.data.params["rounds"] == "3"
    for metric in ("eval_accuracy", "eval_loss", "round_time_s", "clients_replied"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert sorted(point.step for point in history) == [1, 2, 3], metric
    final_accuracy = max(client.get_metric_history(run.info.run_id, "eval_accuracy"), key=lambda p: p.step)
    assert final_accuracy.value >= 0.85
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [(m.name, m.source_run_id) for m in models] == [("model", run.info.run_id)]
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.sklearn.load_model(models[0].model_uri)
    with np.load(partitions[0] / "part.npz") as npz:
        assert model.score(npz["x_test"] / 16.0, npz["y_test"]) >= 0.85

    assert [proc.returncode for proc in learners] == [143, 143]
    leftovers = _processes_mentioning(str(actors_dir), str(workdir / "env-"))
    assert leftovers == [], leftovers


def test_a_failing_server_app_is_reported_with_its_cause(
    workdir: Path, mlflow_server: str, broker: Mosquitto, actor_envs: dict[str, Path]
) -> None:
    """A bad strategy option makes the ServerApp fail: TRAINING_FAILED says why, exit code 1."""
    project_id = "it-bad-option"
    app_dir = workdir / "app-bad"
    prepare_app_dir(SKLEARN_REPO, app_dir, project_id)
    _wait_http(f"{mlflow_server}/health", 60)
    job = _aggregator_job(
        project_id,
        app_dir,
        free_port(),
        broker,
        mlflow_server,
        strategy=StrategyConfig(options={"learning_rate": 0.1}),
    )
    collector = EventCollector(broker.port)
    actors_dir = workdir / "actors-bad"
    actors_dir.mkdir()
    try:
        done = subprocess.run(
            [str(actor_envs["aggregator"]), "-m", "fl_actors.aggregator"],
            env={**os.environ, "FLOPS_JOB": job.model_dump_json()},
            cwd=actors_dir,
            capture_output=True,
            timeout=300,
            check=False,
        )
        events = collector.wait_for(project_id, {EventKind.TRAINING_FAILED}, timeout_s=10)
    finally:
        collector.close()
    assert done.returncode == 1
    failed = next(event for event in events if event.kind == EventKind.TRAINING_FAILED)
    assert "finished:failed" in failed.message
    assert "FedAvg does not accept the options ['learning_rate']" in failed.message
    assert _processes_mentioning(str(actors_dir)) == []


def test_sigterm_stops_the_aggregator_and_everything_it_started(
    workdir: Path, mlflow_server: str, broker: Mosquitto, actor_envs: dict[str, Path]
) -> None:
    """No learner ever connects; SIGTERM during the run leaves no SuperLink/ServerApp behind."""
    project_id = "it-sigterm"
    app_dir = workdir / "app-sigterm"
    prepare_app_dir(SKLEARN_REPO, app_dir, project_id)
    _wait_http(f"{mlflow_server}/health", 60)
    job = _aggregator_job(project_id, app_dir, free_port(), broker, mlflow_server)
    collector = EventCollector(broker.port)
    actors_dir = workdir / "actors-sigterm"
    actors_dir.mkdir()
    proc = subprocess.Popen(
        [str(actor_envs["aggregator"]), "-m", "fl_actors.aggregator"],
        env={**os.environ, "FLOPS_JOB": job.model_dump_json()},
        cwd=actors_dir,
        stdout=(actors_dir / "aggregator.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        collector.wait_for(project_id, {EventKind.TRAINING_STARTED}, timeout_s=120)
        deadline = time.monotonic() + 60  # until the ServerApp process is up (waiting for learners)
        # Flower's flwr-serverapp, or a ServerApp forked from FLOps' warm runner (two such processes)
        while not _serverapp_running(_processes_mentioning(str(actors_dir))):
            assert time.monotonic() < deadline, _processes_mentioning(str(actors_dir))
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
        collector.close()
    assert _processes_mentioning(str(actors_dir)) == []
