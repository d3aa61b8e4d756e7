"""Fake boundaries for driving the project engine in-process: no process, broker, store server or network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flops_common.events import Event, EventKind, Source, make_event
from flops_common.image_key import ImageKey, ImageManifest
from flops_common.sla import ProjectSLA
from flops_manager.bus.base import Bus, EventHandler
from flops_manager.orchestrator.base import (
    CAP_IMAGE_BUILDER,
    CAP_LEARNER,
    Node,
    Orchestrator,
    ServiceHandle,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
)
from flops_manager.projects.context import OBSERVER_GRACE_S
from flops_manager.projects.engine import ProjectEngine
from flops_manager.projects.models import Project
from flops_manager.registry.base import Registry
from flops_manager.settings import Settings
from flops_manager.store.memory import MemoryStore
from flops_manager.tracking.base import Tracking

COMMIT = "a" * 40


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeBus(Bus):
    """Keeps what is published; the test delivers service events itself."""

    def __init__(self) -> None:
        self.published: list[Event] = []
        self.replays: list[tuple[str, list[Event]]] = []
        self.handler: EventHandler | None = None

    def start(self, handler: EventHandler) -> None:
        self.handler = handler

    def publish(self, event: Event) -> None:
        self.published.append(event)

    def publish_replay(self, project_id: str, events: list[Event]) -> None:
        self.replays.append((project_id, events))

    def stop(self) -> None:
        self.handler = None


@dataclass
class FakeService:
    spec: ServiceSpec
    handle: ServiceHandle
    state: ServiceState = ServiceState.RUNNING
    exit_code: int | None = None
    output: str = ""
    undeployed: bool = False
    lost: str | None = None


class FakeOrchestrator(Orchestrator):
    """Nodes from a list; services are records whose state the test sets."""

    name = "fake"

    def __init__(
        self, learner_tags: list[list[str]] | None = None, builders: int = 1, clusters: list[str] | None = None
    ) -> None:
        """``clusters``: the cluster of each learner node (default: all in ``cluster-0``)."""
        tags = learner_tags if learner_tags is not None else [["digits"], ["digits"]]
        names = clusters or ["cluster-0"] * len(tags)
        self._nodes = [Node(name=f"builder-{i}", capabilities=[CAP_IMAGE_BUILDER]) for i in range(builders)]
        self._nodes += [
            Node(name=f"learner-{i}", capabilities=[CAP_LEARNER], data_tags=t, cluster=c)
            for i, (t, c) in enumerate(zip(tags, names, strict=True))
        ]
        self.services: dict[str, FakeService] = {}
        self._seq = 0
        # Addresses as on several hosts (default: loopback, one machine): the aggregator's node, and per node.
        self.platform_address = "127.0.0.1"
        self.addresses: dict[str, str] = {}

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def deploy(self, spec: ServiceSpec, node: Node | None = None) -> ServiceHandle:
        if node is None:
            placed = spec.placement.capability or spec.placement.cluster
            node = self.place(spec.placement)[0] if placed else self._nodes[0]
        self._seq += 1
        handle = ServiceHandle(
            backend="fake",
            service_id=f"svc-{self._seq}",
            name=spec.name,
            role=spec.role,
            node=node.name,
            info={"pid": 4242 + self._seq, "workdir": f"/var/flops/services/{spec.project_id}/{spec.name}"},
        )
        self.services[handle.service_id] = FakeService(spec, handle)
        return handle

    def aggregator_address(self) -> str:
        return self.platform_address

    def node_address(self, node: Node) -> str:
        return self.addresses.get(node.name, "127.0.0.1")

    def status(self, handle: ServiceHandle) -> ServiceStatus:
        service = self.services[handle.service_id]
        if service.undeployed:
            return ServiceStatus(state=ServiceState.GONE)
        return ServiceStatus(state=service.state, exit_code=service.exit_code, lost=service.lost)

    def logs(self, handle: ServiceHandle, tail: int | None = None) -> str:
        return self.services[handle.service_id].output

    def undeploy(self, handle: ServiceHandle) -> None:
        self.services[handle.service_id].undeployed = True

    def list_services(self, project_id: str | None = None) -> list[ServiceHandle]:
        return [
            s.handle
            for s in self.services.values()
            if not s.undeployed and (project_id is None or s.spec.project_id == project_id)
        ]

    # test helpers
    def running(self, project_id: str) -> list[str]:
        """Names of the project's services not undeployed."""
        return sorted(h.name for h in self.list_services(project_id))

    def named(self, project_id: str, name: str) -> FakeService:
        """The newest service of that name."""
        found = [s for s in self.services.values() if s.spec.project_id == project_id and s.spec.name == name]
        return found[-1]

    def exit(self, project_id: str, name: str, code: int, output: str = "") -> None:
        """The service stops by itself."""
        service = self.named(project_id, name)
        service.state, service.exit_code, service.output = ServiceState.EXITED, code, output

    def lose_host(self, project_id: str, name: str) -> None:
        """The service's host goes down: its task is lost without an exit code."""
        service = self.named(project_id, name)
        service.state, service.lost = ServiceState.EXITED, f"host {service.handle.node} is down"


