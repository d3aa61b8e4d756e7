"""The orchestrator boundary: deploy a service spec, watch it, read its logs, remove it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from flops_common.sla import ResourceConstraints

CAP_IMAGE_BUILDER = "image-builder"
CAP_LEARNER = "learner"
CAP_INFERENCE = "inference"
DEFAULT_CLUSTER = "cluster-0"  # the cluster of a node no setting or label puts elsewhere


class ServiceRole(StrEnum):
    """What a service does for its project."""

    BUILDER = "builder"
    AGGREGATOR = "aggregator"
    LEARNER = "learner"
    OBSERVER = "observer"
    INFERENCE = "inference"  # a trained model's scoring server; outlives its project
    CLUSTER_AGGREGATOR = "cluster-aggregator"  # hierarchical mode: a participant of the root, server of a cluster


class Placement(BaseModel):
    """Where a service may run: a node with this capability and all these data tags."""

    capability: str | None = None
    data_tags: list[str] = Field(default_factory=list)
    exclusive: bool = Field(default=False, description="At most one such service of the project per node")
    cluster: str | None = Field(default=None, description="Only nodes of this cluster (hierarchical mode)")


class ServiceSpec(BaseModel):
    """A service to run. ``image`` is backend-specific: an environment dir (local) or image ref."""

    name: str
    project_id: str
    role: ServiceRole
    image: str | None = None
    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)
    workdir: str | None = None
    placement: Placement = Field(default_factory=Placement)
    resources: ResourceConstraints = Field(default_factory=ResourceConstraints)
    one_shot: bool = True
    # Host directories the service reads at the same path (container backends bind them read-only).
    read_only_paths: list[str] = Field(default_factory=list)


class ServiceHandle(BaseModel):
    """What the backend needs to find a deployed service again (persisted on the project)."""

    backend: str
    service_id: str
    name: str
    role: ServiceRole
    node: str
    info: dict[str, Any] = Field(default_factory=dict)


class ServiceState(StrEnum):
    """Where a deployed service stands."""

    RUNNING = "running"
    EXITED = "exited"
    GONE = "gone"


class ServiceStatus(BaseModel):
    """A service's state and, once exited, its exit code."""

    state: ServiceState
    exit_code: int | None = None
    lost: str | None = None  # why it stopped when it never exited by itself (e.g. "host flc-h2 is down")


class Node(BaseModel):
    """A node the orchestrator can place services on."""

    name: str
    capabilities: list[str]
    data_tags: list[str] = Field(default_factory=list)
    data_dir: str | None = None
    cluster: str = Field(default=DEFAULT_CLUSTER, description="The node group it belongs to (hierarchical mode)")
    state: Literal["ready", "down"] = "ready"  # only ready nodes get services


class PlacementError(RuntimeError):
    """No node satisfies a service's placement; the message names what is missing."""


class Orchestrator(ABC):
    """One backend per module; callers only see this interface."""

    name: str

    @abstractmethod
    def nodes(self) -> list[Node]:
        """The nodes and their capabilities and data tags."""

    @abstractmethod
    def deploy(self, spec: ServiceSpec, node: Node | None = None) -> ServiceHandle:
        """Start a service, on ``node`` if given, else wherever its placement allows."""

    @abstractmethod
    def status(self, handle: ServiceHandle) -> ServiceStatus:
        """Whether the service still runs, and its exit code once it stopped."""

    @abstractmethod
    def logs(self, handle: ServiceHandle, tail: int | None = None) -> str:
        """The service's output (last ``tail`` lines when given)."""

    @abstractmethod
    def undeploy(self, handle: ServiceHandle) -> None:
        """Stop the service and everything it started; idempotent."""

    @abstractmethod
    def list_services(self, project_id: str | None = None) -> list[ServiceHandle]:
        """Services this backend runs (for one project when given), to find leftovers."""

    def aggregator_address(self) -> str:
        """The address learners reach an aggregator at (it listens there): loopback on one machine."""
        return "127.0.0.1"

    def node_address(self, node: Node) -> str:
        """The address services on ``node`` listen at for services on other nodes: loopback on one machine."""
        return "127.0.0.1"

    def data_provided(self, node: str, data_tag: str) -> None:
        """Record that ``node`` now holds data under ``data_tag``.

        Backends that read data tags from each node's data folder need nothing; others (``swarm``,
        where tags are node labels) label the node.
        """
        return None  # tags are read from the node's data folder

    def place(self, placement: Placement, count: int = 1) -> list[Node]:
        """Pick ``count`` nodes for a placement, spreading over matching nodes.

        Raises PlacementError naming the capability or data tag no node has.
        """
        candidates = [
            n
            for n in self.nodes()
            if n.state == "ready"
            and placement.cluster in (None, n.cluster)
            and (placement.capability is None or placement.capability in n.capabilities)
            and set(placement.data_tags) <= set(n.data_tags)
        ]
        if not candidates:
            capable = [
                n
                for n in self.nodes()
                if placement.capability in (None, *n.capabilities) and placement.cluster in (None, n.cluster)
            ]
            if placement.capability and not capable:
                raise PlacementError(f"no node has the capability {placement.capability!r}")
            held = {t for n in capable for t in n.data_tags}
            missing = [t for t in placement.data_tags if t not in held]
            raise PlacementError(
                f"no {placement.capability or ''} node holds data tag(s) {missing or placement.data_tags}".replace(
                    "  ", " "
                )
            )
        if placement.exclusive and count > len(candidates):
            raise PlacementError(
                f"{count} {placement.capability} services need {count} nodes with data tag(s) "
                f"{placement.data_tags}, only {len(candidates)} have them"
            )
        return [candidates[i % len(candidates)] for i in range(count)]
