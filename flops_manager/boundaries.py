"""The manager's settings and one backend per boundary: what the engine and the API work with."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from flops_manager.bus.base import Bus
from flops_manager.orchestrator.base import Orchestrator
from flops_manager.registry.base import Registry
from flops_manager.settings import Settings
from flops_manager.store.base import Store
from flops_manager.tracking.base import Tracking


@dataclass
class Boundaries:
    """Settings, store, bus, orchestrator, registry and tracking, each already chosen by name."""

    settings: Settings
    store: Store
    bus: Bus
    orchestrator: Orchestrator
    registry: Registry
    tracking: Tracking

    def boundary_fields(self) -> dict[str, Any]:
        """These six by name, to build a subclass from them (without copying anything)."""
        return {f.name: getattr(self, f.name) for f in fields(Boundaries)}
