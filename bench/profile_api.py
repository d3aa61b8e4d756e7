"""P7 on its own, optionally under py-spy: ``python -m bench.profile_api [--profile LABEL]``.

Starts a fresh embedded suite, submits one project (a missing ref, so it ends at stage 2) as the
read target, runs the same bounded load as ``make bench`` from a second process and, with
``--profile``, records the manager with py-spy (``uvx py-spy``) into
``bench/results/p7-<LABEL>.speedscope.json`` (open it at https://www.speedscope.app).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import RESULTS, api_load_args, run_api_load
from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.helpers.suites import free_suite_ports


def _py_spy(pid: int, out: Path, gil: bool) -> subprocess.Popen[bytes] | None:
    uvx = shutil.which("uvx")
    if uvx is None:
        print("uvx not found: no profile", file=sys.stderr)
        return None
    return subprocess.Popen(
        [
            uvx,
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "speedscope",
            "--output",
            str(out),
            "--rate",
            "200",
            # GIL holders only, or every sample of every thread (waiting ones too: wall clock).
            "--gil" if gil else "--idle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def main() -> int:
    """Run P7 once against a fresh suite; print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", metavar="LABEL", help="record the manager with py-spy under this label")
    parser.add_argument("--wall", action="store_true", help="wall clock, idle threads too (default: GIL)")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--paced-posts", type=int, default=50)
    opts = parser.parse_args()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flops-p7-") as tmp:
        suite = EmbeddedSuite(Path(tmp) / "home", free_suite_ports(), manager_env={"FLOPS_REPO_HOSTS": '["127.0.0.1"]'})
        suite.up()
        try:
            client = FlopsClient(suite.api_url, suite.admin_token())
            args = api_load_args(suite, client) | {
                "reads": opts.reads,
                "posts": opts.posts,
                "paced_posts": opts.paced_posts,
            }
            spy = None
            if opts.profile:
                manager_pid = suite.status()["manager"]
                assert manager_pid is not None
                RESULTS.mkdir(exist_ok=True)
                spy = _py_spy(manager_pid, RESULTS / f"p7-{opts.profile}.speedscope.json", gil=not opts.wall)
                time.sleep(2.0)  # py-spy attaches
            result = run_api_load(args)
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
                spy.wait(timeout=120)
        finally:
            suite.down()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
