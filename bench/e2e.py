"""P1/P2: a project through the embedded suite, cold (nothing cached) and warm (images cached)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import PROJECT_ROOT, EmbeddedSuite

FINAL = {"succeeded", "failed", "cancelled"}


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
