"""``make demo``: start the embedded suite, give learners digits, run the sklearn example end to end."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from flops_manager.cli.client import FlopsClient
from flops_manager.cli.main import wait_for
from flops_manager.cli.render import stage_table, summary_lines
from flops_suite.embedded import PROJECT_ROOT, EmbeddedSuite

console = Console()


def run(sla_file: Path) -> int:
    """Run one example project through the embedded suite; 0 when it succeeded."""
    started = time.monotonic()
    suite = EmbeddedSuite(Path(os.environ.get("FLOPS_HOME", PROJECT_ROOT / "var")))
    with console.status("starting the embedded suite (broker, store, MLflow, git server, manager)"):
        suite.up()
    console.print(f"suite up in {time.monotonic() - started:.1f} s: manager {suite.api_url}, MLflow {suite.mlflow_url}")
    client = FlopsClient(suite.api_url, suite.admin_token())
    sla = json.loads(sla_file.read_text())
    for tag in sla["training_configuration"]["data_tags"]:
        if not all(tag in node["data_tags"] for node in client.nodes() if "learner" in node["capabilities"]):
            result = client.mock_data(tag, "digits")
            console.print(f"mock data: digits under tag {tag!r} on {len(result['partitions'])} learner nodes")
    accepted = client.submit(sla)
    console.print(f"submitted {sla_file.relative_to(PROJECT_ROOT)} → project {accepted['project_id']}")
    project = wait_for(client, accepted["project_id"], show_progress=True)
    console.print(stage_table(project))
    for line in summary_lines(project, suite.mlflow_url):
        console.print(line, highlight=False)
    console.print(f"\ndemo took {time.monotonic() - started:.1f} s. Where to look:", highlight=False)
    login = f" (user {suite.credentials().mlflow_username}, password in {suite.credentials_file})" if suite.auth else ""
    console.print(f"  MLflow UI      {suite.mlflow_url}{login}", highlight=False)
    console.print(f"  project        uv run flops status {project['id']}", highlight=False)
    console.print(f"  timeline       uv run flops logs {project['id']}", highlight=False)
    console.print(f"  API docs       {suite.api_url}/docs (token in {suite.admin_token_file})", highlight=False)
    console.print("  stop the suite make down", highlight=False)
    return 0 if project["status"] == "succeeded" else 1


def main() -> None:
    """Entry point of ``python -m flops_manager.demo [SLA_FILE]``."""
    default = PROJECT_ROOT / "examples" / "slas" / "digits_sklearn.json"
    sys.exit(run(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else default))


if __name__ == "__main__":
    main()
