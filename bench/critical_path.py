"""Flower's fixed costs on a project's critical path (``python -m bench.critical_path``): P1, P2 and P3 only.

The parts of ``make bench`` that the SuperNode wait, bytecode and aggregator start change, in one
fresh suite: P1 cold and P2 warm (digits_sklearn, 2 learners, 3 rounds), then, from P2's own events,
the per-round overhead (round time minus the slowest learner's compute; median and p90), the time
from the aggregator's first event to the first completed round, and actor deployment per learner;
then the plain Flower app on the same environment (P3) for the FLOps-vs-Flower ratio of this run.
Prints the figures as JSON and writes them to ``bench/results/critical_path.json``; ``--no-plain``
skips P3; ``--warm N`` runs N-1 more warm projects after P2 and adds their median (one warm run
varies by a second or more even on an idle machine).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import _load, write_results
from bench.e2e import LEARNERS, cold_and_warm, project_critical_path, run_project, warm_series
from bench.plain_flower_run import run_plain_flower
from bench.scale import round_metrics
from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import PROJECT_ROOT, EmbeddedSuite
from tests.helpers.suites import free_suite_ports


def warm_runs(argv: list[str]) -> int:
    """The N of ``--warm N`` (1 without it)."""
    if "--warm" not in argv:
        return 1
    index = argv.index("--warm") + 1
    if index >= len(argv) or not argv[index].isdigit() or int(argv[index]) < 1:
        raise SystemExit("--warm takes a number of warm runs, at least 1")
    return int(argv[index])


def main(argv: list[str]) -> int:
    """Run P1, P2 (and P3 unless ``--no-plain``) in a fresh suite; print and store the figures."""
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "load": {"start": _load()}}
    with tempfile.TemporaryDirectory(prefix="flops-bench-cp-") as tmp:
        home = Path(tmp) / "home"
        suite = EmbeddedSuite(home, free_suite_ports(), manager_env={"FLOPS_REPO_HOSTS": '["127.0.0.1"]'})
        suite.up()
        try:
            client = FlopsClient(suite.api_url, suite.admin_token())
            results |= cold_and_warm(suite, client, home)
            results["load"]["after P2"] = _load()
            for name in ("P1_cold", "P2_warm"):
                run = results[name]
                run["rounds_detail"] = round_metrics(client, run["project_id"])
                run["critical_path"] = project_critical_path(client, run)
            warm = [results["P2_warm"]]
            for _ in range(warm_runs(argv) - 1):
                run = run_project(client, suite, "digits_sklearn")
                run["rounds_detail"] = round_metrics(client, run["project_id"])
                warm.append(run)
            if len(warm) > 1:
                results["P2_warm_series"] = warm_series(warm)
                results["load"]["after the warm series"] = _load()
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
    write_results("critical_path", results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
