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


def render_markdown(r: dict[str, Any]) -> str:
    """The figures as the table in ``bench/RESULTS.md``."""
    api = r.get("P7_api", {})
    plain = r.get("P3_plain_flower", {})
    rows = [
        (
            "P1 cold end to end (POST → done), digits_sklearn, 2 learners, 3 rounds",
            f"{r['P1_cold']['wall_s']} s",
            "≤ 60 s",
        ),
        ("P2 warm end to end (images cached)", f"{r['P2_warm']['wall_s']} s", "≤ 15 s"),
        ("P2b warm, 1 round", f"{r['P1b_warm_one_round']['wall_s']} s", "-"),
        ("P3 plain Flower, same repo/engine/rounds/learners", f"{plain.get('wall_s')} s", "-"),
        ("P3 ratio FLOps warm total / plain Flower", f"{r.get('P3_ratio_total')}", "≤ 1.3"),
        ("P3 ratio FLOps training stage / plain Flower", f"{r.get('P3_ratio_training_stage')}", "≤ 1.3"),
        ("P7 status reads/s (8 connections, second process)", f"{api.get('reads_per_s')}", "≥ 500/s"),
        ("P7 read latency p50 / p99", f"{api.get('read_p50_ms')} / {api.get('read_p99_ms')} ms", "p99 ≤ 100 ms"),
        ("P7 SLA POST latency p50 / p99", f"{api.get('post_p50_ms')} / {api.get('post_p99_ms')} ms", "p99 ≤ 100 ms"),
        ("suite start (broker, store, MLflow, git, manager)", f"{r['suite_up_s']} s", "-"),
    ]
    lines = [f"# Benchmark results — {r['date']}, {r['machine']}", "", "| figure | measured | goal |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    for name in ("P1_cold", "P2_warm"):
        lines += ["", f"Stage breakdown {name}: " + ", ".join(f"{k} {v} s" for k, v in r[name]["stages_s"].items())]
    return "\n".join(lines) + "\n"


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
    (RESULTS.parent / "RESULTS.md").write_text(render_markdown(results))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
