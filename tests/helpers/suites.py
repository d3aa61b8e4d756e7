"""Embedded suites for tests: their own home, free ports, a fast tick, git repos only on this machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flops_suite.embedded import EmbeddedSuite, SuitePorts
from tests.helpers.ports import free_ports

# Fuzzed and broken SLAs must never make a test manager reach past this machine.
LOCAL_REPO_HOSTS = '["127.0.0.1", "localhost"]'


def free_suite_ports() -> SuitePorts:
    """Broker, store, MLflow, git server and API each on a port nothing listens on."""
    broker, store, mlflow, git, api = free_ports(5)
    return SuitePorts(broker=broker, store=store, mlflow=mlflow, git=git, api=api)


def make_test_suite(
    home: Path,
    manager_env: dict[str, str],
    auth: bool | None = False,
    isolated: bool = False,
    host: str = "127.0.0.1",
) -> EmbeddedSuite:
    """A suite (not started) under ``home`` on free ports of ``host``; ``manager_env`` adds to or overrides the
    test defaults; ``auth=None``: the suite's default.

    Only ``isolated`` suites run local services as unprivileged users (the product's default): their
    ``home`` must stay searchable by others, which pytest's private temporary root is not (every pytest
    session makes it 0700 again), so such a suite lives in a folder of its own (``isolated_home``).
    """
    defaults = {"FLOPS_TICK_INTERVAL_S": "0.5", "FLOPS_REPO_HOSTS": LOCAL_REPO_HOSTS}
    if not isolated:
        defaults["FLOPS_LOCAL_SERVICE_UID_BASE"] = "0"
    return EmbeddedSuite(home, free_suite_ports(), manager_env={**defaults, **manager_env}, auth=auth, host=host)


@contextmanager
def isolated_home(prefix: str) -> Iterator[Path]:
    """A fresh folder under the system's temporary dir (outside pytest's private root), removed after."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_cli(suite: EmbeddedSuite, *args: str) -> str:
    """What ``flops ARGS`` prints against ``suite`` as its admin, white space folded."""
    env = {"FLOPS_API_URL": suite.api_url, "FLOPS_TOKEN": suite.admin_token(), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "flops_manager.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return " ".join(out.stdout.split())
