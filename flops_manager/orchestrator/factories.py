"""Orchestrator backends built from settings."""

from __future__ import annotations

import os
from typing import Any

from flops_manager.orchestrator.base import Orchestrator
from flops_manager.orchestrator.local import LocalOrchestrator
from flops_manager.orchestrator.local_identity import ServiceIdentities
from flops_manager.settings import Settings


def local(settings: Settings) -> LocalOrchestrator:
    """Processes on this machine with virtual nodes; unprivileged, one user per service, when we are root."""
    identities = None
    if settings.local_service_uid_base and os.geteuid() == 0:
        identities = ServiceIdentities(settings.home_dir, settings.local_service_uid_base)
    return LocalOrchestrator(
        settings.nodes_dir,
        settings.services_dir,
        settings.local_learner_nodes,
        settings.local_builder_nodes,
        identities,
        clusters=settings.local_clusters,
    )


def _engine_options(settings: Settings) -> dict[str, Any]:
    """What every Docker-backed backend takes from the settings (imported here: it needs the docker SDK)."""
    from flops_manager.orchestrator.docker_base import instance_id

    return {
        "service_image": settings.docker_service_image,
        "docker_host": settings.docker_host,
        "ca_bundle": settings.docker_ca_bundle,
        "registry_ca": settings.oci_registry_ca,
        "instance": instance_id(settings.home_dir),
    }


def docker(settings: Settings) -> Orchestrator:
    """Containers on one Docker engine with virtual nodes."""
    from flops_manager.orchestrator.docker import DockerOrchestrator

    return DockerOrchestrator(
        settings.nodes_dir,
        settings.services_dir,
        settings.docker_learner_nodes,
        settings.docker_builder_nodes,
        clusters=settings.docker_clusters,
        **_engine_options(settings),
    )


def swarm(settings: Settings) -> Orchestrator:
    """Services on a Docker Swarm, placed by node labels."""
    from flops_manager.orchestrator.swarm import SwarmOrchestrator

    return SwarmOrchestrator(settings.nodes_dir, settings.services_dir, **_engine_options(settings))
