"""Flower's fixed costs on a project's critical path (``python -m bench.critical_path``): P1, P2 and P3 only.

The parts of ``make bench`` that the SuperNode wait, bytecode and aggregator start change, in one
fresh suite: P1 cold and P2 warm (digits_sklearn, 2 learners, 3 rounds), then, from P2's own events,
the per-round overhead (round time minus the slowest learner's compute; median and p90), the time
from the aggregator's first event to the first completed round, and actor deployment per learner;
then the plain Flower app on the same environment (P3) for the FLOps-vs-Flower ratio of this run.
Prints the figures as JSON and writes them to ``bench/results/critical_path.json``; ``--no-plain``
skips P3.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import RESULTS, _load, _ports
from bench.e2e import cold_and_warm
from bench.plain_flower_run import run_plain_flower
from bench.scale import round_metrics
from flops_manager.cli.client import FlopsClient
from flops_manager.suite.embedded import PROJECT_ROOT, EmbeddedSuite

LEARNERS = 2


def p90(values: list[float]) -> float:
    """The 90th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]


def critical_path(events: list[dict[str, Any]], stages: dict[str, float], deployed_at: float | None) -> dict[str, Any]:
    """Round overhead, aggregator start to first round, deployment per learner, from a project's events.

    The aggregator is deployed when stage 4 starts (``deployed_at``, with the learners); stage 4 ends
    when the aggregator submitted the Flower run (TRAINING_STARTED).
    """
    rounds = [e for e in events if e["kind"] == "round_completed"]
    overheads = [
        float(e["data"]["metrics"].get("round_time_s", 0.0)) - float(e["data"]["metrics"].get("client_compute_s", 0.0))
        for e in rounds
    ]
    submitted = [e["timestamp"] for e in events if e["kind"] == "training_started"]
    first_round = rounds[0]["timestamp"] if rounds else None
    deployment = stages.get("4 actor deployment")
    return {
        "round_overhead_s_median": round(statistics.median(overheads), 2) if overheads else None,
        "round_overhead_s_p90": round(p90(overheads), 2) if overheads else None,
        "aggregator_start_to_first_round_s": round(first_round - deployed_at, 2)
        if first_round and deployed_at
        else None,
        "run_submitted_to_first_round_s": round(first_round - submitted[0], 2) if first_round and submitted else None,
        "actor_deployment_s_per_learner": round(deployment / LEARNERS, 2) if deployment else None,
    }


def main(argv: list[str]) -> int:
    """Run P1, P2 (and P3 unless ``--no-plain``) in a fresh suite; print and store the figures."""
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "load": {"start": _load()}}
    with tempfile.TemporaryDirectory(prefix="flops-bench-cp-") as tmp:
        home = Path(tmp) / "home"
        suite = EmbeddedSuite(home, _ports(), manager_env={"FLOPS_REPO_HOSTS": '["127.0.0.1"]'})
        suite.up()
        try:
            client = FlopsClient(suite.api_url, suite.admin_token())
            results |= cold_and_warm(suite, client, home)
            results["load"]["after P2"] = _load()
            for name in ("P1_cold", "P2_warm"):
                run = results[name]
                events = client.events(run["project_id"])
                run["rounds_detail"] = round_metrics(client, run["project_id"])
                stages = client.project(run["project_id"])["stages"]
                deployed_at = next((st["started_at"] for st in stages if st["stage"] == 4), None)
                run["critical_path"] = critical_path(events, run["stages_s"], deployed_at)
            if "--no-plain" not in argv:
                learner_env = next((home / "registry" / "envs").glob("*/learner"))
                data_dirs = [home / "nodes" / f"learner-{i}" / "data" / "digits" for i in range(LEARNERS)]
                repo = PROJECT_ROOT / "examples" / "ml_repos" / "digits_sklearn"
                plain = run_plain_flower(learner_env, repo, data_dirs, 3, Path(tmp) / "plain")
                results["P3_plain_flower"] = plain
                results["P3_ratio_total"] = round(results["P2_warm"]["wall_s"] / plain["wall_s"], 2)
                results["load"]["after P3"] = _load()
        finally:
            suite.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "critical_path.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
