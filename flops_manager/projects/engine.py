"""The project engine: the one writer of project state, driving every active project through its stages.

Its parts, one concept each: ``worker.py`` (queue, timers, tick), ``lifecycle.py`` (the steps a
project takes by itself), ``transitions.py`` (what each event does, keyed by stage and kind),
``health.py`` (timeouts, dead services). This class wires them and is what the API calls: any
thread may submit, cancel, reset or deliver an event; only the worker thread applies them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from flops_common.events import Event
from flops_common.sla import ProjectSLA
from flops_common.stages import Stage
from flops_manager.boundaries import Boundaries
from flops_manager.bus.broker_acl import project_accounts
from flops_manager.projects import health, lifecycle, post_training, transitions
from flops_manager.projects.context import EngineContext, ProjectListener, Scheduler
from flops_manager.projects.models import Project, StageRecord
from flops_manager.projects.sla_policy import check_sla
from flops_manager.projects.worker import Worker
from flops_manager.tracking.project_users import tracking_accounts

T = TypeVar("T")
_COMMAND_WAIT_S = 30.0


class ProjectsStillRunning(RuntimeError):
    """A reset was asked while projects run."""


class ProjectEngine:
    """Drives every active project through its stages. Constructing it does no I/O."""

    def __init__(
        self,
        parts: Boundaries,
        *,
        clock: Callable[[], float] | None = None,
        run_io: Callable[[Callable[[], None]], None] | None = None,
        resolve_commit: Callable[[str, str | None], str] | None = None,
    ) -> None:
        self._pool: ThreadPoolExecutor | None = None
        scheduler = Scheduler(clock) if clock is not None else Scheduler()
        self._worker = Worker(scheduler, self._tick, parts.settings.tick_interval_s)
        self.ctx = EngineContext(
            **parts.boundary_fields(),
            run_io=run_io or self._run_in_pool,
            call=self._worker.call,
            scheduler=scheduler,
        )
        self.ctx.broker_accounts = project_accounts(parts.settings)
        self.ctx.tracking_accounts = tracking_accounts(parts.settings)
        if resolve_commit is not None:
            self.ctx.resolve_commit = resolve_commit

    @property
    def worker(self) -> Worker:
        """The worker (unit tests ``drain`` it instead of starting its thread)."""
        return self._worker

    def add_listener(self, listener: ProjectListener) -> None:
        """Tell ``listener`` of every project write from now on."""
        self.ctx.listeners.append(listener)

    # lifecycle
    def start(self, thread: bool = True) -> None:
        """Resume unfinished projects, connect the bus, start the worker (unless ``thread`` is False)."""
        self._worker.call(self._resume)
        if thread:
            self._worker.start()
        self.ctx.bus.start(self.on_event)

    def stop(self) -> None:
        """Stop taking work; running services keep running (a restart picks them up)."""
        self.ctx.bus.stop()
        self._worker.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _resume(self) -> None:
        ctx = self.ctx
        for project in ctx.store.active_projects():
            ctx.active[project.id] = project
            if project.stage == Stage.PROJECT_START:
                lifecycle.start_lookup(ctx, project)
            elif project.stage == Stage.IMAGE_LOOKUP and project.commit is None:
                lifecycle.resolve(ctx, project)
        post_training.find_again(ctx)

    def _run_in_pool(self, work: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engine-io")
        self._pool.submit(work)

    def _tick(self) -> None:
        health.check_all(self.ctx)

    # entry points (any thread)
    def submit(self, sla: ProjectSLA, customer_id: str) -> Project:
        """Check the SLA against this deployment, store the new project and start it; returns at once.

        Raises ``SlaRejected`` (field, reason) for an SLA this deployment refuses.
        """
        check_sla(self.ctx.settings, sla)
        project = Project(id=uuid.uuid4().hex[:12], customer_id=customer_id, sla=sla, warnings=sla.warnings)
        project.stages.append(StageRecord(stage=Stage.PROJECT_START, name=Stage.PROJECT_START.label))
        self.ctx.insert(project)
        self._worker.call(lambda: lifecycle.begin(self.ctx, project))
        return project

    def cancel(self, project_id: str) -> None:
        """Cancel a project: every service of it is undeployed (asynchronously)."""
        self._worker.call(lambda: lifecycle.cancel(self.ctx, project_id))

    def stop_inference(self, project_id: str) -> bool:
        """Stop the project's inference service (cancelling the project if it is still in stage 6).

        Returns False when the project has no live inference service.
        """
        return self._await(lambda: post_training.stop(self.ctx, project_id))

    def reset(self) -> None:
        """Forget every project and event; raises ``ProjectsStillRunning`` while any is active."""

        def forget() -> None:
            if self.ctx.active or self.ctx.store.active_projects():
                raise ProjectsStillRunning("projects are still running; cancel them first")
            self.ctx.store.delete_all()
            for listener in self.ctx.listeners:
                listener.projects_forgotten()

        self._await(forget)

    def on_event(self, event: Event) -> None:
        """An event arrived on the bus (called on the bus's delivery thread)."""
        self._worker.call(lambda: transitions.apply(self.ctx, event))

    def _await(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and wait for its result (or its exception)."""
        future: Future[T] = Future()

        def command() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._worker.call(command)
        if not self._worker.running:
            self._worker.drain()
        return future.result(timeout=_COMMAND_WAIT_S)
