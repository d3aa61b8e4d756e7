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
    learners_ready: int = 0
    learners_failed: int = 0
    mlflow: MlflowRef | None = None
    final_metrics: dict[str, float] | None = None
    build_step_seconds: dict[str, float] = Field(default_factory=dict)
    registered_model: RegisteredModel | None = None
    registration_error: str | None = None
    serving_step_seconds: dict[str, float] = Field(default_factory=dict)


class Project(ProjectRecord):
    """A project as stored: its record plus the published images and the handles of its services."""

    manifest: ImageManifest | None = None
    services: dict[str, ServiceHandle] = Field(default_factory=dict)
    observer: ServiceHandle | None = None
    serving: ServingManifest | None = None
    inference: Inference | None = None

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
