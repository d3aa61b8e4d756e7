"""How the CLI shows projects: stage tables, summaries, progress lines."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table


def stage_table(project: dict[str, Any]) -> Table:
    """A table of the project's stages with status and duration."""
    table = Table(title=f"project {project['id']} — {project['status']}")
    for column in ("stage", "name", "status", "started", "duration", "note"):
        table.add_column(column)
    for record in project.get("stages", []):
        ended = record.get("ended_at")
        duration = (ended or time.time()) - record["started_at"]
        table.add_row(
            str(record["stage"]),
            record["name"],
            record["status"],
            time.strftime("%H:%M:%S", time.localtime(record["started_at"])),
            f"{duration:.1f} s" + ("" if ended else " …"),
            record.get("note", ""),
        )
    return table


def cluster_lines(project: dict[str, Any]) -> list[str]:
    """Hierarchical mode: cycles done, and per cluster its state, learners and rounds (none in classic mode)."""
    training = project["sla"]["training_configuration"]
    if training.get("mode") != "hierarchical":
        return []
    lines = [
        f"cycles    {project.get('cycles_completed', 0)}/{training['training_cycles']} "
        f"(min_clusters {project.get('min_clusters') or '-'})"
    ]
    per_cluster = training["training_rounds"] * training["training_cycles"]
    for cluster in project.get("clusters") or []:
        line = (
            f"cluster   {cluster['name']} {cluster['state']}: {len(cluster['learners'])} learner(s), "
            f"round {cluster['rounds_completed']}/{per_cluster}, aggregator on {cluster['node']}"
        )
        lines.append(line + (f" ({cluster['cause']})" if cluster.get("cause") else ""))
    return lines


def summary_lines(project: dict[str, Any], mlflow_ui: str | None = None) -> list[str]:
    """The few lines a user needs once a project has finished."""
    lines = [f"project   {project['id']}  {project['status']}"]
    if project.get("cause"):
        lines.append(f"cause     stage {project.get('failed_stage')}: {project['cause']}")
    lines += cluster_lines(project)
    metrics = project.get("final_metrics") or {}
    if metrics:
        lines.append("metrics   " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    if project.get("cache_hit") is not None:
        lines.append(f"image     {project.get('image_digest')} ({'cache hit' if project['cache_hit'] else 'built'})")
    if project.get("finished_at"):
        lines.append(f"took      {project['finished_at'] - project['created_at']:.1f} s")
    model = project.get("registered_model")
    if model:
        lines.append(f"model     {model['name']} version {model['version']} ({model['uri']})")
    inference = project.get("inference")
    if inference:
        lines.append(f"inference {inference['state']}: {inference['url']} on {inference['node']}")
    if project.get("mlflow"):
        lines.append(f"MLflow    {project['mlflow']['run_url']}")
    elif mlflow_ui:
        lines.append(f"MLflow    {mlflow_ui}")
    return lines


def progress_line(project: dict[str, Any]) -> str:
    """One line: where the project is right now."""
    record = (project.get("stages") or [{}])[-1]
    elapsed = time.time() - record.get("started_at", time.time())
    training = project["sla"]["training_configuration"]
    rounds = training["training_rounds"]
    extra = f" round {project.get('rounds_completed', 0)}/{rounds}" if project.get("stage") == 5 else ""
    if project.get("stage") == 5 and training.get("mode") == "hierarchical":
        extra = f" cycle {project.get('cycles_completed', 0)}/{training['training_cycles']}"
    return f"stage {project.get('stage')} {record.get('name', '')}{extra} — {elapsed:.0f} s"
