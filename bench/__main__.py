"""``make bench``: P1, P2, P3 and P7 on this machine; prints a table, writes ``bench/results/latest.json``."""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e import cold_and_warm, run_project
from bench.plain_flower_run import run_plain_flower
from flops_manager.cli.client import FlopsClient
from flops_manager.suite.embedded import PROJECT_ROOT, EmbeddedSuite, SuitePorts

RESULTS = Path(__file__).resolve().parent / "results"


def _ports() -> SuitePorts:
    socks = [socket.socket() for _ in range(5)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return SuitePorts(broker=ports[0], store=ports[1], mlflow=ports[2], git=ports[3], api=ports[4])


def main() -> int:
    """Run every benchmark in a fresh suite home and record the figures."""
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
    }
    with tempfile.TemporaryDirectory(prefix="flops-bench-") as tmp:
        home = Path(tmp) / "home"
        suite = EmbeddedSuite(home, _ports(), manager_env={"FLOPS_REPO_HOSTS": '["127.0.0.1"]'})
        t0 = time.perf_counter()
        suite.up()
        results["suite_up_s"] = round(time.perf_counter() - t0, 2)
        try:
            client = FlopsClient(suite.api_url, suite.admin_token())
            results |= cold_and_warm(suite, client, home)
            learner_env = next((home / "registry" / "envs").glob("*/learner"))
            data_dirs = [home / "nodes" / f"learner-{i}" / "data" / "digits" for i in range(2)]
            results["P3_plain_flower"] = run_plain_flower(
                learner_env, PROJECT_ROOT / "examples" / "ml_repos" / "digits_sklearn", data_dirs, 3, Path(tmp)
            )
            warm = results["P2_warm"]
            training = warm["stages_s"].get("5 training", 0.0)
            plain = results["P3_plain_flower"]["wall_s"]
            results["P3_ratio_total"] = round(warm["wall_s"] / plain, 2)
            results["P3_ratio_training_stage"] = round(training / plain, 2)
            sla = json.loads((PROJECT_ROOT / "examples" / "slas" / "digits_sklearn.json").read_text())
            sla["ml_repo_url"] = suite.git_url("digits_sklearn")
            sla["ml_repo_ref"] = "no-such-branch"  # POSTed projects end at stage 2: the API is what is measured
            args = {
                "base_url": suite.api_url,
                "token": suite.admin_token(),
                "project_id": warm["project_id"],
                "sla": sla,
                "reads": 2000,
                "posts": 100,
                "threads": 8,
            }
            out = subprocess.run(
                [sys.executable, "-m", "bench.api_load", json.dumps(args)],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=PROJECT_ROOT,
                check=True,
            )
            results["P7_api"] = json.loads(out.stdout.strip().splitlines()[-1])
            results["P1b_warm_one_round"] = run_project(client, suite, "digits_sklearn", training_rounds=1)
        finally:
            suite.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
