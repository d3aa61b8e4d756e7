"""Timeouts and service health: what the engine's periodic tick checks on every active project."""

from __future__ import annotations

import re

from flops_common.events import EventKind
from flops_common.redaction import redact_url
from flops_common.stages import Stage
from flops_manager.orchestrator.base import ServiceHandle, ServiceRole, ServiceState, ServiceStatus
from flops_manager.projects import hierarchy
from flops_manager.projects.context import EngineContext
from flops_manager.projects.models import Project

# How long a service may be gone before its missing report counts as a failure.
EXIT_GRACE_S = 5.0
_LOG_TAIL = 15
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_all(ctx: EngineContext) -> None:
    """Fail projects past their stage deadline; look after the services of the others."""
    now = ctx.now()
    for project in list(ctx.active.values()):
        if project.stage_deadline is not None and now > project.stage_deadline:
            ctx.fail(project, timeout_cause(project, now))
            continue
        check_services(ctx, project, now)
        if project.id in ctx.active:
            check_starting_inference(ctx, project, now)
    for project in list(ctx.serving.values()):
        check_inference(ctx, project, now)


def timeout_cause(project: Project, now: float) -> str:
    """Why a stage timed out, with how far it got."""
    record = project.current_stage()
    started = record.started_at if record else project.created_at
    cause = f"stage {int(project.stage)} {project.stage.label} timed out after {now - started:.0f} s"
    tc = project.sla.training_configuration
    if project.stage == Stage.ACTOR_DEPLOYMENT:
        cause += f" ({project.learners_ready} of {tc.learner_count} learners ready, training never started)"
    elif project.stage == Stage.TRAINING and tc.hierarchical:
        cause += f" ({project.cycles_completed} of {tc.training_cycles} cycles done)"
    elif project.stage == Stage.TRAINING:
        cause += f" ({project.rounds_completed} of {tc.training_rounds} rounds done)"
    return cause


def check_services(ctx: EngineContext, project: Project, now: float) -> None:
    """A learner that stopped is dropped while enough are left (k-of-n); any other service that
    stopped without reporting fails the project with the end of its log."""
    for name, handle in list(project.services.items()):
        status = ctx.orchestrator.status(handle)
        if status.state == ServiceState.RUNNING:
            continue
        first_seen = ctx.exited_at.setdefault(handle.service_id, now)
        if now - first_seen < EXIT_GRACE_S:
            continue  # its last event may still be on its way
        if project.sla.training_configuration.hierarchical and handle.role in _CLUSTER_ROLES:
            cluster_service_stopped(ctx, project, handle, status)
            if project.id not in ctx.active:
                return
            continue
        ended = f"lost: {status.lost}" if status.lost else f"exited (code {status.exit_code})"
        if handle.role is ServiceRole.LEARNER:
            ctx.undeploy_service(project, name)
            needed = project.sla.training_configuration.min_fit_clients
            alive = sum(1 for h in project.services.values() if h.role is ServiceRole.LEARNER)
            ctx.emit(project, EventKind.LOG, f"{name} on {handle.node} {ended}")
            if alive < needed:
                ctx.fail(
                    project,
                    f"{name} on {handle.node} {ended}; {alive} learner(s) left, "
                    f"{needed} needed: {log_tail(ctx, handle)}",
                )
                return
            ctx.save(project)
            continue
        stopped = f"was lost ({status.lost})" if status.lost else f"stopped (exit code {status.exit_code})"
        ctx.fail(project, f"{name} on {handle.node} {stopped} without reporting: {log_tail(ctx, handle)}")
        return


_CLUSTER_ROLES = (ServiceRole.LEARNER, ServiceRole.CLUSTER_AGGREGATOR)


def cluster_service_stopped(ctx: EngineContext, project: Project, handle: ServiceHandle, status: ServiceStatus) -> None:
    """Hierarchical mode: a learner that stopped counts against its cluster's k-of-n; a cluster aggregator
    that stopped, or whose host went down, loses its cluster (the project goes on while ``min_clusters``
    are left). A vanished host is seen here as soon as the orchestrator marks it down, long before the
    root's Flower drops the cluster's SuperNode (heartbeat patience)."""
    ended = f"lost: {status.lost}" if status.lost else f"exited (code {status.exit_code})"
    cause = f"{handle.name} on {handle.node} {ended}: {log_tail(ctx, handle)}"
    if handle.role is ServiceRole.LEARNER:
        hierarchy.learner_lost(ctx, project, handle.name, cause)
        return
    cluster = project.cluster_of_service(handle.name)
    if cluster is not None:
        hierarchy.lose_cluster(ctx, project, cluster, cause)
    else:
        ctx.undeploy_service(project, handle.name)


def _stopped_for(ctx: EngineContext, handle: ServiceHandle, now: float) -> ServiceStatus | None:
    """The status of a service that stopped at least ``EXIT_GRACE_S`` ago, else None."""
    status = ctx.orchestrator.status(handle)
    if status.state == ServiceState.RUNNING:
        return None
    first_seen = ctx.exited_at.setdefault(handle.service_id, now)
    return status if now - first_seen >= EXIT_GRACE_S else None


def check_starting_inference(ctx: EngineContext, project: Project, now: float) -> None:
    """Stage 6: an inference service that stops before it answers fails the stage."""
    inference = project.inference
    if inference is None or not inference.live:
        return
    status = _stopped_for(ctx, inference.handle, now)
    if status is not None:
        ctx.fail(
            project,
            f"the inference service on {inference.node} stopped (exit code {status.exit_code}) before "
            f"answering: {log_tail(ctx, inference.handle)}",
        )


def check_inference(ctx: EngineContext, project: Project, now: float) -> None:
    """An ended project's inference service that stopped by itself is recorded as failed."""
    inference = project.inference
    if inference is None or not inference.live:
        ctx.serving.pop(project.id, None)
        return
    status = _stopped_for(ctx, inference.handle, now)
    if status is None:
        return
    tail = log_tail(ctx, inference.handle)
    ctx.stop_inference(project, "failed")
    ctx.save(project)
    ctx.emit(project, EventKind.LOG, f"inference service exited (code {status.exit_code}): {tail}")


def log_tail(ctx: EngineContext, handle: ServiceHandle) -> str:
    """The last lines of a service's output, without colours or credentials."""
    text = _ANSI.sub("", ctx.orchestrator.logs(handle, tail=_LOG_TAIL))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return redact_url(" | ".join(lines[-3:])) or "no output"
