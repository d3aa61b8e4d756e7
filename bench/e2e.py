"""P1/P2: a project through the embedded suite, cold (nothing cached) and warm (images cached)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import PROJECT_ROOT, EmbeddedSuite

FINAL = {"succeeded", "failed", "cancelled"}
LEARNERS = 2  # digits_sklearn SLA


def stage_breakdown(project: dict[str, Any]) -> dict[str, float]:
    """Seconds spent in each stage, from the project's own timestamps."""
    return {
        f"{s['stage']} {s['name']}": round((s["ended_at"] or time.time()) - s["started_at"], 2)
        for s in project["stages"]
    }


def run_project(client: FlopsClient, suite: EmbeddedSuite, example: str, **training: Any) -> dict[str, Any]:
    """POST an example SLA and wait; returns wall time POST→final, stage breakdown, metrics."""
    sla = json.loads((PROJECT_ROOT / "examples" / "slas" / f"{example}.json").read_text())
    sla["ml_repo_url"] = suite.git_url(example)
    sla["training_configuration"].update(training)
    started = time.perf_counter()
    project_id = client.submit(sla)["project_id"]
    project = client.project(project_id)
    while project["status"] not in FINAL:
        time.sleep(0.2)
        project = client.project(project_id)
    wall = time.perf_counter() - started
    return {
        "project_id": project_id,
        "status": project["status"],
        "cause": project.get("cause"),
        "wall_s": round(wall, 2),
        "cache_hit": project.get("cache_hit"),
        "stages_s": stage_breakdown(project),
        "build_steps_s": project.get("build_step_seconds"),
        "metrics": project.get("final_metrics"),
        "rounds": project.get("rounds_completed"),
    }


def cold_and_warm(suite: EmbeddedSuite, client: FlopsClient, home: Path) -> dict[str, Any]:
    """P1 (fresh registry) then P2 (same SLA again, images cached)."""
    client.mock_data("digits", "digits", nodes=["learner-0", "learner-1"])
    cold = run_project(client, suite, "digits_sklearn")
    warm = run_project(client, suite, "digits_sklearn")
    return {"P1_cold": cold, "P2_warm": warm}


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


def warm_series(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several warm runs of the same project in one suite: each wall time, their median, and the round
    overhead over all their rounds (``rounds_detail`` as :func:`bench.scale.round_metrics` gives it)."""
    walls = [run["wall_s"] for run in runs]
    overheads = [r["round_time_s"] - r["client_compute_s"] for run in runs for r in run["rounds_detail"]]
    return {
        "runs": len(runs),
        "wall_s": walls,
        "wall_s_median": round(statistics.median(walls), 2) if walls else None,
        "round_overhead_s_median": round(statistics.median(overheads), 2) if overheads else None,
        "round_overhead_s_p90": round(p90(overheads), 2) if overheads else None,
        "rounds": len(overheads),
    }


def project_critical_path(client: FlopsClient, run: dict[str, Any]) -> dict[str, Any]:
    """:func:`critical_path` of a project run by :func:`bench.e2e.run_project`, from the API."""
    events = client.events(run["project_id"])
    stages = client.project(run["project_id"])["stages"]
    deployed_at = next((st["started_at"] for st in stages if st["stage"] == 4), None)
    return critical_path(events, run["stages_s"], deployed_at)
