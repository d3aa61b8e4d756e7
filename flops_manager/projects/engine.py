"""The project state machine: one worker thread applies submissions, events and timeouts.

Every transition is saved on the project and emitted as an event (stored and published),
so the API and the observer tell the same story. Only the worker thread changes active
projects; the MQTT network thread only queues events.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from flops_common.events import Event, EventKind, Source
from flops_common.image_key import ImageKey, ImageManifest
from flops_common.sla import ProjectSLA
from flops_common.stages import ProjectStatus, Stage
from flops_manager.bus.base import Bus
from flops_manager.orchestrator.base import (
    Orchestrator,
    PlacementError,
    ServiceHandle,
    ServiceRole,
    ServiceSpec,
    ServiceState,
)
from flops_manager.projects import specs
from flops_manager.projects.models import MlflowRef, Project, StageRecord
from flops_manager.projects.repo_refs import RefResolutionError, redact_url, resolve_commit
from flops_manager.registry.base import Registry
from flops_manager.settings import Settings
from flops_manager.store.project_store import ProjectStore
from flops_manager.tracking.base import Tracking

log = logging.getLogger(__name__)

# How long a service may be gone before its missing report counts as a failure.
_EXIT_GRACE_S = 5.0
_OBSERVER_GRACE_S = 3.0
# How long stage 1 waits for the observer's "ready" before the lookup goes on without it. The
# local backend starts observers at a low CPU priority (they must not stall the API), so on a
# busy machine one can take several seconds to subscribe; a ready observer ends the wait at once.
_OBSERVER_READY_WAIT_S = 10.0
_LOG_TAIL = 15
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ProjectNotActive(RuntimeError):
    """The project is already finished."""


class SlaRejected(ValueError):
    """The SLA is valid by shape but this deployment refuses it (field, reason)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


@dataclass(order=True)
class _Delayed:
    due: float
    action: Callable[[], None] = field(compare=False)


