"""One hierarchical cycle's overhead beyond its cluster rounds (``python -m bench.hierarchical [CYCLES]``).

A fresh suite with four learner nodes in two clusters runs digits_sklearn in hierarchical mode
(``CYCLES`` cycles x 2 rounds, 2 learners per cluster), twice: cold (build included) and warm. From the
root's CYCLE_COMPLETED events: the cycle's time at the root (``round_time_s``: root sends the global
model → both clusters' aggregates aggregated) minus the slowest cluster's time inside its rounds
(``client_compute_s``: first round sent → last round's evaluation, measured by the cluster ServerApp).
What is left is the hand-over root → ClientApp process → channel → cluster ServerApp and back, plus
the root's own exchange. Cycle 1 also waits for the clusters' learners to connect, so it is shown
apart. Prints JSON and writes ``bench/results/hierarchical.json``.
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

LEARNERS = [f"learner-{i}" for i in range(4)]


def cycle_overheads(client: FlopsClient, project_id: str) -> list[dict[str, float]]:
    """Per cycle: its time at the root, the slowest cluster's time in its rounds, the difference."""
    cycles = []
    for event in client.events(project_id):
        if event["kind"] != "cycle_completed":
            continue
        metrics = event["data"]["metrics"]
        cycle_s, rounds_s = float(metrics["round_time_s"]), float(metrics["client_compute_s"])
        cycles.append(
            {
                "cycle": event["data"]["cycle"],
                "cycle_s": round(cycle_s, 3),
                "cluster_rounds_s": round(rounds_s, 3),
                "overhead_s": round(cycle_s - rounds_s, 3),
            }
        )
    return sorted(cycles, key=lambda c: c["cycle"])


def main(argv: list[str]) -> int:
    """Run the cold and the warm project; print and store the figures."""
    cycles = int(argv[0]) if argv else 4
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cycles": cycles, "load": {"start": _load()}}
    with tempfile.TemporaryDirectory(prefix="flops-bench-hier-") as tmp:
        env = {"FLOPS_REPO_HOSTS": '["127.0.0.1"]', "FLOPS_LOCAL_LEARNER_NODES": "4", "FLOPS_LOCAL_CLUSTERS": "2"}
        suite = EmbeddedSuite(Path(tmp) / "home", free_suite_ports(), manager_env=env)
        suite.up()
        try:
            client = FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)
            client.mock_data("digits", "digits", nodes=LEARNERS)
            training = {"mode": "hierarchical", "training_cycles": cycles, "training_rounds": 2}
            for name in ("cold", "warm"):
                run = run_project(client, suite, "digits_sklearn", **training)
                run["cycles_detail"] = cycle_overheads(client, run["project_id"])
                later = [c["overhead_s"] for c in run["cycles_detail"] if c["cycle"] > 1]
                run["overhead_s_median_after_cycle_1"] = round(statistics.median(later), 3) if later else None
                results[name] = run
            results["load"]["end"] = _load()
        finally:
            suite.down()
    write_results("hierarchical", results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
