"""Hierarchical mode in the engine: clusters placed at stage 4, their actors deployed, a lost cluster handled.

A cluster is used when it has ``learner_count`` learner nodes holding every data tag (at least
``min_available_clients``); the project needs ``min_clusters`` of them (default: every cluster that
qualifies). The root aggregator goes anywhere (as in classic mode), each cluster aggregator on a node of
its cluster, each learner on a node of its cluster and connected to its cluster aggregator only.
"""

from __future__ import annotations

from flops_common.events import EventKind
from flops_common.hierarchy import cycle_timeout_s
from flops_common.image_key import ImageManifest
from flops_common.sla import TrainingConfiguration
from flops_manager.orchestrator.base import CAP_LEARNER, Node, Placement, PlacementError
from flops_manager.projects import specs
from flops_manager.projects.context import EngineContext
from flops_manager.projects.models import ClusterRecord, Project, cluster_aggregator_name

# What the root waits for its cluster aggregators to join (the actors' own default).
ROOT_CONNECT_TIMEOUT_MIN_S = 120.0


def cluster_placement(training: TrainingConfiguration, cluster: str) -> Placement:
    """Learner nodes of ``cluster`` holding every data tag, one learner per node."""
    return Placement(capability=CAP_LEARNER, data_tags=training.data_tags, exclusive=True, cluster=cluster)


def plan_clusters(ctx: EngineContext, training: TrainingConfiguration) -> dict[str, list[Node]]:
    """The learner nodes of every cluster that qualifies; ``PlacementError`` naming each cluster that does not,
    and what it lacks, when fewer than ``min_clusters`` qualify."""
    clusters = sorted({node.cluster for node in ctx.orchestrator.nodes()})
    planned: dict[str, list[Node]] = {}
    lacking: list[str] = []
    for cluster in clusters:
        try:
            planned[cluster] = ctx.orchestrator.place(cluster_placement(training, cluster), training.learner_count)
        except PlacementError as exc:
            lacking.append(f"cluster {cluster}: {exc}")
    needed = training.min_clusters or max(len(planned), 1)
    if len(planned) < needed:
        found = ", ".join(planned) or "none"
        raise PlacementError(
            f"{len(planned)} cluster(s) qualify ({found}), min_clusters is {needed}; " + "; ".join(lacking)
        )
    return planned


def training_budget_s(training: TrainingConfiguration, margin_s: float) -> float:
    """Stage 5's deadline: every cycle within its timeout, plus a margin."""
    connect = max(ROOT_CONNECT_TIMEOUT_MIN_S, training.round_timeout_s)
    return (training.training_cycles or 1) * cycle_timeout_s(training, connect) + margin_s


def deploy(ctx: EngineContext, project: Project, manifest: ImageManifest) -> None:
    """Stage 4: the root aggregator, then per cluster its aggregator and its learners."""
    training = project.sla.training_configuration
    planned = plan_clusters(ctx, training)
    project.min_clusters = training.min_clusters or len(planned)
    root_port = specs.free_port()
    # Across hosts every SuperLink listens on its node's address and is reached there (loopback on one machine).
    root_host = ctx.orchestrator.aggregator_address()
    root_training = training.model_copy(update={"min_clusters": project.min_clusters})
    tracking_uri = ctx.tracking.tracking_uri
    root = specs.aggregator_spec(
        ctx.settings, project, manifest, root_port, tracking_uri, root_training, len(planned), superlink_host=root_host
    )
    ctx.deploy(project, root)
    index = 0
    for cluster, nodes in planned.items():
        cluster_port = specs.free_port()
        cluster_host = ctx.orchestrator.node_address(nodes[0])
        spec = specs.cluster_aggregator_spec(
            ctx.settings, project, manifest, cluster, cluster_port, f"{root_host}:{root_port}", cluster_host
        )
        ctx.deploy(project, spec, nodes[0])
        record = ClusterRecord(name=cluster, node=nodes[0].name)
        for node in nodes:
            learner = specs.learner_spec(
                ctx.settings, project, manifest, index, node, cluster_port, cluster, superlink_host=cluster_host
            )
            ctx.deploy(project, learner, node)
            record.learners.append(learner.name)
            index += 1
        project.clusters.append(record)
    ctx.emit(
        project,
        EventKind.LOG,
        f"deployed the root aggregator and {len(planned)} cluster(s): "
        + "; ".join(f"{c.name} ({len(c.learners)} learner(s) on {c.node})" for c in project.clusters)
        + f"; min_clusters {project.min_clusters}",
    )


def lose_cluster(ctx: EngineContext, project: Project, cluster: ClusterRecord, cause: str) -> None:
    """A cluster cannot go on: undeploy its actors; the project fails if fewer than ``min_clusters`` remain."""
    if cluster.state == "lost":
        return
    cluster.state, cluster.cause = "lost", cause
    for name in [cluster_aggregator_name(cluster.name), *cluster.learners]:
        ctx.undeploy_service(project, name)
    left = sum(1 for c in project.clusters if c.state == "running")
    needed = project.min_clusters or len(project.clusters)
    if left < needed:
        ctx.fail(project, f"cluster {cluster.name} lost: {cause}; {left} cluster(s) left, min_clusters is {needed}")
        return
    ctx.emit(project, EventKind.LOG, f"cluster {cluster.name} lost: {cause}; training goes on with {left} cluster(s)")
    ctx.save(project)


def learner_lost(ctx: EngineContext, project: Project, service: str, cause: str) -> None:
    """A learner of a cluster is gone: the cluster goes on while ``min_fit_clients`` of its learners are left."""
    cluster = project.cluster_of_service(service)
    if cluster is None or cluster.state == "lost":
        return
    ctx.undeploy_service(project, service)
    alive = sum(1 for name in cluster.learners if name in project.services)
    needed = project.sla.training_configuration.min_fit_clients
    if alive < needed:
        lose_cluster(ctx, project, cluster, f"{cause}; {alive} of its learners left, {needed} needed")
        return
    ctx.emit(project, EventKind.LOG, f"cluster {cluster.name}: {cause}; {alive} learner(s) left")
    ctx.save(project)
