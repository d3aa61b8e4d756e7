"""Typed events every FLOps service publishes on the bus and the manager stores."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from flops_common.stages import Stage


class EventKind(StrEnum):
    """What happened. Kinds marked (*) move the project's state machine."""

    STAGE_CHANGED = "stage_changed"  # manager: a stage started
    PROJECT_FINISHED = "project_finished"  # manager: final status reached
    LOG = "log"  # any: a line worth showing in the timeline
    BUILD_STEP = "build_step"  # builder: a build step finished, data.step, data.seconds
    BUILD_SUCCEEDED = "build_succeeded"  # (*) builder: data.manifest
    BUILD_FAILED = "build_failed"  # (*) builder: message is the cause, data.step
    LEARNER_READY = "learner_ready"  # learner: local data loaded, data.samples
    LEARNER_FAILED = "learner_failed"  # (*) learner: could not load data or start
    TRAINING_STARTED = "training_started"  # (*) aggregator: Flower run submitted, data.run_id
    ROUND_COMPLETED = "round_completed"  # aggregator: data.round, data.metrics (a cluster's: data.cluster, data.cycle)
    CYCLE_COMPLETED = "cycle_completed"  # hierarchical root: data.cycle, data.metrics, data.clusters (that replied)
    TRAINING_SUCCEEDED = "training_succeeded"  # (*) aggregator: data.metrics, data.mlflow
    TRAINING_FAILED = "training_failed"  # (*) aggregator: message is the cause
    SERVING_BUILD_SUCCEEDED = "serving_build_succeeded"  # (*) builder: data.serving (a ServingManifest)
    SERVING_BUILD_FAILED = "serving_build_failed"  # (*) builder: message is the cause, data.step
    INFERENCE_READY = "inference_ready"  # (*) inference: answering on data.url, data.seconds
    INFERENCE_FAILED = "inference_failed"  # (*) inference: message is the cause


class Source(StrEnum):
    """Which kind of service published an event."""

    MANAGER = "manager"
    BUILDER = "builder"
    AGGREGATOR = "aggregator"
    LEARNER = "learner"
    OBSERVER = "observer"
    INFERENCE = "inference"


class Event(BaseModel):
    """One thing that happened to a project."""

    project_id: str
    source: Source
    kind: EventKind
    stage: Stage | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: float = Field(default_factory=time.time)
    event_id: str = Field(default_factory=lambda: __import__("uuid").uuid4().hex)


def make_event(
    project_id: str,
    source: Source,
    kind: EventKind,
    /,
    message: str = "",
    *,
    stage: Stage | None = None,
    **data: Any,
) -> Event:
    """An event of ``project_id`` published by ``source``; keyword arguments beyond ``stage`` are its data.

    The first three are positional-only, so ``project_id``, ``source`` and ``kind`` may also be data keys
    (a build step's data names its ``source`` file).
    """
    return Event(project_id=project_id, source=source, kind=kind, stage=stage, message=message, data=data)
