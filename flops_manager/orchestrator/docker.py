"""``docker`` backend: every service is a container on one Docker engine (docker SDK 7); nodes are virtual.

Nodes come from configuration, as with the ``local`` backend: ``builder-<i>`` (image-builder) and
``learner-<i>`` (learner), each with a data folder ``nodes/<name>/data/<tag>/``; a learner's node data
folder is bind-mounted read-only into its container at the same path. Containers:

* use the host's network (the engine runs without a bridge) and talk to 127.0.0.1 only;
* carry labels ``org.flops.{managed,instance,project,service,role,node}`` (``list_services`` filters on them;
  ``instance`` keeps two managers on one engine apart);
* get memory (MB) and vCPU limits from ``ServiceSpec.resources``; secrets in a 0600 file mounted read-only
  (``flops_common.secret_env``), never in the container's configuration;
* run ``spec.image``, or the platform's service image for the builder and the observer. The builder also
  gets the engine's socket (it builds and pushes images) and, if configured, the host's CA bundle.

On undeploy a container's output is saved to ``services/<project>/<service>/output.log``, then the
container is stopped and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from flops_common.secret_env import SECRET_ENV_FILE, SECRET_ENV_PATH
from flops_manager.orchestrator.base import (
    CAP_IMAGE_BUILDER,
    CAP_LEARNER,
    Node,
    Orchestrator,
    ServiceHandle,
    ServiceRole,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
)

log = logging.getLogger(__name__)

LABEL_MANAGED = "org.flops.managed"
LABEL_INSTANCE = "org.flops.instance"
LABEL_PROJECT = "org.flops.project"
LABEL_SERVICE = "org.flops.service"
LABEL_ROLE = "org.flops.role"
LABEL_NODE = "org.flops.node"
DOCKER_SOCKET_IN_CONTAINER = "/var/run/docker.sock"
CA_BUNDLE_IN_CONTAINER = "/etc/flops/ca-bundle.crt"
SECRET_ENV_IN_CONTAINER = f"/run/secrets/{SECRET_ENV_FILE}"
STOP_TIMEOUT_S = 10


def instance_id(home: Path) -> str:
    """Which manager a container belongs to: a hash of its home directory."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def socket_path(docker_host: str | None) -> str | None:
    """The host path of the engine's unix socket, if it is one."""
    host = docker_host or "unix:///var/run/docker.sock"
    return host.removeprefix("unix://") if host.startswith("unix://") else None


