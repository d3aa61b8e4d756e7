"""The project document: everything FLOps knows about one project."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.serving import RegisteredModel, ServingManifest
from flops_common.sla import ProjectSLA
from flops_common.stages import ProjectStatus, Stage
from flops_manager.orchestrator.base import ServiceHandle

StageStatus = Literal["running", "done", "skipped", "failed", "cancelled"]


class StageRecord(BaseModel):
    """One stage of one project, with its timestamps."""

    stage: Stage
    name: str
    status: StageStatus = "running"
    started_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    note: str = ""

    @property
    def seconds(self) -> float | None:
        """How long the stage took (None while running)."""
        return None if self.ended_at is None else self.ended_at - self.started_at


class MlflowRef(BaseModel):
    """Where the project's training run lives in MLflow."""

    experiment_id: str
    run_id: str
    run_url: str


InferenceState = Literal["starting", "running", "stopped", "failed"]


class Inference(BaseModel):
    """A project's inference service: it outlives the project until stopped."""

    handle: ServiceHandle
    url: str
    node: str
    state: InferenceState = "starting"
    started_at: float = Field(default_factory=time.time)
    ready_seconds: float | None = None
    stopped_at: float | None = None

    @property
    def live(self) -> bool:
        """Whether the service is deployed (starting or answering)."""
        return self.state in ("starting", "running")


ClusterState = Literal["running", "lost"]


class ClusterRecord(BaseModel):
    """Hierarchical mode: one cluster of a project, its learners and how far it got."""

    name: str
    node: str  # where its cluster aggregator runs
    learners: list[str] = Field(default_factory=list, description="Service names of its learners")
    state: ClusterState = "running"
    rounds_completed: int = 0  # over all cycles
    cause: str | None = None  # why it was lost


class ProjectRecord(BaseModel):
    """What a project's owner may know of it: no backend internals (those are on ``Project``)."""

    id: str
    customer_id: str
    sla: ProjectSLA
    status: ProjectStatus = ProjectStatus.RUNNING
    stage: Stage = Stage.PROJECT_START
    stages: list[StageRecord] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    stage_deadline: float | None = None
    cause: str | None = None
    failed_stage: Stage | None = None
    warnings: list[str] = Field(default_factory=list, description="What FLOps changed in the SLA, and why")
    commit: str | None = None
    image_key: ImageKey | None = None
    image_digest: str | None = None
    cache_hit: bool | None = None
    flower_run_id: str | None = None
    rounds_completed: int = 0
    cycles_completed: int = 0  # hierarchical mode
    clusters: list[ClusterRecord] = Field(default_factory=list, description="Hierarchical mode: the clusters used")
    min_clusters: int | None = Field(default=None, description="Hierarchical mode: clusters that must reply")
    learners_ready: int = 0
    learners_failed: int = 0
    mlflow: MlflowRef | None = None
    final_metrics: dict[str, float] | None = None
    build_step_seconds: dict[str, float] = Field(default_factory=dict)
    registered_model: RegisteredModel | None = None
    registration_error: str | None = None
    serving_step_seconds: dict[str, float] = Field(default_factory=dict)


def cluster_aggregator_name(cluster: str) -> str:
    """The service name of a cluster's aggregator."""
    return f"cluster-aggregator-{cluster}"


class Project(ProjectRecord):
    """A project as stored: its record plus the published images and the handles of its services."""

    manifest: ImageManifest | None = None
    services: dict[str, ServiceHandle] = Field(default_factory=dict)
    observer: ServiceHandle | None = None
    serving: ServingManifest | None = None
    inference: Inference | None = None

    def cluster(self, name: str) -> ClusterRecord | None:
        """The cluster of that name (hierarchical mode), if the project uses it."""
        return next((c for c in self.clusters if c.name == name), None)

    def cluster_of_service(self, service: str) -> ClusterRecord | None:
        """The cluster a learner or cluster aggregator service belongs to (hierarchical mode)."""
        return next(
            (c for c in self.clusters if service in c.learners or service == cluster_aggregator_name(c.name)), None
        )

    def current_stage(self) -> StageRecord | None:
        """The record of the stage the project is in."""
        return self.stages[-1] if self.stages else None

    def to_doc(self) -> dict[str, Any]:
        """The MongoDB document."""
        doc = self.model_dump(mode="json")
        doc["_id"] = doc.pop("id")
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Project:
        """Rebuild a project from its MongoDB document."""
        data = dict(doc)
        data["id"] = data.pop("_id")
        return cls.model_validate(data)
