"""Orchestrator backends built from settings."""

from __future__ import annotations

from flops_manager.orchestrator.base import Orchestrator
from flops_manager.orchestrator.local import LocalOrchestrator
from flops_manager.settings import Settings


def local(settings: Settings) -> LocalOrchestrator:
    """Processes on this machine with virtual nodes."""
    return LocalOrchestrator(
        settings.nodes_dir, settings.services_dir, settings.local_learner_nodes, settings.local_builder_nodes
    )


def docker(settings: Settings) -> Orchestrator:
    """Containers on one Docker engine with virtual nodes (imported here: it needs the docker SDK)."""
    from flops_manager.orchestrator.docker import DockerOrchestrator, instance_id

    return DockerOrchestrator(
        settings.nodes_dir,
        settings.services_dir,
        settings.docker_learner_nodes,
        settings.docker_builder_nodes,
        service_image=settings.docker_service_image,
        docker_host=settings.docker_host,
        ca_bundle=settings.docker_ca_bundle,
        instance=instance_id(settings.home_dir),
    )


def swarm(settings: Settings) -> Orchestrator:
    """Services on a Docker Swarm, placed by node labels (imported here: it needs the docker SDK)."""
    from flops_manager.orchestrator.docker import instance_id
    from flops_manager.orchestrator.swarm import SwarmOrchestrator

    return SwarmOrchestrator(
        settings.nodes_dir,
        settings.services_dir,
        service_image=settings.docker_service_image,
        docker_host=settings.docker_host,
        ca_bundle=settings.docker_ca_bundle,
        instance=instance_id(settings.home_dir),
    )
