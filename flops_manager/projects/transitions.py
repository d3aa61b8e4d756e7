"""What an event does to a project: a table keyed by (stage, event kind), each entry a small function.

``None`` as the stage means "in any stage". An event whose (stage, kind) has no entry changes
nothing but is stored (e.g. a late ``build_succeeded`` after a timeout). Handlers run on the
engine's worker thread and save the project themselves when they change it.
"""

from __future__ import annotations

from collections.abc import Callable

from flops_common.events import Event, EventKind, Source
from flops_common.image_key import ImageManifest
from flops_common.serving import RegisteredModel, ServingManifest
from flops_common.stages import Stage
from flops_manager.projects import hierarchy, lifecycle, post_training
from flops_manager.projects.context import EngineContext
from flops_manager.projects.models import MlflowRef, Project

Handler = Callable[[EngineContext, Project, Event], None]


def build_step(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 3: the builder finished a step; keep its time."""
    project.build_step_seconds[str(event.data.get("step"))] = float(event.data.get("seconds", 0.0))
    ctx.save(project)


def build_succeeded(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 3 -> 4: images are published."""
    lifecycle.built(ctx, project, ImageManifest.model_validate(event.data["manifest"]))


def build_failed(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 3: the builder reports the precise cause."""
    ctx.fail(project, event.message)


def learner_ready(ctx: EngineContext, project: Project, event: Event) -> None:
    """A learner has its data and joins the federation."""
    project.learners_ready += 1
    ctx.save(project)


def learner_failed(ctx: EngineContext, project: Project, event: Event) -> None:
    """A learner could not start; the project fails once too few are left for the SLA (hierarchical mode:
    its cluster is lost once too few of its learners are left)."""
    project.learners_failed += 1
    tc = project.sla.training_configuration
    if tc.hierarchical:
        hierarchy.learner_lost(ctx, project, f"learner-{event.data.get('learner_index')}", event.message)
        return
    if tc.learner_count - project.learners_failed < tc.min_available_clients:
        ctx.fail(project, event.message)
    else:
        ctx.save(project)


def training_started(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 4 -> 5: the Flower run is submitted; the deadline covers every round."""
    tc = project.sla.training_configuration
    project.flower_run_id = str(event.data.get("run_id", ""))
    margin = ctx.settings.training_timeout_margin_s
    budget = (
        hierarchy.training_budget_s(tc, margin) if tc.hierarchical else tc.training_rounds * tc.round_timeout_s + margin
    )
    ctx.enter(project, Stage.TRAINING, budget, f"Flower run {project.flower_run_id}")


def round_completed(ctx: EngineContext, project: Project, event: Event) -> None:
    """A round ended (hierarchical mode: a cluster's, counted over cycles); rounds only count up (a late,
    older report is ignored)."""
    server_round = int(event.data.get("round", 0))
    project.rounds_completed = max(project.rounds_completed, server_round)
    cluster = project.cluster(str(event.data.get("cluster", "")))
    if cluster is not None:
        cluster.rounds_completed = max(cluster.rounds_completed, server_round)
    ctx.save(project)


def cycle_completed(ctx: EngineContext, project: Project, event: Event) -> None:
    """Hierarchical mode: the root aggregated a cycle; cycles only count up."""
    project.cycles_completed = max(project.cycles_completed, int(event.data.get("cycle", 0)))
    ctx.save(project)


def training_succeeded(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 5 ends: keep the final metrics, the MLflow run and the registered version; the
    actors go, and the project ends or goes on with stage 6."""
    metrics = event.data.get("metrics") or {}
    project.final_metrics = {k: float(v) for k, v in metrics.items()}
    ref = event.data.get("mlflow")
    if ref:
        experiment_id, run_id = str(ref["experiment_id"]), str(ref["run_id"])
        project.mlflow = MlflowRef(
            experiment_id=experiment_id, run_id=run_id, run_url=ctx.tracking.run_url(experiment_id, run_id)
        )
    registered = event.data.get("registered_model")
    if registered:
        project.registered_model = RegisteredModel.model_validate(registered)
    project.registration_error = event.data.get("registration_error")
    post_training.after_training(ctx, project)


def training_failed(ctx: EngineContext, project: Project, event: Event) -> None:
    """The aggregator reports why the Flower run failed."""
    ctx.fail(project, event.message)


def serving_step(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 6: the serving builder finished a step; keep its time."""
    post_training.serving_step(ctx, project, float(event.data.get("seconds", 0.0)), str(event.data.get("step")))


def serving_built(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 6: the serving runtime is published; the inference service follows when asked."""
    post_training.serving_built(ctx, project, ServingManifest.model_validate(event.data["serving"]))


def post_training_failed(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 6: the serving build or the inference service reports the precise cause."""
    ctx.fail(project, event.message)


def inference_ready(ctx: EngineContext, project: Project, event: Event) -> None:
    """Stage 6: the inference service answers."""
    seconds = event.data.get("seconds")
    post_training.inference_ready(ctx, project, float(seconds) if seconds is not None else None)


TRANSITIONS: dict[tuple[Stage | None, EventKind], Handler] = {
    (None, EventKind.BUILD_STEP): build_step,
    (Stage.IMAGE_BUILD, EventKind.BUILD_SUCCEEDED): build_succeeded,
    (Stage.IMAGE_BUILD, EventKind.BUILD_FAILED): build_failed,
    (None, EventKind.LEARNER_READY): learner_ready,
    (None, EventKind.LEARNER_FAILED): learner_failed,
    (Stage.ACTOR_DEPLOYMENT, EventKind.TRAINING_STARTED): training_started,
    (None, EventKind.ROUND_COMPLETED): round_completed,
    (None, EventKind.CYCLE_COMPLETED): cycle_completed,
    (Stage.ACTOR_DEPLOYMENT, EventKind.TRAINING_SUCCEEDED): training_succeeded,
    (Stage.TRAINING, EventKind.TRAINING_SUCCEEDED): training_succeeded,
    (Stage.ACTOR_DEPLOYMENT, EventKind.TRAINING_FAILED): training_failed,
    (Stage.TRAINING, EventKind.TRAINING_FAILED): training_failed,
    (Stage.POST_TRAINING, EventKind.BUILD_STEP): serving_step,
    (Stage.POST_TRAINING, EventKind.SERVING_BUILD_SUCCEEDED): serving_built,
    (Stage.POST_TRAINING, EventKind.SERVING_BUILD_FAILED): post_training_failed,
    (Stage.POST_TRAINING, EventKind.INFERENCE_READY): inference_ready,
    (Stage.POST_TRAINING, EventKind.INFERENCE_FAILED): post_training_failed,
}


def handler_for(stage: Stage, kind: EventKind) -> Handler | None:
    """The transition of ``kind`` in ``stage``, or None when the event changes nothing there."""
    return TRANSITIONS.get((stage, kind)) or TRANSITIONS.get((None, kind))


def apply(ctx: EngineContext, event: Event) -> None:
    """Store a service's event once and apply it to its project; redeliveries change nothing."""
    if event.source == Source.MANAGER:
        return  # our own events come back from the broker; they were stored when emitted
    if not ctx.store.add_event(event):
        return  # QoS 1 redelivery
    if event.source == Source.OBSERVER and event.data.get("observer_ready"):
        ctx.bus.publish_replay(event.project_id, ctx.store.list_events(event.project_id))
        return
    project = ctx.active.get(event.project_id)
    if project is None:
        return
    handler = handler_for(project.stage, event.kind)
    if handler is not None:
        handler(ctx, project, event)
