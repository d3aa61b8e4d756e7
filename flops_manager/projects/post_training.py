"""Stage 6, post-training: the registered model's serving build, then its inference service.

Runs when the SLA lists post-training steps. The training actors are gone before it starts; the
one-shot serving builder makes the runtime (or image) of the registered version; the inference
service is deployed outside ``project.services`` because it outlives the project: it stays until
``DELETE .../inference`` or a cancel stops it, and a restarted manager finds it again. A failure
here fails only this stage: the registered version and the training metrics stay.
"""

from __future__ import annotations

import logging

from flops_common.events import EventKind
from flops_common.serving import ServingManifest
from flops_common.sla import PostTrainingStep
from flops_common.stages import ProjectStatus, Stage
from flops_manager.orchestrator.base import CAP_INFERENCE, ServiceState
from flops_manager.projects import specs
from flops_manager.projects.context import EngineContext
from flops_manager.projects.models import Inference, Project

log = logging.getLogger(__name__)

DEPLOY_STEPS = frozenset({PostTrainingStep.DEPLOY_TRAINED_MODEL_IMAGE})  # deploy_inference_service reads as this
SERVING_BUILDER = "serving-builder"


def wants_inference(project: Project) -> bool:
    """Whether the SLA asks for an inference service (a deploy step; it implies the build)."""
    return bool(DEPLOY_STEPS & set(project.sla.post_training_steps))


def after_training(ctx: EngineContext, project: Project) -> None:
    """Stage 5 ended well: finish, or undeploy the actors and start stage 6 with the serving builder."""
    if not project.sla.post_training_steps:
        ctx.finish(project, ProjectStatus.SUCCEEDED)
        return
    ctx.undeploy_all(project)  # only the inference service may outlive training
    model = project.registered_model
    note = f"serving {model.name} version {model.version}" if model else "no registered model"
    ctx.enter(project, Stage.POST_TRAINING, ctx.settings.timeout_post_training_s, note)
    if model is None:
        ctx.fail(project, project.registration_error or "the aggregator registered no model version to serve")
        return
    try:
        ctx.deploy(
            project,
            specs.serving_builder_spec(ctx.settings, project, ctx.registry.location, ctx.tracking.tracking_uri),
        )
    except Exception as exc:  # PlacementError, or a backend that cannot start it
        ctx.fail(project, f"cannot deploy the serving builder: {exc}")
        return
    ctx.save(project)


def serving_step(ctx: EngineContext, project: Project, seconds: float, step: str) -> None:
    """The serving builder finished a step; keep its time."""
    project.serving_step_seconds[step] = seconds
    ctx.save(project)


def serving_built(ctx: EngineContext, project: Project, manifest: ServingManifest) -> None:
    """The serving runtime is published: deploy the inference service, or finish when none is asked."""
    ctx.undeploy_service(project, SERVING_BUILDER)
    project.serving = manifest
    if not wants_inference(project):
        ctx.finish(project, ProjectStatus.SUCCEEDED)
        return
    placed = any(CAP_INFERENCE in node.capabilities for node in ctx.orchestrator.nodes())
    port = ctx.settings.inference_port or specs.free_port()
    try:
        handle = ctx.orchestrator.deploy(specs.inference_spec(ctx.settings, project, manifest, port, placed))
    except Exception as exc:
        ctx.fail(project, f"cannot deploy the inference service: {exc}")
        return
    url = f"http://{ctx.settings.inference_host}:{port}"
    project.inference = Inference(handle=handle, url=url, node=handle.node, started_at=ctx.now())
    ctx.save(project)
    ctx.emit(project, EventKind.LOG, f"inference service of {manifest.model.uri} starting on {handle.node} at {url}")


def inference_ready(ctx: EngineContext, project: Project, seconds: float | None) -> None:
    """The service answers: stage 6 is done, the project succeeds, the service stays."""
    inference = project.inference
    if inference is None or inference.state != "starting":
        return
    inference.state, inference.ready_seconds = "running", seconds
    ctx.finish(project, ProjectStatus.SUCCEEDED)
    ctx.serving[project.id] = project


def stop(ctx: EngineContext, project_id: str) -> bool:
    """Stop a project's inference service; an active project (still in stage 6) is cancelled.

    Returns False when the project has no live inference service.
    """
    project = ctx.active.get(project_id)
    if project is not None:
        if project.inference is None or not project.inference.live:
            return False
        ctx.finish(project, ProjectStatus.CANCELLED)
        return True
    project = ctx.serving.get(project_id)
    if project is None or project.inference is None or not project.inference.live:
        return False
    ctx.stop_inference(project, "stopped")
    ctx.save(project)
    ctx.emit(project, EventKind.LOG, "inference service stopped")
    return True


def find_again(ctx: EngineContext) -> None:
    """After a restart: watch the inference services of ended projects that still run; mark the others."""
    for project in ctx.store.serving_projects():
        inference = project.inference
        assert inference is not None
        if ctx.orchestrator.status(inference.handle).state == ServiceState.RUNNING:
            ctx.serving[project.id] = project
            log.info("inference service of %s found again at %s", project.id, inference.url)
            continue
        ctx.stop_inference(project, "failed")
        ctx.save(project)
        ctx.emit(project, EventKind.LOG, "inference service was gone after the manager restarted")
