"""Service specs for the builder, the observer and the FL actors of a project."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.jobs import JOB_ENV, AggregatorJob, BuildJob, BusConfig, ClusterAggregatorJob, LearnerJob
from flops_common.mqtt import PASSWORD_ENV
from flops_common.redaction import redact_url
from flops_common.serving import (
    JOB_KIND_ENV,
    SERVING_JOB_KIND,
    InferenceJob,
    ServingBuildJob,
    ServingManifest,
    registered_model_name,
)
from flops_common.sla import TrainingConfiguration
from flops_manager.bus.broker_acl import BrokerRole, project_accounts
from flops_manager.orchestrator.base import (
    CAP_IMAGE_BUILDER,
    CAP_INFERENCE,
    CAP_LEARNER,
    Node,
    Placement,
    ServiceRole,
    ServiceSpec,
)
from flops_manager.projects.models import Project, cluster_aggregator_name
from flops_manager.settings import Settings
from flops_manager.tracking.mlflow_server import client_secret_env, settings_credentials
from flops_manager.tracking.project_users import aggregator_login
from flops_utils.node_data import DATA_TAGS_ENV


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _login(settings: Settings, project: Project, role: BrokerRole) -> tuple[str | None, str | None]:
    """The broker user and password a service of ``project`` connects with: its project's own, if any."""
    login = project_accounts(settings).login(project.id, role)
    if login is not None:
        return login[0], login[1].get_secret_value()
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password is not None else None
    return settings.mqtt_username, password


def _bus(settings: Settings, project: Project, role: BrokerRole = BrokerRole.SERVICE) -> BusConfig:
    """Where a service of ``project`` finds the broker and which user it is there (no password)."""
    return settings.bus.model_copy(update={"username": _login(settings, project, role)[0]})


def _secrets(
    settings: Settings, project: Project, role: BrokerRole = BrokerRole.SERVICE, tracking: bool = False
) -> dict[str, str]:
    """A service's secret environment: its broker password and, for ``tracking``, the manager's MLflow login.

    These travel only in ``ServiceSpec.secret_env`` (never in a job, the command or a stored document).
    """
    secret: dict[str, str] = {}
    password = _login(settings, project, role)[1]
    if password is not None:
        secret[PASSWORD_ENV] = password
    if tracking:
        secret |= client_secret_env(settings_credentials(settings))
    return secret


def _build_plan(settings: Settings) -> dict[str, Any]:
    """The plan a builder follows, the wheel links both plans prefer, and a base image for OCI."""
    plan = settings.builder_plan
    return {
        "plan": plan,
        "uv_find_links": settings.uv_find_links,
        "base_image": settings.base_image if plan == "oci" else None,
    }


def _builder(settings: Settings, project: Project, name: str, env: dict[str, str], tracking: bool) -> ServiceSpec:
    """A one-shot ``image_builder`` service on an ``image-builder`` node."""
    return ServiceSpec(
        name=name,
        project_id=project.id,
        role=ServiceRole.BUILDER,
        command=["python", "-m", "image_builder"],
        env=env,
        secret_env=_secrets(settings, project, tracking=tracking),
        placement=Placement(capability=CAP_IMAGE_BUILDER),
        # Both plans prefer the find-links' wheels (e.g. a CPU-only torch); a container builder reads them in place.
        read_only_paths=list(settings.uv_find_links),
    )


def builder_spec(settings: Settings, project: Project, key: ImageKey, registry_location: str) -> ServiceSpec:
    """The one-shot builder that makes the actor images of ``key``."""
    job = BuildJob(
        project_id=project.id, bus=_bus(settings, project), key=key, registry=registry_location, **_build_plan(settings)
    )
    return _builder(settings, project, "builder", {JOB_ENV: job.model_dump_json()}, tracking=False)


def observer_spec(settings: Settings, project: Project) -> ServiceSpec:
    """The project's observer: follows its events and writes the timeline."""
    return ServiceSpec(
        name="observer",
        project_id=project.id,
        role=ServiceRole.OBSERVER,
        command=["python", "-m", "observer", project.id],
        env={"FLOPS_OBSERVER_BUS": _bus(settings, project, BrokerRole.OBSERVER).model_dump_json()},
        secret_env=_secrets(settings, project, BrokerRole.OBSERVER),
        one_shot=False,
    )


def aggregator_spec(
    settings: Settings,
    project: Project,
    manifest: ImageManifest,
    superlink_port: int,
    tracking_uri: str,
    training: TrainingConfiguration | None = None,
    clusters: int = 0,
    superlink_host: str = "127.0.0.1",
) -> ServiceSpec:
    """The aggregator: Flower SuperLink (on ``superlink_host``, its node's address) plus the FLOps ServerApp
    (``training``: the SLA's unless given, e.g. a hierarchical root's with ``min_clusters`` resolved;
    ``clusters``: a root's cluster aggregators)."""
    job = AggregatorJob(
        project_id=project.id,
        bus=_bus(settings, project),
        flavor=project.sla.ml_model_flavor,
        app_dir=manifest.app_dir,
        superlink_port=superlink_port,
        superlink_host=superlink_host,
        training=training or project.sla.training_configuration,
        mlflow_tracking_uri=tracking_uri,
        mlflow_experiment=experiment_name(project),
        registered_model=model_name(project),
        model_tags=model_version_tags(project),
        clusters=clusters,
    )
    return ServiceSpec(
        name="aggregator",
        project_id=project.id,
        role=ServiceRole.AGGREGATOR,
        image=manifest.aggregator,
        command=["python", "-m", "fl_actors.aggregator"],
        env={JOB_ENV: job.model_dump_json()},
        # Its own MLflow user (``tracking.project_users``): it may edit only this project's experiment and model.
        secret_env=_secrets(settings, project) | client_secret_env(aggregator_login(settings, project.id)),
        resources=project.sla.resource_constraints,
    )


