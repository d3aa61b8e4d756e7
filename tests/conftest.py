"""Shared fixtures: the real embedded suite (broker, store, MLflow, git server, manager) on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.helpers.suites import make_test_suite


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSuite]:
    """The whole embedded suite, started by the project's own launcher, stopped by PID afterwards.

    Four learner nodes in two clusters (learner-0/1, learner-2/3): classic projects ignore clusters,
    hierarchical ones (tests/e2e/test_hierarchical.py) train over both.
    """
    home = tmp_path_factory.mktemp("flops-home")
    nodes = {"FLOPS_LOCAL_LEARNER_NODES": "4", "FLOPS_LOCAL_CLUSTERS": "2"}
    with make_test_suite(home, nodes).running() as instance:
        yield instance


@pytest.fixture(scope="session")
def admin(suite: EmbeddedSuite) -> FlopsClient:
    """An API client with the admin token (first calls, e.g. loading a mock dataset, can be slow)."""
    return FlopsClient(suite.api_url, suite.admin_token(), timeout_s=120)  # a loaded 2-core machine is slow


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The FLOps checkout."""
    return Path(__file__).resolve().parents[1]
