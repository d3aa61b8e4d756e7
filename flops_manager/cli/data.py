"""``flops data add|ls``: the user's parquet data on learner nodes (admin)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from flops_manager.cli.client import FlopsClient

console = Console()


def cmd_data_add(client: FlopsClient, args: argparse.Namespace) -> int:
    """Upload each FILE to the node under the tag; stop at the first refusal."""
    added: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            console.print(f"[red]error[/red] {name} is not a file", highlight=False)
            return 2
        result = client.add_data(args.node, args.tag, path)
        added.append(result)
        if not args.json:
            file = result["file"]
            console.print(
                f"{result['node']}: {file['name']} under tag {result['tag']}: {file['rows']} rows, "
                f"columns {', '.join(file['columns'])}",
                highlight=False,
            )
    if args.json:
        print(json.dumps(added, indent=2))
    return 0


def cmd_data_ls(client: FlopsClient, args: argparse.Namespace) -> int:
    """Per node and tag: files and rows."""
    listing = client.data()
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    if not listing:
        console.print("no node data", highlight=False)
    for entry in listing:
        console.print(f"{entry['node']}  tag {entry['tag']}  {entry['rows']} parquet rows", highlight=False)
        for file in entry["files"]:
            rows = f"{file['rows']} rows" if file.get("rows") is not None else "-"
            console.print(f"    {file['name']:<40} {file['format']:<8} {file['bytes']:>12} B  {rows}", highlight=False)
    return 0


def register(sub: Any) -> None:
    """Add ``data add`` and ``data ls`` to the ``flops`` sub-commands."""
    data = sub.add_parser("data", help="parquet data on learner nodes (admin)")
    commands = data.add_subparsers(dest="data_command", required=True)
    p = commands.add_parser("add", help="put <tag>.*.parquet files on a learner node")
    p.add_argument("--node", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(fn=cmd_data_add)
    commands.add_parser("ls", help="files and rows per node and tag").set_defaults(fn=cmd_data_ls)
    for action in commands.choices.values():
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
