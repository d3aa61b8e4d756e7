"""Builds the manager's parts from settings; each boundary's backend is chosen by name."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from flops_manager.api.project_views import ProjectViews
from flops_manager.bus.base import Bus
from flops_manager.bus.mqtt_bus import MqttBus
from flops_manager.orchestrator.base import Orchestrator
from flops_manager.projects.engine import ProjectEngine
from flops_manager.registry.base import Registry
from flops_manager.settings import Settings
from flops_manager.store.base import Store
from flops_manager.tracking.base import Tracking
from flops_manager.tracking.mlflow_server import MlflowServerTracking

# name -> "module:factory"; a factory takes Settings. Adding a backend adds a line here only.
ORCHESTRATORS = {
    "local": "flops_manager.orchestrator.factories:local",
    "docker": "flops_manager.orchestrator.factories:docker",
    "swarm": "flops_manager.orchestrator.factories:swarm",
}
STORES = {
    "mongo": "flops_manager.store.factories:mongo",
    "memory": "flops_manager.store.factories:memory",
}
REGISTRIES = {
    "local": "flops_manager.registry.factories:local",
    "oci": "flops_manager.registry.factories:oci",
}


def _load(table: dict[str, str], name: str, kind: str) -> object:
    if name not in table:
        raise ValueError(f"unknown {kind} backend {name!r}; known: {sorted(table)}")
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)


def make_orchestrator(settings: Settings) -> Orchestrator:
    """The orchestrator backend named by ``settings.orchestrator``."""
    factory = _load(ORCHESTRATORS, settings.orchestrator, "orchestrator")
    return factory(settings)  # type: ignore[operator]


def make_store(settings: Settings) -> Store:
    """The store backend named by ``settings.store``."""
    factory = _load(STORES, settings.store, "store")
    return factory(settings)  # type: ignore[operator]


def make_registry(settings: Settings) -> Registry:
    """The registry backend named by ``settings.registry``."""
    factory = _load(REGISTRIES, settings.registry, "registry")
    return factory(settings)  # type: ignore[operator]


@dataclass
class Components:
    """Everything the API needs."""

    settings: Settings
    store: Store
    bus: Bus
    orchestrator: Orchestrator
    registry: Registry
    tracking: Tracking
    engine: ProjectEngine
    views: ProjectViews


def build(settings: Settings) -> Components:
    """Wire the parts; nothing connects until ``engine.start()``."""
    store = make_store(settings)
    bus = MqttBus(settings.bus)
    orchestrator = make_orchestrator(settings)
    registry = make_registry(settings)
    tracking = MlflowServerTracking.from_settings(settings)
    engine = ProjectEngine(settings, store, bus, orchestrator, registry, tracking)
    views = ProjectViews()
    engine.add_listener(views)
    return Components(settings, store, bus, orchestrator, registry, tracking, engine, views)
