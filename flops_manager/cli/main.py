"""``flops``: submit SLAs and follow projects from a terminal. ``--json`` everywhere."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from flops_common.events import Event, EventKind
from flops_common.timeline import format_event, progress_text
from flops_manager.cli import check, data
from flops_manager.cli.client import ApiError, FlopsClient, default_token
from flops_manager.cli.render import progress_line, stage_table, summary_lines

_FINAL = {"succeeded", "failed", "cancelled"}
console = Console()


def _out(data: Any, as_json: bool) -> bool:
    if as_json:
        print(json.dumps(data, indent=2))
    return as_json


def wait_for(client: FlopsClient, project_id: str, show_progress: bool, timeout_s: float = 3600) -> dict[str, Any]:
    """Poll a project until it is final, showing a progress line when asked."""
    deadline = time.monotonic() + timeout_s
    project = client.project(project_id)
    if not show_progress:
        while project["status"] not in _FINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            project = client.project(project_id)
        return project
    shown = 0.0
    with console.status(progress_line(project)) as status:
        while project["status"] not in _FINAL and time.monotonic() < deadline:
            for event in client.events(project_id, after=shown):
                shown = max(shown, event["timestamp"])
                if (
                    event["kind"] in ("stage_changed", "build_step", "round_completed", "cycle_completed", "log")
                    or "failed" in event["kind"]
                ):
                    console.print(f"  [dim]{event['source']:<10}[/dim] {_event_text(event)}")
            status.update(progress_line(project))
            time.sleep(0.5)
            project = client.project(project_id)
    return project


def _event_text(event: dict[str, Any]) -> str:
    if event["kind"] in ("round_completed", "cycle_completed"):
        return progress_text(EventKind(event["kind"]), event["data"])
    if event["kind"] == "build_step":
        return f"{event['message'] or event['data'].get('step')} ({event['data'].get('seconds', 0):.1f} s)"
    return str(event["message"] or event["kind"])


def cmd_submit(client: FlopsClient, args: argparse.Namespace) -> int:
    sla = json.loads(Path(args.file).read_text())
    accepted = client.submit(sla)
    if not args.wait:
        if not _out(accepted, args.json):
            console.print(f"project {accepted['project_id']} accepted (stage {accepted['stage']})")
        return 0
    if not args.json:
        console.print(f"project {accepted['project_id']} accepted")
    project = wait_for(client, accepted["project_id"], show_progress=not args.json)
    return _finish(client, project, args.json)


def _finish(client: FlopsClient, project: dict[str, Any], as_json: bool) -> int:
    if not _out(project, as_json):
        console.print(stage_table(project))
        ui = client.tracking()["ui_url"]
        for line in summary_lines(project, ui):
            console.print(line, highlight=False)
    return 0 if project["status"] == "succeeded" else 1


def cmd_wait(client: FlopsClient, args: argparse.Namespace) -> int:
    return _finish(client, wait_for(client, args.id, show_progress=not args.json), args.json)


def cmd_list(client: FlopsClient, args: argparse.Namespace) -> int:
    projects = client.projects()
    if not _out(projects, args.json):
        for p in projects:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p["created_at"]))
            console.print(
                f"{p['id']}  {created}  stage {p['stage']}  {p['status']:<9}  {p['sla']['ml_repo_url']}",
                highlight=False,
            )
    return 0


def cmd_status(client: FlopsClient, args: argparse.Namespace) -> int:
    project = client.project(args.id)
    if not _out(project, args.json):
        console.print(stage_table(project))
        for line in summary_lines(project):
            console.print(line, highlight=False)
    return 0


def cmd_logs(client: FlopsClient, args: argparse.Namespace) -> int:
    after = 0.0
    while True:
        final = client.project(args.id)["status"] in _FINAL
        for raw in client.events(args.id, after=after):
            after = max(after, raw["timestamp"])
            print(json.dumps(raw) if args.json else format_event(Event.model_validate(raw)), flush=True)
        if not args.follow or final:
            return 0
        time.sleep(0.5)


def cmd_cancel(client: FlopsClient, args: argparse.Namespace) -> int:
    answer = client.cancel(args.id)
    if not _out(answer, args.json):
        console.print(f"project {args.id} cancelling")
    return 0


_CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json"}


def cmd_serve(client: FlopsClient, args: argparse.Namespace) -> int:
    """Wait for a project's inference service and show where it answers (``--stop`` stops it)."""
    if args.stop:
        answer = client.stop_inference(args.id)
        if not _out(answer, args.json):
            console.print(f"inference service of {args.id} stopped")
        return 0
    deadline = time.monotonic() + args.timeout
    project = client.project(args.id)
    while (project.get("inference") or {}).get("state") in (None, "starting") and project["status"] not in _FINAL:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        project = client.project(args.id)
    inference = project.get("inference")
    if not _out(inference or {"error": "no inference service", "cause": project.get("cause")}, args.json):
        if inference is None:
            console.print(f"[red]no inference service[/red] (project {project['status']}: {project.get('cause')})")
        else:
            console.print(
                f"{inference['state']}: {inference['url']} on {inference['node']} "
                f"(flops predict {args.id} FILE.csv|json)",
                highlight=False,
            )
    return 0 if inference is not None and inference["state"] == "running" else 1


