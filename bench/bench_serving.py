"""Stage 6 figures: serving build (cold / cached), runtime size, start to first answer, ``/invocations``
latency and throughput for 1-row and 100-row requests (bounded, loopback only).

    uv run --frozen python bench/bench_serving.py [--requests 300]

A private MLflow server (free port, temp dir) gets a digits logistic regression logged as the
aggregator logs it (skops) and registered twice (two versions, same requirements). Then, with the
real ``python -m image_builder`` (``FLOPS_JOB_KIND=serving``, local plan):
cold = empty registry (uv's cache as it is: the packages are not downloaded again),
runtime reused = a new version with the same requirements, cached = the same version again.
The inference service is the real ``python -m inference`` of the built runtime. No broker: events go
nowhere (the services log that). Writes ``bench/results/serving.json`` and ``serving.md``, whose rows
``bench/RESULTS.md`` shows.
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
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from flops_suite.embedded import MLFLOW_SERVER_ENV, mlflow_server_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flops_common.jobs import JOB_ENV, BusConfig  # noqa: E402
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

RESULTS = ROOT / "bench" / "results"
MODEL_NAME = "flops-bench-digits_sklearn"


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
    body = json.dumps({"dataframe_split": {"columns": [f"p{i}" for i in range(64)], "data": [[0.0] * 64]}})
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the inference service exited with {proc.returncode}")
        try:
            answer = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": "application/json"})
            if answer.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from the inference service")
        time.sleep(0.05)
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


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="1-row requests (100-row: a third)")
    args = parser.parse_args()
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
