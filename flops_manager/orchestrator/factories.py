"""Orchestrator backends built from settings."""

from __future__ import annotations

from flops_manager.orchestrator.local import LocalOrchestrator
from flops_manager.settings import Settings


def local(settings: Settings) -> LocalOrchestrator:
    """Processes on this machine with virtual nodes."""
    return LocalOrchestrator(
        settings.nodes_dir, settings.services_dir, settings.local_learner_nodes, settings.local_builder_nodes
    )
