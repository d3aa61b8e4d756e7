"""Service specs for the builder, the observer and the FL actors of a project."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from flops_common.image_key import ImageKey, ImageManifest
from flops_common.jobs import JOB_ENV, AggregatorJob, BuildJob, LearnerJob
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
from flops_manager.orchestrator.base import (
    CAP_IMAGE_BUILDER,
    CAP_INFERENCE,
    CAP_LEARNER,
    Node,
    Placement,
    ServiceRole,
    ServiceSpec,
)
from flops_manager.projects.models import Project
from flops_manager.settings import Settings
from flops_manager.tracking.mlflow_server import client_secret_env, settings_credentials
from flops_utils.node_data import DATA_TAGS_ENV


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secrets(settings: Settings, tracking: bool = False) -> dict[str, str]:
    """A service's secret environment: the broker password and, for ``tracking`` (the aggregator), MLflow's.

    These travel only in ``ServiceSpec.secret_env`` (never in a job, the command or a stored document).
    """
    secret: dict[str, str] = {}
    if settings.mqtt_password is not None:
        secret[PASSWORD_ENV] = settings.mqtt_password.get_secret_value()
    if tracking:
        secret |= client_secret_env(settings_credentials(settings))
    return secret


def _build_plan(settings: Settings) -> dict[str, Any]:
    """The plan a builder follows and what only that plan uses (wheel links locally, a base image for OCI)."""
    plan = settings.builder_plan
    return {
        "plan": plan,
        "uv_find_links": settings.uv_find_links if plan == "local" else [],
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
        secret_env=_secrets(settings, tracking=tracking),
        placement=Placement(capability=CAP_IMAGE_BUILDER),
    )


def builder_spec(settings: Settings, project: Project, key: ImageKey, registry_location: str) -> ServiceSpec:
    """The one-shot builder that makes the actor images of ``key``."""
    job = BuildJob(
        project_id=project.id, bus=settings.bus, key=key, registry=registry_location, **_build_plan(settings)
    )
    return _builder(settings, project, "builder", {JOB_ENV: job.model_dump_json()}, tracking=False)


def observer_spec(settings: Settings, project: Project) -> ServiceSpec:
    """The project's observer: follows its events and writes the timeline."""
    return ServiceSpec(
        name="observer",
        project_id=project.id,
        role=ServiceRole.OBSERVER,
        command=["python", "-m", "observer", project.id],
        env={"FLOPS_OBSERVER_BUS": settings.bus.model_dump_json()},
        secret_env=_secrets(settings),
        one_shot=False,
    )


def aggregator_spec(
    settings: Settings,
    project: Project,
    manifest: ImageManifest,
    superlink_port: int,
    tracking_uri: str,
    superlink_host: str = "127.0.0.1",
) -> ServiceSpec:
    """The aggregator: Flower SuperLink (on ``superlink_host``, its node's address) plus the FLOps ServerApp."""
    job = AggregatorJob(
        project_id=project.id,
        bus=settings.bus,
        flavor=project.sla.ml_model_flavor,
        app_dir=manifest.app_dir,
        superlink_port=superlink_port,
        superlink_host=superlink_host,
        training=project.sla.training_configuration,
        mlflow_tracking_uri=tracking_uri,
        mlflow_experiment=f"flops-{project.customer_id}-{project.id}",
        registered_model=registered_model_name(project.customer_id, project.sla.ml_repo_url),
        model_tags=model_version_tags(project),
    )
    return ServiceSpec(
        name="aggregator",
        project_id=project.id,
        role=ServiceRole.AGGREGATOR,
        image=manifest.aggregator,
        command=["python", "-m", "fl_actors.aggregator"],
        env={JOB_ENV: job.model_dump_json()},
        secret_env=_secrets(settings, tracking=True),
        resources=project.sla.resource_constraints,
    )


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
        bus=settings.bus,
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
        project_id=project.id, bus=settings.bus, model_dir=serving.model_dir, host=settings.inference_host, port=port
    )
    return ServiceSpec(
        name="inference",
        project_id=project.id,
        role=ServiceRole.INFERENCE,
        image=serving.artifact,
        command=["python", "-m", "inference"],
        env={JOB_ENV: job.model_dump_json()},
        secret_env=_secrets(settings),
        placement=Placement(capability=CAP_INFERENCE if placed else None),
        one_shot=False,
    )


def learner_placement(project: Project) -> Placement:
    """Learner nodes holding every data tag of the project, one learner per node."""
    return Placement(capability=CAP_LEARNER, data_tags=project.sla.training_configuration.data_tags, exclusive=True)


def learner_spec(
    settings: Settings,
    project: Project,
    manifest: ImageManifest,
    index: int,
    node: Node,
    superlink_port: int,
    superlink_host: str = "127.0.0.1",
) -> ServiceSpec:
    """Learner ``index`` on ``node``: loads the node's data for the project's tags, then joins the
    aggregator's SuperLink at ``superlink_host:superlink_port``."""
    tags = project.sla.training_configuration.data_tags
    data_dir = Path(node.data_dir or "") / tags[0] if len(tags) == 1 else Path(node.data_dir or "")
    job = LearnerJob(
        project_id=project.id,
        bus=settings.bus,
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
        secret_env=_secrets(settings),
        placement=learner_placement(project),
        resources=project.sla.resource_constraints,
    )