def cluster_aggregator_spec(
    settings: Settings,
    project: Project,
    manifest: ImageManifest,
    cluster: str,
    superlink_port: int,
    root_superlink_address: str,
    superlink_host: str = "127.0.0.1",
) -> ServiceSpec:
    """Hierarchical mode: the aggregator of ``cluster``, from the learner image (no MLflow) on a node of the
    cluster, its SuperLink on ``superlink_host`` (its node's address), a participant of the root's federation
    at ``root_superlink_address``."""
    job = ClusterAggregatorJob(
        project_id=project.id,
        bus=_bus(settings, project),
        cluster=cluster,
        flavor=project.sla.ml_model_flavor,
        app_dir=manifest.app_dir,
        superlink_port=superlink_port,
        superlink_host=superlink_host,
        root_superlink_address=root_superlink_address,
        supernode_port=free_port(),
        training=project.sla.training_configuration,
    )
    return ServiceSpec(
        name=cluster_aggregator_name(cluster),
        project_id=project.id,
        role=ServiceRole.CLUSTER_AGGREGATOR,
        image=manifest.learner,
        command=["python", "-m", "fl_actors.cluster_aggregator"],
        env={JOB_ENV: job.model_dump_json()},
        secret_env=_secrets(settings, project),
        placement=Placement(cluster=cluster),
        resources=project.sla.resource_constraints,
    )


def experiment_name(project: Project) -> str:
    """The MLflow experiment of a project's training run."""
    return f"flops-{project.customer_id}-{project.id}"


def model_name(project: Project) -> str:
    """The registered model a project's final model becomes a version of."""
    return registered_model_name(project.customer_id, project.sla.ml_repo_url)


def model_version_tags(project: Project) -> dict[str, str]:
    """Tags of the registered model version a project adds (the aggregator adds the final metrics)."""
    sla = project.sla
    return {
        "flops.project_id": project.id,
        "flops.customer_id": project.customer_id,
        "flops.repo_url": redact_url(sla.ml_repo_url),
        "flops.commit": project.commit or "",
        "flops.flavor": sla.ml_model_flavor.value,
        "flops.data_tags": ",".join(sla.training_configuration.data_tags),
    }


def serving_builder_spec(
    settings: Settings, project: Project, registry_location: str, tracking_uri: str
) -> ServiceSpec:
    """The one-shot builder that makes the serving runtime of the project's registered model version."""
    assert project.registered_model is not None
    job = ServingBuildJob(
        project_id=project.id,
        bus=_bus(settings, project),
        model=project.registered_model,
        flavor=project.sla.ml_model_flavor,
        customer_id=project.customer_id,
        registry=registry_location,
        tracking_uri=tracking_uri,
        **_build_plan(settings),
    )
    env = {JOB_ENV: job.model_dump_json(), JOB_KIND_ENV: SERVING_JOB_KIND}
    return _builder(settings, project, "serving-builder", env, tracking=True)


def inference_spec(
    settings: Settings, project: Project, serving: ServingManifest, port: int, placed: bool
) -> ServiceSpec:
    """The long-running inference service of ``serving``; on an ``inference`` node when ``placed``."""
    job = InferenceJob(
        project_id=project.id,
        bus=_bus(settings, project),
        model_dir=serving.model_dir,
        host=settings.inference_host,
        port=port,
    )
    return ServiceSpec(
        name="inference",
        project_id=project.id,
        role=ServiceRole.INFERENCE,
        image=serving.artifact,
        command=["python", "-m", "inference"],
        env={JOB_ENV: job.model_dump_json()},
        secret_env=_secrets(settings, project),
        placement=Placement(capability=CAP_INFERENCE if placed else None),
        one_shot=False,
    )


def learner_placement(project: Project, cluster: str | None = None) -> Placement:
    """Learner nodes holding every data tag of the project (of ``cluster`` when given), one learner per node."""
    tags = project.sla.training_configuration.data_tags
    return Placement(capability=CAP_LEARNER, data_tags=tags, exclusive=True, cluster=cluster)


def learner_spec(
    settings: Settings,
    project: Project,
    manifest: ImageManifest,
    index: int,
    node: Node,
    superlink_port: int,
    cluster: str | None = None,
    superlink_host: str = "127.0.0.1",
) -> ServiceSpec:
    """Learner ``index`` on ``node``: loads the node's data for the project's tags, then joins its aggregator's
    SuperLink at ``superlink_host:superlink_port`` (hierarchical mode: the aggregator of ``cluster``, the
    node's cluster)."""
    tags = project.sla.training_configuration.data_tags
    data_dir = Path(node.data_dir or "") / tags[0] if len(tags) == 1 else Path(node.data_dir or "")
    job = LearnerJob(
        project_id=project.id,
        bus=_bus(settings, project),
        learner_index=index,
        app_dir=manifest.app_dir,
        superlink_address=f"{superlink_host}:{superlink_port}",
        supernode_port=free_port(),
        data_dir=str(data_dir),
    )
    return ServiceSpec(
        name=f"learner-{index}",
        project_id=project.id,
        role=ServiceRole.LEARNER,
        image=manifest.learner,
        command=["python", "-m", "fl_actors.learner"],
        # flops_utils.load_dataset reads every tag of the project (several tags: data_dir is the node's root)
        env={JOB_ENV: job.model_dump_json(), DATA_TAGS_ENV: ",".join(tags)},
        secret_env=_secrets(settings, project),
        placement=learner_placement(project, cluster),
        resources=project.sla.resource_constraints,
    )
