"""What every transition works with: the boundaries, the active projects and the small acts they share.

The engine's worker thread is the only caller, so nothing here locks. Transitions
(``transitions.py``, ``lifecycle.py``, ``health.py``) are plain functions over this context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from flops_common.events import EventKind, Source, make_event
from flops_common.stages import ProjectStatus, Stage
from flops_manager.boundaries import Boundaries
from flops_manager.bus.broker_acl import ProjectAccounts, SharedAccount
from flops_manager.orchestrator.base import Node, ServiceHandle, ServiceRole, ServiceSpec, ServiceState
from flops_manager.projects.models import InferenceState, Project, StageRecord
from flops_manager.projects.repo_refs import resolve_commit
from flops_manager.tracking.project_users import NoTrackingAccounts, TrackingAccounts

log = logging.getLogger(__name__)

# How long after the end a project's observer may run to write its last lines: it stops by itself once
# it printed the end, but one started moments before a quick failure may still be catching up.
OBSERVER_GRACE_S = 30.0
_OBSERVER_POLL_S = 0.5

_FINAL_STAGE_STATUS = {
    ProjectStatus.SUCCEEDED: "done",
    ProjectStatus.FAILED: "failed",
    ProjectStatus.CANCELLED: "cancelled",
}
_FINAL_MESSAGE = {
    ProjectStatus.SUCCEEDED: "project succeeded",
    ProjectStatus.CANCELLED: "project cancelled",
}


class ProjectListener(Protocol):
    """Told of every project write the engine makes (e.g. the API's read cache)."""

    def project_saved(self, project: Project) -> None:
        """``project`` was written to the store as it is now."""

    def projects_forgotten(self) -> None:
        """Every project was deleted (admin reset)."""


@dataclass
class Scheduler:
    """Delayed actions the worker runs when they are due (see ``worker.py``)."""

    clock: Callable[[], float] = time.time
    due: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _seq: int = 0

    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the worker thread ``delay_s`` seconds from now."""
        self._seq += 1
        self.due.append((self.clock() + delay_s, self._seq, action))

    def pop_due(self) -> list[Callable[[], None]]:
        """The actions whose time has come, oldest first; they are removed."""
        now = self.clock()
        ready = sorted(d for d in self.due if d[0] <= now)
        self.due = [d for d in self.due if d[0] > now]
        return [action for _, _, action in ready]


@dataclass
class EngineContext(Boundaries):
    """The engine's boundaries, its state and the acts transitions share. Constructing it does no I/O."""

    # Where blocking work (git ls-remote) runs; its result comes back as a worker command.
    run_io: Callable[[Callable[[], None]], None]
    # Queue a command for the worker thread (from any thread).
    call: Callable[[Callable[[], None]], None]
    # The SLA's git ref -> commit (``git ls-remote``; a fake in unit tests).
    resolve_commit: Callable[[str, str | None], str] = resolve_commit
    scheduler: Scheduler = field(default_factory=Scheduler)
    active: dict[str, Project] = field(default_factory=dict)
    # Ended projects whose inference service still runs (the tick watches it).
    serving: dict[str, Project] = field(default_factory=dict)
    exited_at: dict[str, float] = field(default_factory=dict)
    listeners: list[ProjectListener] = field(default_factory=list)
    # The broker users of each project (none of its own when the broker is not managed by us).
    broker_accounts: ProjectAccounts = field(default_factory=SharedAccount)
    # The MLflow user of each project's aggregator (none without MLflow auth).
    tracking_accounts: TrackingAccounts = field(default_factory=NoTrackingAccounts)
    # Each active project's MLflow user being made off the worker thread (``lifecycle.start_tracking_user``).
    tracking_users: dict[str, Future[None]] = field(default_factory=dict)

    def now(self) -> float:
        """The engine's clock (a fake one in unit tests)."""
        return self.scheduler.clock()

    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the worker thread after ``delay_s`` seconds."""
        self.scheduler.later(delay_s, action)

    # writes
    def insert(self, project: Project) -> None:
        """Store a new project and tell the listeners."""
        self.store.insert_project(project)
        self._saved(project)

    def save(self, project: Project) -> None:
        """Write the project as it is now and tell the listeners."""
        self.store.save_project(project)
        self._saved(project)

    def _saved(self, project: Project) -> None:
        for listener in self.listeners:
            listener.project_saved(project)

    def emit(self, project: Project, kind: EventKind, message: str, **data: Any) -> None:
        """Store and publish a manager event about ``project``."""
        event = make_event(project.id, Source.MANAGER, kind, message, stage=project.stage, **data)
        self.store.add_event(event)
        self.bus.publish(event)

    # stages
    def enter(self, project: Project, stage: Stage, deadline_s: float | None, note: str = "") -> None:
        """Close the running stage record, open ``stage`` with its deadline, save, announce."""
        now = self.now()
        current = project.current_stage()
        if current is not None and current.status == "running":
            current.status, current.ended_at = "done", now
        project.stage = stage
        project.stages.append(StageRecord(stage=stage, name=stage.label, note=note, started_at=now))
        project.stage_deadline = now + deadline_s if deadline_s else None
        self.save(project)
        self.emit(project, EventKind.STAGE_CHANGED, f"stage {int(stage)} {stage.label}" + (f": {note}" if note else ""))

    def finish(self, project: Project, status: ProjectStatus, cause: str | None = None) -> None:
        """End the project: undeploy its services, record the status, announce it, let the observer finish."""
        now = self.now()
        current = project.current_stage()
        if current is not None and current.status == "running":
            current.ended_at = now
            current.status = _FINAL_STAGE_STATUS[status]  # type: ignore[assignment]
        project.status, project.finished_at, project.stage_deadline = status, now, None
        if status is ProjectStatus.FAILED:
            project.cause, project.failed_stage = cause, project.stage
        self.undeploy_all(project)
        if status is not ProjectStatus.SUCCEEDED:
            self.stop_inference(project, "stopped" if status is ProjectStatus.CANCELLED else "failed")
        self.save(project)
        data: dict[str, Any] = {"status": status.value}
        if project.final_metrics:
            data["metrics"] = project.final_metrics
        if project.mlflow:
            data["mlflow_run_url"] = project.mlflow.run_url
        if project.registered_model:
            data["registered_model"] = project.registered_model.model_dump()
        if project.inference and project.inference.live:
            data["inference_url"] = project.inference.url
        message = _FINAL_MESSAGE.get(
            status, f"project failed at stage {int(project.stage)} {project.stage.label}: {cause}"
        )
        self.emit(project, EventKind.PROJECT_FINISHED, message, **data)
        self.active.pop(project.id, None)
        # The observer writes the last lines first; then the project's broker and MLflow users go.
        self._close_project(project.id, project.observer, now + OBSERVER_GRACE_S)

    def _close_project(self, project_id: str, observer: ServiceHandle | None, deadline: float) -> None:
        """Once the observer stopped by itself (or at ``deadline``): undeploy it, revoke the project's users."""
        stopped = True
        if observer is not None:
            try:
                stopped = self.orchestrator.status(observer).state is not ServiceState.RUNNING
            except Exception:
                stopped = True
        if not stopped and self.now() < deadline:
            self.later(_OBSERVER_POLL_S, lambda: self._close_project(project_id, observer, deadline))
            return
        if observer is not None:
            self.undeploy(observer)
        self.revoke_project_users(project_id)

    def revoke_project_users(self, project_id: str) -> None:
        """Remove the project's broker and MLflow users; a failure is logged, never raised (cleanup goes on)."""
        self.tracking_users.pop(project_id, None)
        for kind, accounts in (("broker", self.broker_accounts), ("MLflow", self.tracking_accounts)):
            try:
                accounts.revoke(project_id)
            except Exception:
                log.exception("revoking the %s users of %s failed", kind, project_id)

    def fail(self, project: Project, cause: str) -> None:
        """End the project as failed at its current stage with ``cause``."""
        log.info("project %s failed at stage %s: %s", project.id, int(project.stage), cause)
        self.finish(project, ProjectStatus.FAILED, cause)

    # services
    def deploy(self, project: Project, spec: ServiceSpec, node: Node | None = None) -> ServiceHandle:
        """Deploy a service of ``project`` and remember its handle on the project."""
        handle = self.orchestrator.deploy(spec, node)
        if spec.role is ServiceRole.OBSERVER:
            project.observer = handle
        else:
            project.services[spec.name] = handle
        return handle

    def undeploy(self, handle: ServiceHandle) -> None:
        """Remove one service; a failure is logged, never raised (cleanup must go on)."""
        try:
            self.orchestrator.undeploy(handle)
        except Exception:
            log.exception("undeploy of %s failed", handle.name)
        self.exited_at.pop(handle.service_id, None)

    def undeploy_service(self, project: Project, name: str) -> None:
        """Remove one named service of ``project`` (if deployed)."""
        handle = project.services.pop(name, None)
        if handle is not None:
            self.undeploy(handle)

    def stop_inference(self, project: Project, state: InferenceState) -> None:
        """Undeploy the project's inference service (if live) and record why it ended."""
        inference = project.inference
        self.serving.pop(project.id, None)
        if inference is None or not inference.live:
            return
        self.undeploy(inference.handle)
        inference.state, inference.stopped_at = state, self.now()

    def undeploy_all(self, project: Project) -> None:
        """Remove every service of ``project`` except its observer."""
        for name in list(project.services):
            self.undeploy_service(project, name)