class DockerOrchestrator(Orchestrator):
    """Containers with host networking on one engine; virtual nodes from configuration."""

    name = "docker"

    def __init__(
        self,
        nodes_dir: Path,
        services_dir: Path,
        learner_nodes: int,
        builder_nodes: int,
        service_image: str,
        docker_host: str | None = None,
        ca_bundle: str | None = None,
        instance: str | None = None,
    ) -> None:
        self._nodes_dir = nodes_dir
        self._services_dir = services_dir
        self._node_caps: dict[str, list[str]] = {f"builder-{i}": [CAP_IMAGE_BUILDER] for i in range(builder_nodes)}
        self._node_caps |= {f"learner-{i}": [CAP_LEARNER] for i in range(learner_nodes)}
        self._service_image = service_image
        self._docker_host = docker_host
        self._ca_bundle = ca_bundle if ca_bundle and Path(ca_bundle).is_file() else None
        self._instance = instance or instance_id(nodes_dir.parent)
        self._client_: Any = None

    @property
    def _client(self) -> Any:
        if self._client_ is None:
            self._client_ = (
                docker.DockerClient(base_url=self._docker_host, timeout=120)
                if self._docker_host
                else docker.from_env(timeout=120)
            )
        return self._client_

    def close(self) -> None:
        """Close the engine connection."""
        if self._client_ is not None:
            self._client_.close()
            self._client_ = None

    # nodes
    def node_data_dir(self, node: str) -> Path:
        """The folder holding a node's data, one subfolder per data tag."""
        return self._nodes_dir / node / "data"

    def nodes(self) -> list[Node]:
        """Virtual nodes; data tags are the non-empty tag folders under each node's data dir."""
        result = []
        for name, caps in self._node_caps.items():
            data_dir = self.node_data_dir(name)
            tags = (
                sorted(p.name for p in data_dir.iterdir() if p.is_dir() and any(p.iterdir()))
                if data_dir.is_dir()
                else []
            )
            result.append(Node(name=name, capabilities=caps, data_tags=tags, data_dir=str(data_dir)))
        return result

    # services
    def container_name(self, project_id: str, service: str) -> str:
        """The container's name: unique per manager instance, project and service."""
        return f"flops-{self._instance}-{project_id}-{service}"

    def _labels(self, spec: ServiceSpec, node: Node) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: self._instance,
            LABEL_PROJECT: spec.project_id,
            LABEL_SERVICE: spec.name,
            LABEL_ROLE: spec.role.value,
            LABEL_NODE: node.name,
        }

    def _mounts(self, spec: ServiceSpec, node: Node) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """Bind mounts and the environment they need."""
        volumes: dict[str, dict[str, str]] = {}
        env: dict[str, str] = {}
        if spec.role is ServiceRole.LEARNER and node.data_dir:
            Path(node.data_dir).mkdir(parents=True, exist_ok=True)
            volumes[node.data_dir] = {"bind": node.data_dir, "mode": "ro"}
        if spec.role is ServiceRole.BUILDER:
            socket = socket_path(self._docker_host)
            if socket is not None:
                volumes[socket] = {"bind": DOCKER_SOCKET_IN_CONTAINER, "mode": "rw"}
                env["DOCKER_HOST"] = f"unix://{DOCKER_SOCKET_IN_CONTAINER}"
            elif self._docker_host:
                env["DOCKER_HOST"] = self._docker_host
            if self._ca_bundle is not None:
                volumes[self._ca_bundle] = {"bind": CA_BUNDLE_IN_CONTAINER, "mode": "ro"}
                env["FLOPS_BUILD_CA_BUNDLE"] = CA_BUNDLE_IN_CONTAINER
        return volumes, env

    def _secret_env_file(self, service_id: str) -> Path:
        return self._services_dir / service_id / "secret-env.json"

    def _write_secret_env(self, spec: ServiceSpec) -> Path:
        """The service's secrets in a 0600 file to mount, so that ``docker inspect`` never shows them."""
        path = self._secret_env_file(f"{spec.project_id}/{spec.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(spec.secret_env, handle)
        return path

    def _remove_stale(self, name: str) -> None:
        """A container of the same name left by an earlier deployment (e.g. a manager restart) is removed."""
        with contextlib.suppress(NotFound):
            self._client.containers.get(name).remove(force=True)

    def deploy(self, spec: ServiceSpec, node: Node | None = None) -> ServiceHandle:
        """Run the service as a detached container on the host network."""
        node = node or self.place(spec.placement)[0]
        name = self.container_name(spec.project_id, spec.name)
        image = spec.image or self._service_image
        volumes, mount_env = self._mounts(spec, node)
        environment = {**spec.env, **mount_env, "FLOPS_NODE": node.name}
        if spec.secret_env:
            volumes[str(self._write_secret_env(spec))] = {"bind": SECRET_ENV_IN_CONTAINER, "mode": "ro"}
            environment[SECRET_ENV_PATH] = SECRET_ENV_IN_CONTAINER
        resources = spec.resources
        limits: dict[str, Any] = {}
        if resources.memory:
            limits["mem_limit"] = f"{resources.memory}m"
            limits["memswap_limit"] = f"{resources.memory}m"
        if resources.vcpus:
            limits["nano_cpus"] = int(resources.vcpus * 1e9)
        self._remove_stale(name)
        try:
            container = self._client.containers.run(
                image,
                command=list(spec.command),
                name=name,
                detach=True,
                network_mode="host",
                environment=environment,
                labels=self._labels(spec, node),
                volumes=volumes,
                working_dir=spec.workdir,
                init=True,
                **limits,
            )
        except ImageNotFound as exc:
            raise RuntimeError(f"image {image} of {spec.name} is neither on the engine nor pullable: {exc}") from exc
        handle = ServiceHandle(
            backend=self.name,
            service_id=f"{spec.project_id}/{spec.name}",
            name=spec.name,
            role=spec.role,
            node=node.name,
            info={"container": container.id, "container_name": name, "image": image},
        )
        service_dir = self._services_dir / spec.project_id / spec.name
        service_dir.mkdir(parents=True, exist_ok=True)
        # Not service.json: that name is the local backend's record of a process service.
        (service_dir / "container.json").write_text(handle.model_dump_json())
        return handle

    def _container(self, handle: ServiceHandle) -> Any | None:
        try:
            return self._client.containers.get(handle.info["container"])
        except NotFound:
            return None

    def status(self, handle: ServiceHandle) -> ServiceStatus:
        """Running while the container runs; then its exit code; gone once removed."""
        container = self._container(handle)
        if container is None:
            return ServiceStatus(state=ServiceState.GONE)
        state = container.attrs.get("State", {})
        if state.get("Status") in ("created", "running", "restarting") and not state.get("Dead"):
            return ServiceStatus(state=ServiceState.RUNNING)
        return ServiceStatus(state=ServiceState.EXITED, exit_code=state.get("ExitCode"))

    def logs(self, handle: ServiceHandle, tail: int | None = None) -> str:
        """The container's combined stdout and stderr (the saved log once it was removed)."""
        container = self._container(handle)
        if container is None:
            saved = self._services_dir / handle.service_id / "output.log"
            text = saved.read_text(errors="replace") if saved.is_file() else ""
            return "\n".join(text.splitlines()[-tail:]) if tail is not None else text
        try:
            raw = container.logs(stdout=True, stderr=True, tail=tail if tail is not None else "all")
        except APIError:
            return ""
        return bytes(raw).decode(errors="replace")

    def undeploy(self, handle: ServiceHandle) -> None:
        """Save the output, stop (SIGTERM, SIGKILL after a grace period) and remove; idempotent."""
        container = self._container(handle)
        if container is None:
            self._secret_env_file(handle.service_id).unlink(missing_ok=True)
            return
        with contextlib.suppress(APIError):
            if container.status == "running":
                container.stop(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(APIError, OSError):
            saved = self._services_dir / handle.service_id / "output.log"
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_bytes(container.logs(stdout=True, stderr=True))
        with contextlib.suppress(NotFound):
            container.remove(force=True)
        self._secret_env_file(handle.service_id).unlink(missing_ok=True)

    def list_services(self, project_id: str | None = None) -> list[ServiceHandle]:
        """Containers of this manager (of one project when given), from their labels."""
        filters = [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={self._instance}"]
        if project_id is not None:
            filters.append(f"{LABEL_PROJECT}={project_id}")
        try:
            # Sparse: no inspection per container, which fails for one removed while being listed.
            containers = self._client.containers.list(all=True, sparse=True, filters={"label": filters})
        except DockerException as exc:
            log.warning("listing containers failed: %s", exc)
            return []
        handles = []
        for container in containers:
            labels = container.attrs.get("Labels") or {}
            name = (container.attrs.get("Names") or [""])[0].lstrip("/")
            handles.append(
                ServiceHandle(
                    backend=self.name,
                    service_id=f"{labels[LABEL_PROJECT]}/{labels[LABEL_SERVICE]}",
                    name=labels[LABEL_SERVICE],
                    role=ServiceRole(labels[LABEL_ROLE]),
                    node=labels.get(LABEL_NODE, ""),
                    info={"container": container.id, "container_name": name},
                )
            )
        return handles
