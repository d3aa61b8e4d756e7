"""``python -m flops_suite up|down|status`` — the embedded suite from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flops_suite.embedded import EmbeddedSuite


def main(argv: list[str] | None = None) -> int:
    """Start, stop or show the embedded suite under ``FLOPS_HOME`` (default ``var``)."""
    parser = argparse.ArgumentParser(prog="python -m flops_suite")
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    suite = EmbeddedSuite(Path(os.environ.get("FLOPS_HOME", "var")))
    if args.action == "up":
        suite.up()
        print(f"manager   {suite.api_url}  (admin token in {suite.admin_token_file})")
        print(f"MLflow UI {suite.mlflow_url}")
        print(f"examples  {suite.git_url('digits_sklearn')}, {suite.git_url('digits_pytorch')}")
    elif args.action == "down":
        suite.down()
        print("suite stopped")
    else:
        for name, pid in suite.status().items():
            print(f"{name:<8} {'running pid ' + str(pid) if pid else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