class ProjectEngine:
    """Drives every active project through stages 1-5. Constructing it does no I/O."""

    def __init__(
        self,
        settings: Settings,
        store: ProjectStore,
        bus: Bus,
        orchestrator: Orchestrator,
        registry: Registry,
        tracking: Tracking,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._orch = orchestrator
        self._registry = registry
        self._tracking = tracking
        self._commands: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._active: dict[str, Project] = {}
        self._delayed: list[_Delayed] = []
        self._exited_at: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engine-io")
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle
    def start(self) -> None:
        """Resume unfinished projects, connect the bus, start the worker."""
        for project in self._store.active_projects():
            self._active[project.id] = project
            if project.stage == Stage.PROJECT_START:
                self._later(0, lambda pid=project.id: self._start_lookup(pid))  # type: ignore[misc]
            elif project.stage == Stage.IMAGE_LOOKUP and project.commit is None:
                self._resolve_async(project)
        self._worker = threading.Thread(target=self._run, name="project-engine", daemon=True)
        self._worker.start()
        self._bus.start(self.on_event)

    def stop(self) -> None:
        """Stop taking work; running services keep running (a restart picks them up)."""
        self._stopping.set()
        self._bus.stop()
        self._commands.put(None)
        if self._worker is not None:
            self._worker.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        last_tick = 0.0
        while not self._stopping.is_set():
            try:
                command = self._commands.get(timeout=self._settings.tick_interval_s / 2)
            except queue.Empty:
                command = None
                if self._stopping.is_set():
                    break
            else:
                if command is None:
                    break
                try:
                    command()
                except Exception:
                    log.exception("engine command failed")
            if time.monotonic() - last_tick >= self._settings.tick_interval_s:
                last_tick = time.monotonic()
                try:
                    self._tick()
                except Exception:
                    log.exception("engine tick failed")

    def _call(self, fn: Callable[[], None]) -> None:
        self._commands.put(fn)

    # public entry points (any thread)
    def submit(self, sla: ProjectSLA, customer_id: str) -> Project:
        """Store a new project and start it; returns at once."""
        if sla.repo_scheme == "file" and not self._settings.allow_file_repos:
            raise SlaRejected("ml_repo_url", "file:// repositories are disabled on this deployment")
        allowed = self._settings.repo_hosts
        if allowed is not None and sla.repo_scheme != "file" and sla.repo_host not in allowed:
            raise SlaRejected("ml_repo_url", f"host {sla.repo_host!r} is not one of the allowed repo hosts {allowed}")
        project = Project(id=uuid.uuid4().hex[:12], customer_id=customer_id, sla=sla)
        project.stages.append(StageRecord(stage=Stage.PROJECT_START, name=Stage.PROJECT_START.label))
        self._store.insert_project(project)
        self._call(lambda: self._begin(project))
        return project

    def cancel(self, project_id: str) -> None:
        """Cancel a project: every service of it is undeployed."""
        self._call(lambda: self._cancel(project_id))

    def on_event(self, event: Event) -> None:
        """An event arrived on the bus (called on the bus worker thread)."""
        self._call(lambda: self._apply(event))

    # transitions (worker thread only)
    def _emit(self, project: Project, kind: EventKind, message: str, **data: Any) -> None:
        event = Event(
            project_id=project.id,
            source=Source.MANAGER,
            kind=kind,
            stage=project.stage,
            message=message,
            data=data,
        )
        self._store.add_event(event)
        self._bus.publish(event)

    def _enter(self, project: Project, stage: Stage, deadline_s: float | None, note: str = "") -> None:
        current = project.current_stage()
        if current is not None and current.status == "running":
            current.status, current.ended_at = "done", time.time()
        project.stage = stage
        project.stages.append(StageRecord(stage=stage, name=stage.label, note=note))
        project.stage_deadline = time.time() + deadline_s if deadline_s else None
        self._store.save_project(project)
        self._emit(
            project,
            EventKind.STAGE_CHANGED,
            f"stage {int(stage)} {stage.label}" + (f": {note}" if note else ""),
        )

    def _finish(self, project: Project, status: ProjectStatus, cause: str | None = None) -> None:
        now = time.time()
        current = project.current_stage()
        if current is not None and current.status == "running":
            current.ended_at = now
            current.status = {"succeeded": "done", "failed": "failed"}.get(status.value, "cancelled")  # type: ignore[assignment]
        project.status, project.finished_at, project.stage_deadline = status, now, None
        if status is ProjectStatus.FAILED:
            project.cause, project.failed_stage = cause, project.stage
        self._undeploy_all(project)
        self._store.save_project(project)
        data: dict[str, Any] = {"status": status.value}
        if project.final_metrics:
            data["metrics"] = project.final_metrics
        if project.mlflow:
            data["mlflow_run_url"] = project.mlflow.run_url
        message = {
            ProjectStatus.SUCCEEDED: "project succeeded",
            ProjectStatus.FAILED: f"project failed at stage {int(project.stage)} {project.stage.label}: {cause}",
            ProjectStatus.CANCELLED: "project cancelled",
        }[status]
        self._emit(project, EventKind.PROJECT_FINISHED, message, **data)
        self._active.pop(project.id, None)
        observer = project.observer
        if observer is not None:
            self._later(_OBSERVER_GRACE_S, lambda: self._orch.undeploy(observer))

    def _fail(self, project: Project, cause: str) -> None:
        log.info("project %s failed at stage %s: %s", project.id, int(project.stage), cause)
        self._finish(project, ProjectStatus.FAILED, cause)

    def _undeploy_all(self, project: Project) -> None:
        for name, handle in list(project.services.items()):
            try:
                self._orch.undeploy(handle)
            except Exception:
                log.exception("undeploy of %s failed", name)
            project.services.pop(name, None)
            self._exited_at.pop(handle.service_id, None)

    def _later(self, delay_s: float, action: Callable[[], None]) -> None:
        self._delayed.append(_Delayed(time.time() + delay_s, action))

    def _deploy(self, project: Project, spec: ServiceSpec, node: Any = None) -> ServiceHandle:
        handle = self._orch.deploy(spec, node)
        if spec.role is ServiceRole.OBSERVER:
            project.observer = handle
        else:
            project.services[spec.name] = handle
        return handle

    # stage 1 -> 2
    def _begin(self, project: Project) -> None:
        self._active[project.id] = project
        try:
            self._deploy(project, specs.observer_spec(self._settings, project))
        except Exception as exc:
            log.warning("observer of %s not started: %s", project.id, exc)
        self._store.save_project(project)
        # Give the observer a moment to subscribe so its timeline starts at stage 1.
        wait_s = _OBSERVER_READY_WAIT_S if project.observer is not None else 0.0
        self._later(wait_s, lambda: self._start_lookup(project.id))

    def _start_lookup(self, project_id: str) -> None:
        project = self._active.get(project_id)
        if project is None or project.stage != Stage.PROJECT_START:
            return
        self._emit(project, EventKind.STAGE_CHANGED, "stage 1 project start: SLA accepted")
        self._enter(project, Stage.IMAGE_LOOKUP, self._settings.timeout_image_lookup_s)
        self._resolve_async(project)

    def _resolve_async(self, project: Project) -> None:
        sla = project.sla

        def work() -> None:
            try:
                commit = resolve_commit(sla.ml_repo_url, sla.ml_repo_ref)
            except RefResolutionError as exc:
                error = str(exc)
                self._call(lambda: self._resolved(project.id, None, error))
            else:
                self._call(lambda: self._resolved(project.id, commit, None))

        self._pool.submit(work)

    def _resolved(self, project_id: str, commit: str | None, error: str | None) -> None:
        project = self._active.get(project_id)
        if project is None or project.stage != Stage.IMAGE_LOOKUP:
            return
        if commit is None:
            self._fail(project, error or "the repository could not be resolved")
            return
        key = ImageKey(
            repo_url=project.sla.ml_repo_url,
            commit=commit,
            flavor=project.sla.ml_model_flavor,
            platform=project.sla.supported_platforms[0],
        )
        project.commit, project.image_key, project.image_digest = commit, key, key.digest
        manifest = self._registry.lookup(key)
        if manifest is not None:
            project.cache_hit, project.manifest = True, manifest
            self._emit(project, EventKind.LOG, f"image cache hit {key.digest} (commit {commit[:12]}); no build")
            self._deploy_actors(project)
            return
        project.cache_hit = False
        self._emit(project, EventKind.LOG, f"no image for commit {commit[:12]}; deploying a builder")
        try:
            self._deploy(project, specs.builder_spec(self._settings, project, key, self._registry.location))
        except PlacementError as exc:
            self._fail(project, f"cannot deploy the image builder: {exc}")
            return
        self._enter(project, Stage.IMAGE_BUILD, self._settings.timeout_image_build_s, f"building {key.digest}")

    # stage 3 -> 4
    def _built(self, project: Project, manifest: ImageManifest) -> None:
        builder = project.services.pop("builder", None)
        if builder is not None:
            self._orch.undeploy(builder)
        project.manifest = manifest
        self._deploy_actors(project)

    def _deploy_actors(self, project: Project) -> None:
        manifest = project.manifest
        assert manifest is not None
        self._enter(project, Stage.ACTOR_DEPLOYMENT, self._settings.timeout_actor_deployment_s)
        tc = project.sla.training_configuration
        try:
            nodes = self._orch.place(specs.learner_placement(project), tc.learner_count)
            port = specs.free_port()
            self._deploy(
                project,
                specs.aggregator_spec(self._settings, project, manifest, port, self._tracking.tracking_uri),
            )
            for index, node in enumerate(nodes):
                self._deploy(project, specs.learner_spec(self._settings, project, manifest, index, node, port), node)
        except PlacementError as exc:
            self._fail(project, f"cannot place learners: {exc}")
            return
        self._store.save_project(project)
        self._emit(project, EventKind.LOG, f"deployed aggregator and {tc.learner_count} learner(s)")

    # events
    def _apply(self, event: Event) -> None:
        if event.source != Source.MANAGER:
            self._store.add_event(event)
        project = self._active.get(event.project_id)
        if project is None or event.source == Source.MANAGER:
            return
        kind = event.kind
        if event.source == Source.OBSERVER and event.data.get("observer_ready"):
            self._start_lookup(project.id)
            return
        if kind == EventKind.BUILD_STEP:
            project.build_step_seconds[str(event.data.get("step"))] = float(event.data.get("seconds", 0.0))
        elif kind == EventKind.BUILD_SUCCEEDED and project.stage == Stage.IMAGE_BUILD:
            self._built(project, ImageManifest.model_validate(event.data["manifest"]))
        elif kind == EventKind.BUILD_FAILED and project.stage == Stage.IMAGE_BUILD:
            self._fail(project, event.message)
        elif kind == EventKind.LEARNER_READY:
            project.learners_ready += 1
        elif kind == EventKind.LEARNER_FAILED:
            project.learners_failed += 1
            tc = project.sla.training_configuration
            if tc.learner_count - project.learners_failed < tc.min_available_clients:
                self._fail(project, event.message)
        elif kind == EventKind.TRAINING_STARTED and project.stage == Stage.ACTOR_DEPLOYMENT:
            tc = project.sla.training_configuration
            project.flower_run_id = str(event.data.get("run_id", ""))
            budget = tc.training_rounds * tc.round_timeout_s + self._settings.training_timeout_margin_s
            self._enter(project, Stage.TRAINING, budget, f"Flower run {project.flower_run_id}")
        elif kind == EventKind.ROUND_COMPLETED:
            project.rounds_completed = int(event.data.get("round", project.rounds_completed))
        elif kind == EventKind.TRAINING_SUCCEEDED:
            metrics = event.data.get("metrics") or {}
            project.final_metrics = {k: float(v) for k, v in metrics.items()}
            ref = event.data.get("mlflow")
            if ref:
                project.mlflow = MlflowRef(
                    experiment_id=str(ref["experiment_id"]),
                    run_id=str(ref["run_id"]),
                    run_url=self._tracking.run_url(str(ref["experiment_id"]), str(ref["run_id"])),
                )
            self._finish(project, ProjectStatus.SUCCEEDED)
            return
        elif kind == EventKind.TRAINING_FAILED:
            self._fail(project, event.message)
            return
        if project.id in self._active:
            self._store.save_project(project)

    def _cancel(self, project_id: str) -> None:
        project = self._active.get(project_id)
        if project is None:
            return
        self._finish(project, ProjectStatus.CANCELLED, None)

    # timeouts and service health
    def _tick(self) -> None:
        now = time.time()
        due = [d for d in self._delayed if d.due <= now]
        self._delayed = [d for d in self._delayed if d.due > now]
        for item in due:
            try:
                item.action()
            except Exception:
                log.exception("delayed action failed")
        for project in list(self._active.values()):
            if project.stage_deadline is not None and now > project.stage_deadline:
                self._fail(project, self._timeout_cause(project))
                continue
            self._check_services(project, now)

    def _timeout_cause(self, project: Project) -> str:
        record = project.current_stage()
        started = record.started_at if record else project.created_at
        cause = f"stage {int(project.stage)} {project.stage.label} timed out after {time.time() - started:.0f} s"
        if project.stage == Stage.ACTOR_DEPLOYMENT:
            tc = project.sla.training_configuration
            cause += f" ({project.learners_ready} of {tc.learner_count} learners ready, training never started)"
        elif project.stage == Stage.TRAINING:
            rounds = project.sla.training_configuration.training_rounds
            cause += f" ({project.rounds_completed} of {rounds} rounds done)"
        return cause

    def _check_services(self, project: Project, now: float) -> None:
        for name, handle in list(project.services.items()):
            status = self._orch.status(handle)
            if status.state == ServiceState.RUNNING:
                continue
            first_seen = self._exited_at.setdefault(handle.service_id, now)
            if now - first_seen < _EXIT_GRACE_S:
                continue  # its last event may still be on its way
            if handle.role is ServiceRole.LEARNER:
                project.services.pop(name)
                self._orch.undeploy(handle)
                tc = project.sla.training_configuration
                alive = sum(1 for h in project.services.values() if h.role is ServiceRole.LEARNER)
                self._emit(project, EventKind.LOG, f"{name} on {handle.node} exited (code {status.exit_code})")
                if alive < tc.min_fit_clients:
                    self._fail(
                        project,
                        f"{name} exited (code {status.exit_code}); {alive} learner(s) left, "
                        f"{tc.min_fit_clients} needed: {self._tail(handle)}",
                    )
                    return
                self._store.save_project(project)
                continue
            self._fail(
                project,
                f"{name} on {handle.node} stopped (exit code {status.exit_code}) without "
                f"reporting: {self._tail(handle)}",
            )
            return

    def _tail(self, handle: ServiceHandle) -> str:
        text = _ANSI.sub("", self._orch.logs(handle, tail=_LOG_TAIL))
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return redact_url(" | ".join(lines[-3:])) or "no output"
