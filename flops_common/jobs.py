"""What the manager hands a builder, an aggregator or a learner (JSON in ``FLOPS_JOB``).

Secrets never travel in a job: they come from the service's own environment
(``FLOPS_MQTT_PASSWORD``, ``MLFLOW_TRACKING_PASSWORD``), or from a secret file it names
(``flops_common.secret_env``), which ``load_job`` loads first.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel, Field

from flops_common.image_key import ImageKey
from flops_common.secret_env import load_secret_env
from flops_common.sla import ModelFlavor, TrainingConfiguration

JOB_ENV = "FLOPS_JOB"


class BusConfig(BaseModel):
    """Where the MQTT broker is. The password, if any, is in ``FLOPS_MQTT_PASSWORD``."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None


class ServiceJob(BaseModel):
    """What every job names: its project and where to report."""

    project_id: str
    bus: BusConfig


class BuildJob(ServiceJob):
    """Build the actor environments/images for one key and publish them."""

    key: ImageKey
    plan: str = "local"  # "local": environments in a directory; "oci": container images
    registry: str  # local: registry root directory; oci: registry host:port
    uv_find_links: list[str] = Field(default_factory=list)
    base_image: str | None = None  # oci plan only


class AggregatorJob(ServiceJob):
    """Run the Flower SuperLink and the ServerApp for one project."""

    flavor: ModelFlavor
    app_dir: str
    superlink_port: int
    # The address the SuperLink listens on: where learners on other hosts reach the aggregator's node.
    superlink_host: str = "127.0.0.1"
    training: TrainingConfiguration  # the SLA's, as submitted: rounds, client counts, strategy, timeouts
    mlflow_tracking_uri: str
    mlflow_experiment: str
    # Stage 6: the final model becomes a new version of this registered model, with these tags.
    registered_model: str | None = None
    model_tags: dict[str, str] = Field(default_factory=dict)
    clusters: int = 0  # hierarchical mode: the cluster aggregators deployed for this root


class ClusterAggregatorJob(ServiceJob):
    """Hierarchical mode: the SuperLink of one cluster and its long-lived ServerApp run, and a SuperNode of
    the root's federation that hands each cycle to it. No MLflow: only the root tracks."""

    cluster: str
    flavor: ModelFlavor
    app_dir: str
    superlink_port: int  # the cluster's SuperLink: its learners connect here
    superlink_host: str = "127.0.0.1"  # where it listens: its node's address when learners are on other hosts
    root_superlink_address: str  # host:port of the root aggregator's SuperLink
    supernode_port: int  # the Runtime API of its root-facing SuperNode
    training: TrainingConfiguration  # the SLA's: training_rounds and min_*_clients count per cluster


class LearnerJob(ServiceJob):
    """Load this node's data, then run a Flower SuperNode against the project's SuperLink."""

    learner_index: int
    app_dir: str
    superlink_address: str  # host:port
    supernode_port: int
    data_dir: str  # this node's data for the project's data tags


JobT = TypeVar("JobT", bound=ServiceJob)


def load_job(model: type[JobT]) -> JobT:
    """Read the job of this service from ``FLOPS_JOB`` (after loading its secret file, if any)."""
    load_secret_env()
    return model.model_validate_json(os.environ[JOB_ENV])
