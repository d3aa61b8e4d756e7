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
from flops_common.jobs import AggregatorJob, BusConfig, LearnerJob, ServiceJob
from flops_common.sla import ModelFlavor, StrategyConfig, TrainingConfiguration
from flops_suite.embedded import MLFLOW_SERVER_ENV, mlflow_server_command
from tests.helpers.mosquitto import EventCollector, Mosquitto
from tests.helpers.ports import free_port
from tests.helpers.processes import sigterm_when

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
        mlflow_server_command(port, workdir / "mlflow.db", workdir / "mlartifacts"),
        env={**os.environ, **MLFLOW_SERVER_ENV},
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
    with Mosquitto(workdir) as instance:
        yield instance


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


def _aggregator_job(
    workdir: Path, name: str, broker: Mosquitto, mlflow_url: str, **training: object
) -> tuple[AggregatorJob, Path]:
    """Project ``it-<name>`` on the sklearn example (app prepared, MLflow up) and an empty dir to run it in.

    Its training configuration is 3 rounds over 2 of 2 learners, changed by ``training``.
    """
    project_id = f"it-{name}"
    app_dir = workdir / f"app-{name}"
    prepare_app_dir(SKLEARN_REPO, app_dir, project_id)
    _wait_http(f"{mlflow_url}/health", 60)
    actors_dir = workdir / f"actors-{name}"
    actors_dir.mkdir()
    counts = {"min_available_clients": 2, "min_fit_clients": 2, "min_evaluate_clients": 2, "learners": 2}
    job = AggregatorJob(
        project_id=project_id,
        bus=BusConfig(host="127.0.0.1", port=broker.port),
        flavor=ModelFlavor.SKLEARN,
        app_dir=str(app_dir),
        superlink_port=free_port(),
        training=TrainingConfiguration.model_validate(
            {"data_tags": ["digits"], "training_rounds": 3, "round_timeout_s": 90, **counts, **training}
        ),
        mlflow_tracking_uri=mlflow_url,
        mlflow_experiment=project_id,
    )
    return job, actors_dir


def _start_actor(python: Path, module: str, job: ServiceJob, log: Path) -> subprocess.Popen[bytes]:
    """``python -m module`` with ``job`` in ``FLOPS_JOB``, in the log's directory, its output in ``log``."""
    return subprocess.Popen(
        [str(python), "-m", module],
        env={**os.environ, "FLOPS_JOB": job.model_dump_json()},
        cwd=log.parent,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_or_kill(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """``proc``'s exit code; after ``timeout_s`` it is killed and ``TimeoutExpired`` raised."""
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_three_rounds_two_learners_digits_sklearn(
    workdir: Path,
    mlflow_server: str,
    broker: Mosquitto,
    actor_envs: dict[str, Path],
    partitions: list[Path],
) -> None:
    import mlflow

    aggregator_job, actors_dir = _aggregator_job(workdir, "digits", broker, mlflow_server)
    project_id = aggregator_job.project_id
    supernode_ports = free_port(), free_port()
    collector = EventCollector(broker.port)
    learners = []
    try:
        for index, (data_dir, port) in enumerate(zip(partitions, supernode_ports, strict=True)):
            job = LearnerJob(
                project_id=project_id,
                bus=aggregator_job.bus,
                learner_index=index,
                app_dir=aggregator_job.app_dir,
                superlink_address=f"127.0.0.1:{aggregator_job.superlink_port}",
                supernode_port=port,
                data_dir=str(data_dir),
            )
            learners.append(
                _start_actor(actor_envs["learner"], "fl_actors.learner", job, actors_dir / f"learner-{index}.log")
            )
        started = time.monotonic()
        aggregator = _start_actor(
            actor_envs["aggregator"], "fl_actors.aggregator", aggregator_job, actors_dir / "aggregator.log"
        )
        returncode = _wait_or_kill(aggregator, 600)
        elapsed = time.monotonic() - started
        log_tail = (actors_dir / "aggregator.log").read_text(errors="replace")[-3000:]
        assert returncode == 0, log_tail
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
    assert run.data.params["strategy.name"] == "FedAvg"
    assert run.data.params["training_rounds"] == "3"
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
    """A strategy option FedAvg refuses makes the ServerApp fail: TRAINING_FAILED says why, exit code 1.

    The manager refuses such an SLA at submit (422); a job that skipped that check still fails
    with the cause, not silently.
    """
    job, actors_dir = _aggregator_job(
        workdir, "bad-option", broker, mlflow_server, strategy=StrategyConfig(options={"learning_rate": 0.1})
    )
    project_id = job.project_id
    collector = EventCollector(broker.port)
    try:
        aggregator = _start_actor(actor_envs["aggregator"], "fl_actors.aggregator", job, actors_dir / "aggregator.log")
        returncode = _wait_or_kill(aggregator, 300)
        events = collector.wait_for(project_id, {EventKind.TRAINING_FAILED}, timeout_s=10)
    finally:
        collector.close()
    assert returncode == 1
    failed = next(event for event in events if event.kind == EventKind.TRAINING_FAILED)
    assert "finished:failed" in failed.message
    assert "FedAvg does not accept 'learning_rate'; accepted: " in failed.message
    assert _processes_mentioning(str(actors_dir)) == []


def test_sigterm_stops_the_aggregator_and_everything_it_started(
    workdir: Path, mlflow_server: str, broker: Mosquitto, actor_envs: dict[str, Path]
) -> None:
    """No learner ever connects; SIGTERM during the run leaves no SuperLink/ServerApp behind."""
    job, actors_dir = _aggregator_job(workdir, "sigterm", broker, mlflow_server)
    project_id = job.project_id
    collector = EventCollector(broker.port)
    proc = _start_actor(actor_envs["aggregator"], "fl_actors.aggregator", job, actors_dir / "aggregator.log")
    try:
        collector.wait_for(project_id, {EventKind.TRAINING_STARTED}, timeout_s=120)

        def serverapp_up() -> bool:  # Flower's flwr-serverapp, or a ServerApp forked by FLOps' warm runner
            return _serverapp_running(_processes_mentioning(str(actors_dir)))

        assert sigterm_when(proc, serverapp_up, timeout_s=60, poll_s=0.5, exit_timeout_s=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
        collector.close()
    assert _processes_mentioning(str(actors_dir)) == []
