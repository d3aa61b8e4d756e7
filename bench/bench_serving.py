"""Stage 6 figures: serving build (cold / cached), runtime size, start to first answer, ``/invocations``
latency and throughput for 1-row and 100-row requests (bounded, loopback only).

    uv run --frozen python bench/bench_serving.py [--requests 300]          # local plan
    uv run --frozen python bench/bench_serving.py --oci [--requests 300]    # oci plan on a private dockerd

A private MLflow server (free port, temp dir) gets a digits logistic regression logged as the
aggregator logs it (skops) and registered twice (two versions, same requirements). Then, with the
real ``python -m image_builder`` (``FLOPS_JOB_KIND=serving``, local plan):
cold = empty registry (uv's cache as it is: the packages are not downloaded again),
runtime reused = a new version with the same requirements, cached = the same version again.
The inference service is the real ``python -m inference`` of the built runtime. No broker: events go
nowhere (the services log that). Writes ``bench/results/serving.json`` and ``serving.md``, whose rows
``bench/RESULTS.md`` shows.

``--oci`` does the same with the oci plan: its own dockerd (no bridge, host network) and registry under a
fresh state directory, the actor base image, then the builder process on the host building serving images
with that engine (cold = no serving dependency image; reused = a new version adding only its model layer;
cached = the same version, found in the registry), the image size, and the inference service as a
container (start to first answer). It also builds the serving image of a small PyTorch model twice:
with this machine's find-links (``FLOPS_UV_FIND_LINKS``, here a CPU-only torch wheel) and, with
``--pypi-torch``, from PyPI alone (CUDA torch and its nvidia-* packages; a multi-GB download).
Writes ``bench/results/serving-oci.json`` and ``serving-oci.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from flops_suite.embedded import MLFLOW_SERVER_ENV, mlflow_server_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flops_common.jobs import JOB_ENV, BusConfig  # noqa: E402
from flops_common.oci_images import DEFAULT_BASE_IMAGE, image_ref  # noqa: E402
from flops_common.serving import (  # noqa: E402
    JOB_KIND_ENV,
    SERVING_JOB_KIND,
    InferenceJob,
    RegisteredModel,
    ServingBuildJob,
    ServingManifest,
    serving_model_dir,
)
from flops_common.sla import ModelFlavor  # noqa: E402
from image_builder.actor_runtime import MLFLOW_VERSION  # noqa: E402
from image_builder.plans.serving_oci import MODEL_DIR, serving_repository, serving_tag  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODEL_NAME = "flops-bench-digits_sklearn"
MLFLOW_SKINNY = f"mlflow-skinny=={MLFLOW_VERSION}"
TORCH_PIN = "torch==2.13.0"  # the version of this machine's CPU-only wheel (FLOPS_UV_FIND_LINKS)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def start_mlflow(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private MLflow server; returns the process and its URL."""
    port = free_port()
    env = {**os.environ, **MLFLOW_SERVER_ENV}
    proc = subprocess.Popen(
        mlflow_server_command(port, work / "mlflow.db", work / "artifacts"),
        stdout=(work / "mlflow.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", 180, proc)
    return proc, url


def register_versions(url: str, count: int) -> tuple[list[RegisteredModel], np.ndarray]:
    """Train a digits classifier, log it like the aggregator and register ``count`` versions; and test rows."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(url)
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    model = LogisticRegression(max_iter=200).fit(x[:1500], y[:1500])
    versions = []
    for _ in range(count):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", pip_requirements=["scikit-learn", "numpy"], serialization_format="skops"
            )
        registered = mlflow.register_model(info.model_uri, MODEL_NAME)
        uri = f"models:/{MODEL_NAME}/{registered.version}"
        versions.append(RegisteredModel(name=MODEL_NAME, version=str(registered.version), uri=uri))
    return versions, x[1500:].astype(np.float64)


def serving_build(model: RegisteredModel, registry: Path, tracking: str) -> tuple[float, ServingManifest]:
    """One real serving build; its wall time and the published manifest."""
    job = ServingBuildJob(
        project_id="bench",
        bus=BusConfig(port=free_port()),  # nothing listens: the builder logs and goes on
        model=model,
        flavor=ModelFlavor.SKLEARN,
        customer_id="bench",
        registry=str(registry),
        tracking_uri=tracking,
        uv_find_links=[p for p in ("/opt/wheels",) if Path(p).is_dir()],
    )
    env = {**os.environ, JOB_ENV: job.model_dump_json(), JOB_KIND_ENV: SERVING_JOB_KIND}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "image_builder"], env=env, check=True, capture_output=True, cwd=ROOT)
    seconds = time.monotonic() - started
    manifest_file = serving_model_dir(registry, model) / "manifest.json"
    return seconds, ServingManifest.model_validate_json(manifest_file.read_text())


def first_answer(url: str, alive: Callable[[], bool], timeout_s: float = 120) -> None:
    """Poll ``/invocations`` with one row until it answers 200; fail when the service is gone."""
    body = json.dumps({"dataframe_split": {"columns": [f"p{i}" for i in range(64)], "data": [[0.0] * 64]}})
    deadline = time.monotonic() + timeout_s
    while True:
        if not alive():
            raise RuntimeError("the inference service exited")
        try:
            answer = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": "application/json"})
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from the inference service")
        time.sleep(0.05)


def start_inference(manifest: ServingManifest, work: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """The real inference service of ``manifest``; its process, URL and seconds from start to first answer."""
    port = free_port()
    job = InferenceJob(project_id="bench", bus=BusConfig(port=free_port()), model_dir=manifest.model_dir, port=port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env[JOB_ENV] = job.model_dump_json()
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(manifest.artifact) / "bin" / "python"), "-m", "inference"],
        env=env,
        stdout=(work / "inference.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    first_answer(url, lambda: proc.poll() is None)
    return proc, url, time.monotonic() - started


def load(url: str, rows: np.ndarray, batch: int, requests: int, csv: bool = False) -> dict[str, float]:
    """``requests`` sequential POSTs of ``batch`` rows on one keep-alive connection: p50, p99, rows/s."""
    columns = [f"p{i}" for i in range(rows.shape[1])]
    bodies = []
    for i in range(requests):
        chunk = rows[(i * batch) % (len(rows) - batch) :][:batch]
        if csv:
            text = ",".join(columns) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in chunk) + "\n"
            bodies.append(text.encode())
        else:
            bodies.append(json.dumps({"dataframe_split": {"columns": columns, "data": chunk.tolist()}}).encode())
    content_type = "text/csv" if csv else "application/json"
    latencies = []
    with httpx.Client(base_url=url, headers={"Content-Type": content_type}, timeout=30) as client:
        client.post("/invocations", content=bodies[0]).raise_for_status()  # warm
        started = time.monotonic()
        for body in bodies:
            t0 = time.perf_counter()
            answer = client.post("/invocations", content=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            answer.raise_for_status()
        total = time.monotonic() - started
    latencies.sort()
    return {
        "requests": requests,
        "rows": batch,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "rows_per_s": round(requests * batch / total, 1),
    }


def markdown(r: dict[str, Any]) -> str:
    """The rows ``bench/RESULTS.md`` shows."""
    rows = [
        ("serving build, cold (empty registry; uv cache warm)", f"{r['build_cold_s']} s"),
        ("serving build, runtime reused (new version, same requirements)", f"{r['build_reused_s']} s"),
        ("serving build, cached (same version)", f"{r['build_cached_s']} s"),
        ("serving runtime + model size (sklearn, mlflow-skinny)", f"{r['size_mb']} MB"),
        ("inference service start to first answer", f"{r['first_answer_s']} s"),
    ]
    for key, label in (
        ("one_row", "1-row JSON"),
        ("hundred_rows", "100-row JSON"),
        ("hundred_rows_csv", "100-row CSV"),
    ):
        m = r[key]
        rows.append(
            (
                f"/invocations {label}, {m['requests']} sequential requests: p50 / p99, rows/s",
                f"{m['p50_ms']} / {m['p99_ms']} ms, {m['rows_per_s']}",
            )
        )
    lines = [
        f"\n## Serving (stage 6) — {r['when']}, `bench/bench_serving.py`\n",
        "| figure | measured |",
        "|---|---|",
        *(f"| {a} | {b} |" for a, b in rows),
        "",
        f"Build steps (cold): {r['cold_steps']}.",
        "",
    ]
    return "\n".join(lines)


TORCH_MODEL = """
import sys, mlflow, mlflow.pytorch, torch
mlflow.set_tracking_uri(sys.argv[1])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
with mlflow.start_run():
    pins = ["torch==" + torch.__version__.split("+")[0]]
    info = mlflow.pytorch.log_model(model, name="model", serialization_format="pickle", pip_requirements=pins)
print(mlflow.register_model(info.model_uri, sys.argv[2]).version)
"""


def register_pytorch_version(url: str, work: Path, find_links: list[str]) -> RegisteredModel:
    """A small PyTorch model logged and registered from a throwaway venv (torch from ``find_links``)."""
    from image_builder.uv_tool import uv_bin

    env_dir = work / "torch-env"
    python = env_dir / "bin" / "python"
    if not python.exists():
        links = [arg for link in find_links for arg in ("--find-links", link)]
        subprocess.run([uv_bin(), "venv", "-q", "--python", sys.executable, str(env_dir)], check=True)
        # Pinned as examples/ml_repos/digits_pytorch pins it: unpinned, uv takes PyPI's newer (CUDA) torch over
        # the local CPU wheel, the model then requires that version and no serving build can use the wheel.
        install = [uv_bin(), "pip", "install", "-q", "--python", str(python), *links, TORCH_PIN, "numpy", "pandas"]
        install.append(MLFLOW_SKINNY)
        subprocess.run(install, check=True)
    name = "flops-bench-digits_pytorch"
    out = subprocess.run([str(python), "-c", TORCH_MODEL, url, name], check=True, capture_output=True, text=True)
    version = out.stdout.strip().splitlines()[-1]
    return RegisteredModel(name=name, version=version, uri=f"models:/{name}/{version}")


def oci_build(
    model: RegisteredModel,
    flavor: ModelFlavor,
    engine: tuple[str, str],
    tracking: str,
    work: Path,
    find_links: list[str],
) -> dict[str, Any]:
    """One real serving build with the oci plan by the engine ``(docker_host, registry)``: wall time, steps."""
    docker_host, registry = engine
    job = ServingBuildJob(
        project_id="bench",
        bus=BusConfig(port=free_port()),  # nothing listens: the builder logs and goes on
        model=model,
        flavor=flavor,
        customer_id="bench",
        plan="oci",
        registry=registry,
        tracking_uri=tracking,
        base_image=DEFAULT_BASE_IMAGE,
        uv_find_links=find_links,
    )
    env = {
        **os.environ,
        JOB_ENV: job.model_dump_json(),
        JOB_KIND_ENV: SERVING_JOB_KIND,
        "DOCKER_HOST": docker_host,
        "FLOPS_BUILDER_WORKDIR": str(work),
    }
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "image_builder"], env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"serving build failed:\n{proc.stderr[-4000:]}")
    steps: dict[str, float] = {}
    reused = None
    for line in proc.stderr.splitlines():
        if "image_builder.timing: step " in line:
            name, rest = line.split("step ", 1)[1].split(" done in ", 1)
            seconds_text, extra = rest.split(" s ", 1)
            steps[name] = float(seconds_text)
            reused = json.loads(extra).get("reused", reused)
    ref = image_ref(registry, serving_repository("bench"), serving_tag(model, "bench"))
    return {"wall_s": round(seconds, 2), "steps": steps, "deps_reused": reused, "image": ref}


def start_inference_container(client: Any, image: str) -> tuple[Any, str, float]:
    """The inference service as a container of ``image`` (host network); seconds from start to first answer."""
    port = free_port()
    job = InferenceJob(project_id="bench", bus=BusConfig(port=free_port()), model_dir=MODEL_DIR, port=port)
    started = time.monotonic()
    container = client.containers.run(
        image,
        ["python", "-m", "inference"],
        environment={JOB_ENV: job.model_dump_json()},
        network_mode="host",
        init=True,
        detach=True,
    )
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        container.reload()
        return bool(container.status in ("created", "running"))

    first_answer(url, alive)
    return container, url, time.monotonic() - started


def torch_in_image(client: Any, image: str) -> str:
    """The torch version the image's venv holds (``+cpu``: the CPU-only build) and its nvidia-* count."""
    probe = (
        "import importlib.metadata as m, torch; "
        "print(torch.__version__, sum(d.metadata['Name'].startswith('nvidia') for d in m.distributions()))"
    )
    out = client.containers.run(image, ["python", "-c", probe], network_mode="host", remove=True)
    version, nvidia = out.decode().split()
    return f"{version}, {nvidia} nvidia-* packages"


def oci_markdown(r: dict[str, Any]) -> str:
    """The rows ``bench/RESULTS.md`` shows for the oci plan."""
    rows = [
        ("serving image build, cold (no serving-deps image; uv cache empty)", f"{r['cold']['wall_s']} s"),
        ("serving image build, new version (serving-deps image reused)", f"{r['reused']['wall_s']} s"),
        ("serving image build, cached (same version in the registry)", f"{r['cached']['wall_s']} s"),
        ("serving image size (sklearn: base + mlflow-skinny, pandas, scikit-learn, skops)", f"{r['size_mb']} MB"),
        ("inference container start to first answer", f"{r['first_answer_s']} s"),
        (
            "/invocations 100-row JSON from the container: p50 / p99, rows/s",
            f"{r['hundred_rows']['p50_ms']} / {r['hundred_rows']['p99_ms']} ms, {r['hundred_rows']['rows_per_s']}",
        ),
    ]
    for key, label in (("torch_cpu", "find-links: CPU-only torch wheel"), ("torch_pypi", "PyPI only: CUDA torch")):
        if key in r:
            rows.append(
                (
                    f"pytorch serving image, {label}: build / size (torch in it)",
                    f"{r[key]['wall_s']} s / {r[key]['size_mb']} MB ({r[key].get('torch', '?')})",
                )
            )
    lines = [
        f"\n## Serving images (stage 6, oci plan) — {r['when']}, `bench/bench_serving.py --oci`\n",
        "| figure | measured |",
        "|---|---|",
        *(f"| {a} | {b} |" for a, b in rows),
        "",
        f"Build steps (cold): {r['cold']['steps']}; (new version): {r['reused']['steps']}.",
        "",
    ]
    return "\n".join(lines)


def run_oci(args: argparse.Namespace) -> None:
    """The oci plan's figures on a private engine and registry (both stopped by PID at the end)."""
    import docker

    from flops_suite.docker_engine import DockerEngine, RegistryServer, make_base_image

    find_links = [p for p in ("/opt/wheels",) if Path(p).is_dir()]
    with tempfile.TemporaryDirectory(prefix="bench-serving-oci-", dir="/tmp") as tmp:
        work = Path(tmp)
        engine = DockerEngine(work / "docker")
        registry = RegistryServer(work / "docker", free_port())
        engine.start()
        mlflow_proc: subprocess.Popen[bytes] | None = None
        container = None
        client = docker.DockerClient(base_url=engine.host, timeout=300)
        try:
            registry.start()
            make_base_image(engine.host, DEFAULT_BASE_IMAGE)
            mlflow_proc, tracking = start_mlflow(work)
            target = (engine.host, registry.address)
            results: dict[str, Any] = {}
            if args.torch_only:  # the sklearn figures stay as recorded
                results = json.loads((RESULTS / "serving-oci.json").read_text())
            else:
                (first, second), rows = register_versions(tracking, 2)
                sklearn = ModelFlavor.SKLEARN
                cold = oci_build(first, sklearn, target, tracking, work / "builds", find_links)
                reused = oci_build(second, sklearn, target, tracking, work / "builds", find_links)
                cached = oci_build(first, sklearn, target, tracking, work / "builds", find_links)
                assert reused["deps_reused"] is True and cold["deps_reused"] is False, (cold, reused)
                container, url, first_answer_s = start_inference_container(client, cold["image"])
                results = {
                    "when": time.strftime("%Y-%m-%d %H:%M"),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "cold": cold,
                    "reused": reused,
                    "cached": cached,
                    "size_mb": round(client.images.get(cold["image"]).attrs["Size"] / 1e6, 1),
                    "first_answer_s": round(first_answer_s, 2),
                    "hundred_rows": load(url, rows, 100, max(10, args.requests // 3)),
                }
                container.remove(force=True)
                container = None
                write_oci_results(results)  # the PyTorch builds below take long: keep what is measured
            variants = [("torch_cpu", find_links)] + ([("torch_pypi", [])] if args.pypi_torch else [])
            for key, links in variants:  # a version each: the second would otherwise be a registry hit
                torch_model = register_pytorch_version(tracking, work, find_links)
                built = oci_build(torch_model, ModelFlavor.PYTORCH, target, tracking, work / "builds", links)
                built["size_mb"] = round(client.images.get(built["image"]).attrs["Size"] / 1e6, 1)
                built["torch"] = torch_in_image(client, built["image"])
                built["load_average"] = [round(x, 2) for x in os.getloadavg()]
                results[key] = built
                write_oci_results(results)
        finally:
            if container is not None:
                container.remove(force=True)
            client.close()
            if mlflow_proc is not None and mlflow_proc.poll() is None:
                os.killpg(mlflow_proc.pid, signal.SIGTERM)
                mlflow_proc.wait(timeout=30)
            registry.stop()
            engine.stop()
    print(oci_markdown(results))


def write_oci_results(results: dict[str, Any]) -> None:
    """``bench/results/serving-oci.json`` and ``serving-oci.md``."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving-oci.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "serving-oci.md").write_text(oci_markdown(results))


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="1-row requests (100-row: a third)")
    parser.add_argument("--oci", action="store_true", help="the oci plan's figures (own dockerd and registry)")
    parser.add_argument("--pypi-torch", action="store_true", help="with --oci: also torch from PyPI alone (GBs)")
    parser.add_argument("--torch-only", action="store_true", help="with --oci: only the PyTorch serving image")
    args = parser.parse_args()
    if args.oci:
        run_oci(args)
        return
    with tempfile.TemporaryDirectory(prefix="flops-bench-serving-") as tmp:
        work = Path(tmp)
        mlflow_proc, tracking = start_mlflow(work)
        inference: subprocess.Popen[bytes] | None = None
        try:
            (first, second), rows = register_versions(tracking, 2)
            registry = work / "registry"
            cold_s, cold = serving_build(first, registry, tracking)
            reused_s, reused = serving_build(second, registry, tracking)
            cached_s, _ = serving_build(first, registry, tracking)
            assert reused.env_reused and not cold.env_reused
            inference, url, first_answer_s = start_inference(cold, work)
            results = {
                "when": time.strftime("%Y-%m-%d %H:%M"),
                "build_cold_s": round(cold_s, 2),
                "build_reused_s": round(reused_s, 2),
                "build_cached_s": round(cached_s, 2),
                "cold_steps": cold.step_seconds,
                "size_mb": round(cold.size_bytes / 1e6, 1),
                "first_answer_s": round(first_answer_s, 2),
                "one_row": load(url, rows, 1, args.requests),
                "hundred_rows": load(url, rows, 100, max(10, args.requests // 3)),
                "hundred_rows_csv": load(url, rows, 100, max(10, args.requests // 3), csv=True),
            }
        finally:
            for proc in (inference, mlflow_proc):
                if proc is not None and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "serving.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
