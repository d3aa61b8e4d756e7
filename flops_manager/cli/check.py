"""``flops check PATH|GIT_URL [--data-tag T]``: the builder's checks and one local round, before a submit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from flops_common.sla import ModelFlavor
from flops_manager.cli.client import ApiError, FlopsClient
from flops_manager.repo_check import CheckReport, check_repo, local_tag_dir
from flops_manager.settings import Settings

console = Console()


def find_tag_dir(client: FlopsClient, settings: Settings, tag: str) -> Path | None:
    """This machine's data for ``tag``: a learner node the manager lists, else the local nodes' folders."""
    try:
        found = local_tag_dir(client.nodes(), tag)
        if found is not None:
            return found
    except (ApiError, httpx.HTTPError):
        pass  # no manager running: look at the local orchestrator's folders
    for folder in sorted(settings.nodes_dir.glob(f"*/data/{tag}")):
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    return None


def _print_report(report: CheckReport) -> None:
    if report.ok:
        trial = report.details.get("trial", {})
        console.print(
            f"[green]passed[/green] in {sum(report.steps.values()):.1f} s: fit on {trial.get('fit_samples')} samples, "
            f"evaluate loss {trial.get('loss', float('nan')):.4f} accuracy {trial.get('accuracy', float('nan')):.4f} "
            f"on {trial.get('evaluated')} samples (data: {report.details.get('data_dir')})",
            highlight=False,
        )
    else:
        console.print(f"[red]failed[/red] at {report.failed_step}: {report.cause}", highlight=False)


def cmd_check(client: FlopsClient, args: argparse.Namespace) -> int:
    """Check the repo; exit 0 when every step passed, 1 with the builder's cause otherwise."""
    settings = Settings()
    data_dir: Path | None = Path(args.data_dir) if args.data_dir else None
    if data_dir is None and args.data_tag:
        data_dir = find_tag_dir(client, settings, args.data_tag)
        if data_dir is None:
            console.print(f"[red]error[/red] no node data for tag {args.data_tag!r} on this machine", highlight=False)
            return 2

    def notify(step: str, seconds: float) -> None:
        if not args.json:
            console.print(f"  {step:<14} {seconds:6.2f} s", highlight=False)

    report = check_repo(
        args.source,
        data_dir,
        settings.home_dir,
        settings.registry_dir,
        ModelFlavor(args.flavor),
        settings.uv_find_links,
        notify,
    )
    if args.json:
        out: dict[str, Any] = {
            "ok": report.ok,
            "failed_step": report.failed_step,
            "cause": report.cause,
            "steps": report.steps,
            **report.details,
        }
        print(json.dumps(out, indent=2))
    else:
        _print_report(report)
    return 0 if report.ok else 1


def register(sub: Any) -> None:
    """Add ``check`` to the ``flops`` sub-commands."""
    p = sub.add_parser("check", help="the builder's checks and one local round of an ML repo")
    p.add_argument("source", metavar="PATH|GIT_URL")
    p.add_argument("--data-tag", help="train on this machine's node data for the tag (default: a tiny mock)")
    p.add_argument("--data-dir", help="train on the data in this folder (FLOPS_DATA_DIR of the round)")
    p.add_argument("--flavor", default="sklearn", choices=[f.value for f in ModelFlavor])
    p.set_defaults(fn=cmd_check)
