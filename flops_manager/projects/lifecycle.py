"""The steps that move a project on by themselves: start, image lookup, builder, actor deployment, cancel.

Stage 6 (post-training) has its own module, ``post_training.py``.

Each runs on the engine's worker thread; blocking work (``git ls-remote``) goes to ``ctx.run_io``
and comes back as a worker command.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future

from flops_common.events import EventKind
from flops_common.image_key import ImageKey, ImageManifest
from flops_common.stages import ProjectStatus, Stage
from flops_manager.orchestrator.base import PlacementError
from flops_manager.projects import hierarchy, post_training, specs
from flops_manager.projects.context import EngineContext
from flops_manager.projects.models import Project
from flops_manager.projects.repo_refs import RefResolutionError
from image_builder.actor_runtime import actor_runtime_id

log = logging.getLogger(__name__)


def begin(ctx: EngineContext, project: Project) -> None:
    """Stage 1: make the project active, start its observer and go on to the lookup at once.

    The observer starts in the background (seconds on a busy machine); when it listens it says so and
    the manager replays what it missed (``transitions.apply``), so nothing waits for it.
    """
    ctx.active[project.id] = project
    try:
        ctx.broker_accounts.grant(project.id)
    except Exception as exc:
        ctx.fail(project, f"cannot create the project's broker users: {exc}")
        return
    start_tracking_user(ctx, project)
    for warning in project.warnings:
        ctx.emit(project, EventKind.LOG, f"warning: {warning}")
    try:
        ctx.deploy(project, specs.observer_spec(ctx.settings, project))
    except Exception as exc:
        log.warning("observer of %s not started: %s", project.id, exc)
    ctx.save(project)
    start_lookup(ctx, project)


def start_lookup(ctx: EngineContext, project: Project) -> None:
    """Stage 1 -> 2."""
    ctx.emit(project, EventKind.STAGE_CHANGED, "stage 1 project start: SLA accepted")
    ctx.enter(project, Stage.IMAGE_LOOKUP, ctx.settings.timeout_image_lookup_s)
    resolve(ctx, project)


def resolve(ctx: EngineContext, project: Project) -> None:
    """Resolve the SLA's git ref off the worker thread; ``resolved`` continues on it."""
    url, ref, project_id = project.sla.ml_repo_url, project.sla.ml_repo_ref, project.id

    def work() -> None:
        try:
            commit = ctx.resolve_commit(url, ref)
        except RefResolutionError as exc:
            error = str(exc)
            ctx.call(lambda: resolved(ctx, project_id, None, error))
        else:
            ctx.call(lambda: resolved(ctx, project_id, commit, None))

    ctx.run_io(work)


def resolved(ctx: EngineContext, project_id: str, commit: str | None, error: str | None) -> None:
    """Stage 2: look the images up under the commit's key; a hit deploys, a miss deploys the builder."""
    project = ctx.active.get(project_id)
    if project is None or project.stage != Stage.IMAGE_LOOKUP:
        return
    if commit is None:
        ctx.fail(project, error or "the repository could not be resolved")
        return
    sla = project.sla
    key = ImageKey(
        repo_url=sla.ml_repo_url,
        commit=commit,
        flavor=sla.ml_model_flavor,
        platform=sla.supported_platforms[0],
        runtime=actor_runtime_id(),
    )
    project.commit, project.image_key, project.image_digest = commit, key, key.digest
    manifest = ctx.registry.lookup(key)
    if manifest is not None:
        project.cache_hit, project.manifest = True, manifest
        ctx.emit(project, EventKind.LOG, f"image cache hit {key.digest} (commit {commit[:12]}); no build")
        deploy_actors(ctx, project)
        return
    project.cache_hit = False
    ctx.emit(project, EventKind.LOG, f"no image for commit {commit[:12]}; deploying a builder")
    try:
        ctx.deploy(project, specs.builder_spec(ctx.settings, project, key, ctx.registry.location))
    except PlacementError as exc:
        ctx.fail(project, f"cannot deploy the image builder: {exc}")
        return
    ctx.enter(project, Stage.IMAGE_BUILD, ctx.settings.timeout_image_build_s, f"building {key.digest}")


def built(ctx: EngineContext, project: Project, manifest: ImageManifest) -> None:
    """Stage 3 -> 4: the builder is done; undeploy it and deploy the actors."""
    ctx.undeploy_service(project, "builder")
    project.manifest = manifest
    deploy_actors(ctx, project)


def start_tracking_user(ctx: EngineContext, project: Project) -> None:
    """Make the MLflow user of the project's aggregator off the worker thread; fail the project if it cannot be.

    Nothing waits for it: its password is derived (``tracking.project_users``), so the aggregator is deployed
    at once and waits for its login itself before its first MLflow call (``fl_actors.tracking``), seconds
    later, after its SuperLink started.
    """
    made: Future[None] = Future()
    grant = ctx.tracking_accounts.grant
    experiment, model = specs.experiment_name(project), specs.model_name(project)
    project_id = project.id

    def failed(cause: str) -> None:
        active = ctx.active.get(project_id)
        if active is not None:
            ctx.fail(active, f"cannot create the aggregator's MLflow user: {cause}")

    def work() -> None:
        try:
            grant(project_id, experiment, model)
        except Exception as exc:
            made.set_exception(exc)
            cause = str(exc)
            ctx.call(lambda: failed(cause))
        else:
            made.set_result(None)

    ctx.tracking_users[project_id] = made
    ctx.run_io(work)


def deploy_actors(ctx: EngineContext, project: Project) -> None:
    """Stage 4: the aggregator anywhere, one learner per learner node holding the data tags."""
    if project.id not in ctx.active:
        return
    if project.id not in ctx.tracking_users:  # a restarted manager: make it now
        start_tracking_user(ctx, project)
    manifest = project.manifest
    assert manifest is not None
    ctx.enter(project, Stage.ACTOR_DEPLOYMENT, ctx.settings.timeout_actor_deployment_s)
    tc = project.sla.training_configuration
    if tc.hierarchical:
        try:
            hierarchy.deploy(ctx, project, manifest)
        except PlacementError as exc:
            ctx.fail(project, f"cannot place the clusters: {exc}")
            return
        ctx.save(project)
        return
    try:
        nodes = ctx.orchestrator.place(specs.learner_placement(project), tc.learner_count)
        port = specs.free_port()
        host = ctx.orchestrator.aggregator_address()
        tracking_uri = ctx.tracking.tracking_uri
        aggregator = specs.aggregator_spec(ctx.settings, project, manifest, port, tracking_uri, superlink_host=host)
        ctx.deploy(project, aggregator)
        for index, node in enumerate(nodes):
            learner = specs.learner_spec(ctx.settings, project, manifest, index, node, port, superlink_host=host)
            ctx.deploy(project, learner, node)
    except PlacementError as exc:
        ctx.fail(project, f"cannot place learners: {exc}")
        return
    ctx.save(project)
    ctx.emit(project, EventKind.LOG, f"deployed aggregator and {tc.learner_count} learner(s)")


def cancel(ctx: EngineContext, project_id: str) -> None:
    """Cancel an active project in whatever stage it is: every service of it is undeployed.

    An ended project's inference service, if it still runs, is stopped.
    """
    project = ctx.active.get(project_id)
    if project is not None:
        ctx.finish(project, ProjectStatus.CANCELLED)
    else:
        post_training.stop(ctx, project_id)
