"""Fixtures of the unit suite: an engine over fake boundaries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flops_manager.projects.engine import ProjectEngine
from flops_manager.projects.repo_refs import RefResolutionError
from flops_manager.settings import Settings
from flops_manager.store.memory import MemoryStore
from tests.unit.engine_fakes import COMMIT, FakeBus, FakeClock, FakeOrchestrator, FakeRegistry, FakeTracking, Harness

HarnessFactory = Callable[..., Harness]


def _resolver(url: str, ref: str | None) -> str:
    if ref == "no-such-branch":
        raise RefResolutionError(f"ref {ref!r} does not exist in {url}")
    return COMMIT


@pytest.fixture
def make_harness(tmp_path: Path) -> HarnessFactory:
    """Build a started engine over fakes; pass fakes to share them (a restart), settings as keywords."""

    def build(
        orchestrator: FakeOrchestrator | None = None,
        store: MemoryStore | None = None,
        registry: FakeRegistry | None = None,
        clock: FakeClock | None = None,
        **overrides: Any,
    ) -> Harness:
        settings = Settings(home=tmp_path, tick_interval_s=0.5, **overrides)
        store = store or MemoryStore()
        bus = FakeBus()
        orchestrator = orchestrator or FakeOrchestrator()
        registry = registry or FakeRegistry()
        clock = clock or FakeClock()
        engine = ProjectEngine(
            settings,
            store,
            bus,
            orchestrator,
            registry,
            FakeTracking(),
            clock=clock,
            run_io=lambda work: work(),
            resolve_commit=_resolver,
        )
        harness = Harness(settings, store, bus, orchestrator, registry, clock, engine, _resolver)
        engine.start(thread=False)
        harness.drain()
        return harness

    return build