def cmd_predict(client: FlopsClient, args: argparse.Namespace) -> int:
    """Send a CSV or JSON file to the project's model; print the predictions."""
    path = Path(args.file)
    content_type = _CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        console.print(f"[red]error[/red] {path.name}: give a .csv or .json file")
        return 2
    answer = client.predict(args.id, path.read_bytes(), content_type)
    if not _out(answer, args.json):
        print(json.dumps(answer) if not isinstance(answer, str) else answer)
    return 0


def cmd_tracking(client: FlopsClient, args: argparse.Namespace) -> int:
    info = client.tracking()
    if not _out(info, args.json):
        console.print(f"MLflow UI {info['ui_url']} ({'up' if info['healthy'] else 'DOWN'})", highlight=False)
    return 0


def cmd_nodes(client: FlopsClient, args: argparse.Namespace) -> int:
    nodes = client.nodes()
    if not _out(nodes, args.json):
        for n in nodes:
            console.print(
                f"{n['name']:<12} {n.get('state', 'ready'):<6} {n.get('cluster', '-'):<11} "
                f"{','.join(n['capabilities']):<16} "
                f"tags: {','.join(n['data_tags']) or '-'}",
                highlight=False,
            )
    return 0


def cmd_mock(client: FlopsClient, args: argparse.Namespace) -> int:
    result = client.mock_data(args.tag, args.dataset, args.nodes)
    if not _out(result, args.json):
        for part in result["partitions"]:
            console.print(
                f"{part['node']}: {part['train_samples']} train / {part['test_samples']} test "
                f"samples of {result['dataset']} under tag {result['data_tag']}",
                highlight=False,
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``flops`` argument parser."""
    parser = argparse.ArgumentParser(prog="flops", description="FLOps command line")
    parser.add_argument("--url", help="manager URL (default $FLOPS_API_URL or http://127.0.0.1:8081)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="submit an SLA file")
    p.add_argument("file")
    p.add_argument("--wait", action="store_true", help="follow the project until it ends")
    p.set_defaults(fn=cmd_submit)
    p = sub.add_parser("wait", help="follow a project until it ends")
    p.add_argument("id")
    p.set_defaults(fn=cmd_wait)
    sub.add_parser("list", help="your projects").set_defaults(fn=cmd_list)
    p = sub.add_parser("status", help="a project's stages with durations")
    p.add_argument("id")
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("logs", help="a project's observer timeline")
    p.add_argument("id")
    p.add_argument("-f", "--follow", action="store_true")
    p.set_defaults(fn=cmd_logs)
    p = sub.add_parser("cancel", help="cancel a project")
    p.add_argument("id")
    p.set_defaults(fn=cmd_cancel)
    p = sub.add_parser("serve", help="wait for a project's inference service and show its address")
    p.add_argument("id")
    p.add_argument("--stop", action="store_true", help="stop the inference service instead")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for it to answer")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("predict", help="predictions of a project's served model for a CSV or JSON file")
    p.add_argument("id")
    p.add_argument("file", help="CSV with a header row, or JSON (dataframe_split, dataframe_records, instances)")
    p.set_defaults(fn=cmd_predict)
    sub.add_parser("tracking", help="the MLflow UI").set_defaults(fn=cmd_tracking)
    sub.add_parser("nodes", help="nodes, capabilities, data tags").set_defaults(fn=cmd_nodes)
    p = sub.add_parser("mock", help="give learner nodes a bundled dataset under a data tag")
    p.add_argument("tag")
    p.add_argument("--dataset", default="digits", choices=["digits", "iris", "breast_cancer", "wine"])
    p.add_argument("--nodes", nargs="*")
    p.set_defaults(fn=cmd_mock)
    data.register(sub)
    check.register(sub)
    for action in sub.choices.values():
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``flops``."""
    args = build_parser().parse_args(argv)
    client = FlopsClient(args.url, default_token())
    try:
        return int(args.fn(client, args))
    except ApiError as exc:
        if args.json:
            print(json.dumps({"error": exc.status_code, "detail": exc.detail}))
        else:
            console.print(f"[red]error[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
