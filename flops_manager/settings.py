"""All manager settings in one place, read from ``FLOPS_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flops_common.jobs import BusConfig
from flops_common.oci_images import DEFAULT_BASE_IMAGE


class Settings(BaseSettings):
    """Manager configuration. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_prefix="FLOPS_", env_nested_delimiter="__")

    home: Path = Field(default=Path("var"), description="State: registry, node data, service dirs, logs")
    api_host: str = "127.0.0.1"
    api_port: int = 8081
    api_access_log: bool = Field(default=False, description="Log every API request (costs ~10% of read throughput)")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: Path | None = Field(
        default=None, description="Mosquitto password_file the manager adds each project's broker users to"
    )
    mqtt_acl_file: Path | None = Field(default=None, description="Mosquitto acl_file the manager writes")
    mqtt_broker_pid_file: Path | None = Field(
        default=None, description="PID file of the broker, signalled (SIGHUP) to reload those two files"
    )

    store: str = Field(default="mongo", description="Store backend: mongo (MongoDB/SecantusDB) or memory")
    mongo_uri: SecretStr = SecretStr("mongodb://127.0.0.1:27018")
    mongo_db: str = "flops"

    mlflow_tracking_uri: str = "http://127.0.0.1:5001"
    mlflow_ui_url: str | None = Field(default=None, description="Public MLflow URL (default: tracking URI)")
    mlflow_username: str | None = Field(
        default=None, description="MLflow basic-auth user of the manager and the aggregators (password: below)"
    )
    mlflow_password: SecretStr | None = Field(
        default=None, description="MLflow basic-auth password; reaches aggregators only through their environment"
    )

    orchestrator: str = "local"
    registry: str = "local"
    local_learner_nodes: int = Field(default=2, ge=0, le=256)
    local_builder_nodes: int = Field(default=1, ge=0, le=16)
    local_clusters: int = Field(
        default=1, ge=1, le=64, description="Clusters the local learner nodes are split into (hierarchical mode)"
    )
    local_service_uid_base: int = Field(
        default=200_000,
        ge=0,
        description="local backend: services run as unprivileged users from this uid on (one per service; "
        "needs a root manager); 0 runs them as the manager's user",
    )

    # orchestrator "docker" or "swarm" / registry "oci" (deploy/start-docker.sh starts an engine and a registry;
    # deploy/start-swarm.sh makes it a one-node swarm)
    oci_registry: str = Field(default="127.0.0.1:5000", description="host:port of the OCI registry (registry oci)")
    oci_registry_ca: str | None = Field(
        default=None,
        description="CA certificate (PEM) of a TLS registry beyond loopback; builders get it too (engines: certs.d)",
    )
    docker_host: str | None = Field(default=None, description="Docker engine URL (default: DOCKER_HOST)")
    base_image: str = Field(default=DEFAULT_BASE_IMAGE, description="Base of FL-actor images (oci builds)")
    docker_service_image: str = Field(
        default="flops-builder:latest", description="Image of the builder and the observer (docker orchestrator)"
    )
    docker_ca_bundle: str | None = Field(
        default="/etc/ssl/certs/ca-certificates.crt",
        description="Host CA bundle mounted read-only into builders (a TLS-intercepting proxy); empty: none",
    )
    docker_learner_nodes: int = Field(default=2, ge=0, le=256)
    docker_builder_nodes: int = Field(default=1, ge=0, le=16)
    docker_clusters: int = Field(
        default=1, ge=1, le=64, description="Clusters the docker learner nodes are split into (hierarchical mode)"
    )

    allow_file_repos: bool = Field(default=True, description="Accept file:// repo URLs (one-machine setups)")
    repo_hosts: list[str] | None = Field(
        default=None, description="If set, the only hosts repo URLs may name (egress control)"
    )
    uv_find_links: list[str] = Field(default_factory=list)
    data_max_file_mb: int = Field(default=512, ge=1, description="Largest parquet file `flops data add` accepts")

    admin_token: SecretStr | None = Field(default=None, description="Bearer token of the admin")

    inference_host: str = Field(default="127.0.0.1", description="Address inference services listen on")
    inference_port: int = Field(
        default=0, ge=0, le=65535, description="Port of inference services; 0: a free port for each service"
    )

    timeout_image_lookup_s: float = 120.0
    timeout_image_build_s: float = 900.0
    timeout_actor_deployment_s: float = 180.0
    training_timeout_margin_s: float = 120.0
    timeout_post_training_s: float = Field(
        default=900.0, description="Stage 6: serving build plus the inference service's start"
    )
    tick_interval_s: float = 1.0

    @cached_property
    def home_dir(self) -> Path:
        """The absolute state directory."""
        return self.home.resolve()

    @property
    def registry_dir(self) -> Path:
        """Root of the local registry."""
        return self.home_dir / "registry"

    @property
    def nodes_dir(self) -> Path:
        """Root of the local orchestrator's virtual nodes."""
        return self.home_dir / "nodes"

    @property
    def services_dir(self) -> Path:
        """Working directories and logs of local services."""
        return self.home_dir / "services"

    @property
    def builder_plan(self) -> str:
        """The image builder's plan follows the registry: container images for ``oci``, else environments."""
        return "oci" if self.registry == "oci" else "local"

    @property
    def bus(self) -> BusConfig:
        """Where services find the broker (no password: that travels in the environment)."""
        return BusConfig(host=self.mqtt_host, port=self.mqtt_port, username=self.mqtt_username)

    @property
    def public_mlflow_url(self) -> str:
        """The MLflow UI users open."""
        return (self.mlflow_ui_url or self.mlflow_tracking_uri).rstrip("/")
