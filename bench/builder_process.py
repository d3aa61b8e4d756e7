"""One image-builder process for the build benchmarks: the job, the run, its wall time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flops_common.image_key import ImageKey
from flops_common.jobs import JOB_ENV, BuildJob, BusConfig
from flops_common.sla import ModelFlavor
from tests.helpers.ports import free_port


def bench_job(url: str, commit: str, **fields: object) -> BuildJob:
    """A build of the sklearn repo at ``url``/``commit``; no broker listens on its bus (events are only logged)."""
    key = ImageKey(repo_url=url, commit=commit, flavor=ModelFlavor.SKLEARN)
    return BuildJob.model_validate({"project_id": "bench", "bus": BusConfig(port=free_port()), "key": key, **fields})


def run_builder(job: BuildJob, env: dict[str, str], cwd: Path, log_chars: int) -> tuple[str, float]:
    """Run ``python -m image_builder`` for ``job``: its log (stderr) and wall time; a failed build exits."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "image_builder"],
        cwd=cwd,
        env={**os.environ, **env, JOB_ENV: job.model_dump_json()},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"build failed:\n{proc.stderr[-log_chars:]}")
    return proc.stderr, wall
