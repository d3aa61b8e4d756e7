"""P6: one project with 2, 5, 10 and 20 learners on this machine: round time and peak memory per learner.

Each size gets its own data tag, so the digits are split over exactly that many learner nodes.
While a project runs, a sampler thread reads ``/proc`` once a second and adds up, per learner,
the memory of every process of that learner's service (the learner, its SuperNode, the SuperExec
and any ClientApp process), recognised by their working directory under the service's directory.
RSS counts pages shared between processes once per process (forked ClientApps share most of theirs
with the SuperExec); PSS divides shared pages among the processes that share them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.e2e import run_project
from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _memory_kb(pid: int, with_pss: bool) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; PSS is 0 unless asked for."""
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    pss = 0
    if with_pss:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
                break
    return rss, pss


class TreeMemorySampler:
    """Peak RSS and PSS per learner service of one project, sampled from ``/proc``."""

    def __init__(self, services_dir: Path, interval_s: float = 1.0) -> None:
        self._services_dir = services_dir.resolve()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p6-memory", daemon=True)
        self.peak_rss_kb: dict[str, int] = {}
        self.peak_pss_kb: dict[str, int] = {}
        self.peak_processes: dict[str, int] = {}

    def _learner_of(self, pid: int) -> str | None:
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            return None
        if not cwd.is_relative_to(self._services_dir):
            return None
        parts = cwd.relative_to(self._services_dir).parts
        if len(parts) >= 2 and parts[1].startswith("learner-"):
            return f"{parts[0]}/{parts[1]}"
        return None

    def sample(self) -> None:
        """Add one sample: the memory of every learner's processes right now."""
        rss: dict[str, int] = {}
        pss: dict[str, int] = {}
        count: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            learner = self._learner_of(pid)
            if learner is None:
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                r, p = _memory_kb(pid, with_pss=True)
                rss[learner] = rss.get(learner, 0) + r
                pss[learner] = pss.get(learner, 0) + p
                count[learner] = count.get(learner, 0) + 1
        for learner, value in rss.items():
            self.peak_rss_kb[learner] = max(self.peak_rss_kb.get(learner, 0), value)
            self.peak_pss_kb[learner] = max(self.peak_pss_kb.get(learner, 0), pss[learner])
            self.peak_processes[learner] = max(self.peak_processes.get(learner, 0), count[learner])

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def round_metrics(client: FlopsClient, project_id: str) -> list[dict[str, float]]:
    """Per round: its time and the slowest learner's time in the user's code (from the events)."""
    rounds = []
    for event in client.events(project_id):
        if event["kind"] == "round_completed":
            metrics = event["data"].get("metrics", {})
            rounds.append(
                {
                    "round": event["data"].get("round"),
                    "round_time_s": round(float(metrics.get("round_time_s", 0.0)), 2),
                    "client_compute_s": round(float(metrics.get("client_compute_s", 0.0)), 2),
                }
            )
    return rounds


def run_scale(
    suite: EmbeddedSuite, client: FlopsClient, sizes: tuple[int, ...] = (2, 5, 10, 20), rounds: int = 2
) -> dict[str, Any]:
    """One project per size (``rounds`` rounds); round times, stage breakdown, peak memory per learner."""
    figures: dict[str, Any] = {}
    for n in sizes:
        tag = f"scale{n}"
        client.mock_data(tag, "digits", nodes=[f"learner-{i}" for i in range(n)])
        training = {
            "data_tags": [tag],
            "training_rounds": rounds,
            "min_available_clients": n,
            "min_fit_clients": n,
            "min_evaluate_clients": n,
            "round_timeout_s": 300,
        }
        with TreeMemorySampler(suite.home / "services") as sampler:
            run = run_project(client, suite, "digits_sklearn", **training)
        mine = {k: v for k, v in sampler.peak_rss_kb.items() if k.startswith(run["project_id"] + "/")}
        pss = {k: v for k, v in sampler.peak_pss_kb.items() if k in mine}
        per_round = round_metrics(client, run["project_id"])
        figures[str(n)] = {
            "learners": n,
            "status": run["status"],
            "cause": run["cause"],
            "wall_s": run["wall_s"],
            "stages_s": run["stages_s"],
            "accuracy": (run["metrics"] or {}).get("accuracy"),
            "rounds": per_round,
            "learners_sampled": len(mine),
            "peak_rss_mb_per_learner_max": round(max(mine.values(), default=0) / 1024, 1),
            "peak_rss_mb_per_learner_mean": round(sum(mine.values()) / max(1, len(mine)) / 1024, 1),
            "peak_pss_mb_per_learner_mean": round(sum(pss.values()) / max(1, len(pss)) / 1024, 1),
            "peak_processes_per_learner": max((c for k, c in sampler.peak_processes.items() if k in mine), default=0),
        }
        time.sleep(2.0)  # let the project's services go before the next size starts
    return figures


def main(argv: list[str]) -> int:
    """``python -m bench.scale N [N ...]``: rerun P6 for these sizes in a fresh suite and record them
    in ``bench/results/latest.json`` and ``bench/RESULTS.md`` (marked as a separate run)."""
    import json
    import tempfile

    from bench.__main__ import RESULTS, _load, write_results_md
    from tests.helpers.suites import free_suite_ports

    sizes = tuple(int(a) for a in argv) or (2, 5, 10, 20)
    with tempfile.TemporaryDirectory(prefix="flops-p6-") as tmp:
        env = {"FLOPS_REPO_HOSTS": '["127.0.0.1"]', "FLOPS_LOCAL_LEARNER_NODES": str(max(sizes))}
        suite = EmbeddedSuite(Path(tmp) / "home", free_suite_ports(), manager_env=env)
        suite.up()
        try:
            client = FlopsClient(suite.api_url, suite.admin_token())
            load_before = _load()
            figures = run_scale(suite, client, sizes)
        finally:
            suite.down()
    latest = RESULTS / "latest.json"
    results = json.loads(latest.read_text()) if latest.exists() else {}
    for n, fig in figures.items():
        fig["separate_run"] = f"{time.strftime('%Y-%m-%d %H:%M')}, load before {load_before}, after {_load()}"
        old = results.setdefault("P6_scale", {}).get(n)
        if old is not None and not old.get("separate_run"):
            results.setdefault("P6_replaced", {})[n] = old
        results["P6_scale"][n] = fig
    latest.write_text(json.dumps(results, indent=2))
    if "P1_cold" in results:
        write_results_md(results)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