class FakeRegistry(Registry):
    """Manifests by key digest."""

    name = "fake"

    def __init__(self) -> None:
        self.manifests: dict[str, ImageManifest] = {}

    def lookup(self, key: ImageKey) -> ImageManifest | None:
        return self.manifests.get(key.digest)

    def list(self) -> list[ImageManifest]:
        return list(self.manifests.values())

    def delete(self, digest: str) -> bool:
        return self.manifests.pop(digest, None) is not None

    @property
    def location(self) -> str:
        return "fake-registry"


class FakeTracking(Tracking):
    @property
    def tracking_uri(self) -> str:
        return "http://tracking.invalid"

    @property
    def ui_url(self) -> str:
        return "http://tracking.invalid"

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"http://tracking.invalid/#/experiments/{experiment_id}/runs/{run_id}"

    def healthy(self) -> bool:
        return True


def manifest_for(key: ImageKey) -> ImageManifest:
    """What a builder would publish for ``key``."""
    return ImageManifest(
        key=key,
        digest=key.digest,
        dependency_hash="d" * 16,
        learner=f"/registry/{key.digest}/learner",
        aggregator=f"/registry/{key.digest}/aggregator",
        app_dir=f"/registry/{key.digest}/app",
        created_at=0.0,
    )


def sla(**training: Any) -> ProjectSLA:
    """The digits SLA with training overrides."""
    return ProjectSLA.model_validate(
        {
            "customerID": "alice",
            "ml_repo_url": "git://127.0.0.1:9418/digits_sklearn",
            "ml_model_flavor": "sklearn",
            "training_configuration": {
                "data_tags": ["digits"],
                "training_rounds": 3,
                "min_available_clients": 2,
                "min_fit_clients": 2,
                "min_evaluate_clients": 2,
                **training,
            },
        }
    )


@dataclass
class Harness:
    """An engine over fakes, driven by ``drain`` on the test's thread."""

    settings: Settings
    store: MemoryStore
    bus: FakeBus
    orchestrator: FakeOrchestrator
    registry: FakeRegistry
    clock: FakeClock
    engine: ProjectEngine
    resolver: Callable[[str, str | None], str]
    saved: list[str] = field(default_factory=list)

    def drain(self) -> None:
        self.engine.worker.drain()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.drain()

    def project(self, project_id: str) -> Project:
        found = self.store.get_project(project_id)
        assert found is not None
        return found

    def send(self, project_id: str, source: Source, kind: EventKind, message: str = "", **data: Any) -> Event:
        event = make_event(project_id, source, kind, message, **data)
        self.deliver(event)
        return event

    def deliver(self, event: Event) -> None:
        assert self.bus.handler is not None, "engine not started"
        self.bus.handler(event)
        self.drain()

    def training_succeeded(self, project_id: str, **data: Any) -> None:
        """The aggregator reports success with metrics and its MLflow run (``data`` adds to them)."""
        metrics = {"accuracy": 0.93, "loss": 0.2}
        mlflow = {"experiment_id": "3", "run_id": "r1"}
        self.send(
            project_id, Source.AGGREGATOR, EventKind.TRAINING_SUCCEEDED, "done", metrics=metrics, mlflow=mlflow, **data
        )

    def nothing_left_after_grace(self, project_id: str) -> None:
        """Once the observer's grace has passed, no service of the project is deployed."""
        self.advance(OBSERVER_GRACE_S + 0.1)
        assert self.orchestrator.running(project_id) == []

    def key(self, project_id: str) -> ImageKey:
        key = self.project(project_id).image_key
        assert key is not None
        return key
