"""Shared fixtures: the real embedded suite (broker, store, MLflow, git server, manager) on free ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from flops_manager.cli.client import FlopsClient
from flops_manager.suite.embedded import EmbeddedSuite, SuitePorts


def _free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSuite]:
    """The whole embedded suite, started by the project's own launcher, stopped by PID afterwards."""
    broker, store, mlflow, git, api = _free_ports(5)
    home = tmp_path_factory.mktemp("flops-home")
    instance = EmbeddedSuite(
        home,
        SuitePorts(broker=broker, store=store, mlflow=mlflow, git=git, api=api),
        manager_env={
            "FLOPS_LOCAL_LEARNER_NODES": "3",
            "FLOPS_TICK_INTERVAL_S": "0.5",
            # Fuzzed and broken SLAs must never make the manager reach past this machine.
            "FLOPS_REPO_HOSTS": '["127.0.0.1", "localhost"]',
        },
    )
    try:
        instance.up()
        yield instance
    finally:
        instance.down()


@pytest.fixture(scope="session")
def admin(suite: EmbeddedSuite) -> FlopsClient:
    """An API client with the admin token (first calls, e.g. loading a mock dataset, can be slow)."""
    return FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)  # a loaded 2-core machine is slow


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The FLOps checkout."""
    return Path(__file__).resolve().parents[1]
