"""What confinement costs on the warm path (``python -m bench.security_cost [WARM_RUNS]``).

Two fresh suites, one after the other, each running digits_sklearn once cold and ``WARM_RUNS`` times warm:
``open`` (no broker or MLflow auth, local services as the manager's user) and ``confined`` (auth with
per-project broker and MLflow users, one unprivileged uid per service). Compares the warm runs' wall
time (POST -> done, from the project's own timestamps) and stages 1-4 (what the confinement adds to:
users made at start and at actor deployment, working dirs and node data handed to service users).
Writes ``bench/results/security_cost.json``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import _load, write_results
from bench.e2e import run_project
from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.helpers.suites import free_suite_ports

MODES = {"open": ({"FLOPS_LOCAL_SERVICE_UID_BASE": "0"}, False), "confined": ({}, True)}


def _until_training(project: dict[str, Any]) -> float:
    """Seconds from the project's start to the start of stage 5 (training)."""
    stages = project["stages"]
    training = next(s for s in stages if s["stage"] == 5)
    return float(training["started_at"] - stages[0]["started_at"])


def measure(mode: str, warm_runs: int) -> dict[str, Any]:
    """One suite in ``mode``: a cold run, then ``warm_runs`` warm ones."""
    env, auth = MODES[mode]
    with tempfile.TemporaryDirectory(prefix=f"flops-bench-sec-{mode}-") as tmp:
        suite = EmbeddedSuite(
            Path(tmp) / "home", free_suite_ports(), manager_env={"FLOPS_REPO_HOSTS": '["127.0.0.1"]', **env}, auth=auth
        )
        suite.up()
        try:
            client = FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)
            client.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])
            run_project(client, suite, "digits_sklearn")
            warm = []
            for _ in range(warm_runs):
                run = run_project(client, suite, "digits_sklearn")
                project = client.project(run["project_id"])
                assert project["status"] == "succeeded", project.get("cause")
                warm.append({"wall_s": run["wall_s"], "until_training_s": round(_until_training(project), 2)})
        finally:
            suite.down()
    return {
        "warm": warm,
        "wall_s_median": round(statistics.median(r["wall_s"] for r in warm), 2),
        "until_training_s_median": round(statistics.median(r["until_training_s"] for r in warm), 2),
    }


def main(argv: list[str]) -> int:
    """Measure both modes; print and store the figures."""
    warm_runs = int(argv[0]) if argv else 3
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_start": _load()}
    for mode in MODES:
        results[mode] = measure(mode, warm_runs)
    results["load_end"] = _load()
    for key in ("wall_s_median", "until_training_s_median"):
        results[f"added_{key}"] = round(results["confined"][key] - results["open"][key], 2)
    write_results("security_cost", results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
