"""FL-actor images with the ``oci`` plan: cold build, rebuild after a code-only commit, image sizes.

    uv run python bench/bench_containers.py [--state-dir DIR] [--out bench/results/containers.json]

Starts its own dockerd (no bridge, host networking) and registry under a fresh state directory (so the
cold build finds no dependency image), makes the actor base image (timed apart), then runs
``python -m image_builder`` (oci plan, builds by that engine, pushes to that registry) for the
digits_sklearn example and for a commit that only changes a comment in ``model_manager.py``.
Stops both by PID at the end. No broker: events go nowhere, the builder's log has the timings.
Targets: cold <= 120 s, code-only <= 15 s, sklearn learner <= 600 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.builder_process import bench_job, run_builder  # noqa: E402
from flops_common.oci_images import DEFAULT_BASE_IMAGE, actor_ref  # noqa: E402
from flops_suite.docker_engine import DockerEngine, RegistryServer, make_base_image  # noqa: E402
from tests.helpers.git_repos import file_url, make_git_repo  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402

TARGETS = {"cold_s": 120.0, "code_only_s": 15.0, "learner_mb": 600.0}


def build(docker_host: str, registry: str, url: str, commit: str, work: Path) -> dict[str, Any]:
    """One builder process; its wall time and the step times it logged."""
    job = bench_job(url, commit, plan="oci", registry=registry, base_image=DEFAULT_BASE_IMAGE)
    env = {"DOCKER_HOST": docker_host, "FLOPS_BUILDER_WORKDIR": str(work)}
    log, wall = run_builder(job, env, cwd=ROOT, log_chars=4000)
    steps: dict[str, Any] = {}
    for line in log.splitlines():
        if "image_builder.timing: step " in line:
            name, rest = line.split("step ", 1)[1].split(" done in ", 1)
            seconds, extra = rest.split(" s ", 1)
            steps[name] = {"seconds": float(seconds), **json.loads(extra)}
    return {"wall_s": round(wall, 2), "digest": job.key.digest, "steps": steps}


def registry_size(registry: str, reference: str) -> int:
    """Compressed bytes of an image as the registry stores it (config plus layers)."""
    repository, tag = reference.split("/", 1)[1].rsplit(":", 1)
    manifest = httpx.get(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    ).json()
    return int(manifest["config"]["size"]) + sum(int(layer["size"]) for layer in manifest["layers"])


def main() -> None:
    """Run both builds, print and record the results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, default=None, help="default: a fresh temporary directory")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "containers.json")
    args = parser.parse_args()
    import docker

    with tempfile.TemporaryDirectory(prefix="flops-bench-oci-", dir="/tmp") as tmp:
        base = Path(tmp)
        state = args.state_dir or base / "docker"
        engine = DockerEngine(state)
        registry = RegistryServer(state, free_port())
        engine.start()
        try:
            registry.start()
            started = time.monotonic()
            _, made = make_base_image(engine.host, DEFAULT_BASE_IMAGE)
            base_image_s = round(time.monotonic() - started, 1) if made else None
            origin = base / "origin"
            first = make_git_repo(ROOT / "examples" / "ml_repos" / "digits_sklearn", origin)
            changed = base / "changed"
            shutil.copytree(ROOT / "examples" / "ml_repos" / "digits_sklearn", changed)
            with open(changed / "model_manager.py", "a") as handle:
                handle.write("\n# a code-only change\n")
            second = make_git_repo(changed, origin, message="code-only change")
            url = file_url(origin)
            load_before = os.getloadavg()
            cold = build(engine.host, registry.address, url, first, base / "work")
            code_only = build(engine.host, registry.address, url, second, base / "work")
            client = docker.DockerClient(base_url=engine.host)
            sizes: dict[str, Any] = {}
            for role in ("learner", "aggregator"):
                ref = actor_ref(registry.address, role, code_only["digest"])
                sizes[role] = {
                    "image_mb": round(client.images.get(ref).attrs["Size"] / 1e6, 1),
                    "registry_compressed_mb": round(registry_size(registry.address, ref) / 1e6, 1),
                }
            base_mb = round(client.images.get(DEFAULT_BASE_IMAGE).attrs["Size"] / 1e6, 1)
            client.close()
        finally:
            registry.stop()
            engine.stop()
    results = {
        "what": "oci plan, digits_sklearn: builder process on the host, images built by a private dockerd "
        "(legacy builder, host network), pushed to a local CNCF registry",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
        },
        "base_image": {"name": DEFAULT_BASE_IMAGE, "size_mb": base_mb, "made_in_s": base_image_s},
        "cold": cold,
        "code_only": code_only,
        "sizes": sizes,
        "targets": TARGETS,
        "met": {
            "cold": cold["wall_s"] <= TARGETS["cold_s"],
            "code_only": code_only["wall_s"] <= TARGETS["code_only_s"],
            "learner_size": sizes["learner"]["image_mb"] <= TARGETS["learner_mb"],
        },
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
