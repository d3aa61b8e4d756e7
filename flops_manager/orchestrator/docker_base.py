"""What the ``docker`` and ``swarm`` backends share: one engine client, labels, mounts, saved logs, listing.

Both name a service ``flops-<instance>-<project>-<service>``, label it ``org.flops.{managed,instance,project,
service,role,node}`` (``instance`` keeps two managers on one engine apart), bind-mount the folders of
the project's data tags on a learner's node read-only at the same path, give the builder the engine's
socket (it builds and pushes images) and, if configured, the host's CA bundle, and keep a service's output
in ``services/<project>/<service>/output.log`` once it is removed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import docker
from docker.errors import APIError, NotFound

from flops_common.oci_registry import REGISTRY_CA_ENV
from flops_manager.orchestrator.base import Node, Orchestrator, ServiceHandle, ServiceRole, ServiceSpec
from flops_manager.orchestrator.container_hardening import share_with_container_user

LABEL_MANAGED, LABEL_INSTANCE, LABEL_PROJECT, LABEL_SERVICE, LABEL_ROLE, LABEL_NODE = (
    f"org.flops.{name}" for name in ("managed", "instance", "project", "service", "role", "node")
)
DOCKER_SOCKET_IN_CONTAINER = "/var/run/docker.sock"
CA_BUNDLE_IN_CONTAINER = "/etc/flops/ca-bundle.crt"
REGISTRY_CA_IN_CONTAINER = "/etc/flops/registry-ca.crt"
CLIENT_TIMEOUT_S = 120


def instance_id(home: Path) -> str:
    """Which manager a container belongs to: a hash of its home directory."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def socket_path(docker_host: str | None) -> str | None:
    """The host path of the engine's unix socket, if it is one."""
    host = docker_host or "unix:///var/run/docker.sock"
    return host.removeprefix("unix://") if host.startswith("unix://") else None


class Bind(NamedTuple):
    """A host path mounted into a service's container."""

    source: str
    target: str
    read_only: bool


class DockerBackedOrchestrator(Orchestrator):
    """A backend talking to a Docker engine (``DOCKER_HOST`` or the given address).

    A deployed service is one object of the engine's ``_collection`` (containers, services) whose id
    its handle keeps under ``info[_id_key]``.
    """

    _collection: str
    _id_key: str

    def __init__(
        self,
        nodes_dir: Path,
        services_dir: Path,
        service_image: str,
        docker_host: str | None = None,
        ca_bundle: str | None = None,
        instance: str | None = None,
        registry_ca: str | None = None,
    ) -> None:
        self._nodes_dir = nodes_dir
        self._services_dir = services_dir
        self._service_image = service_image
        self._docker_host = docker_host
        self._ca_bundle = ca_bundle if ca_bundle and Path(ca_bundle).is_file() else None
        self._instance = instance or instance_id(nodes_dir.parent)
        self._registry_ca = registry_ca if registry_ca and Path(registry_ca).is_file() else None
        self._client_: Any = None

    @property
    def _client(self) -> Any:
        if self._client_ is None:
            self._client_ = (
                docker.DockerClient(base_url=self._docker_host, timeout=CLIENT_TIMEOUT_S)
                if self._docker_host
                else docker.from_env(timeout=CLIENT_TIMEOUT_S)
            )
        return self._client_

    def close(self) -> None:
        """Close the engine connection."""
        if self._client_ is not None:
            self._client_.close()
            self._client_ = None

    def _engine_object(self, handle: ServiceHandle) -> Any | None:
        """The container or Swarm service of ``handle``; None once it is removed."""
        try:
            return getattr(self._client, self._collection).get(handle.info[self._id_key])
        except NotFound:
            return None

    def engine_name(self, project_id: str, service: str) -> str:
        """The container's or Swarm service's name: unique per manager instance, project and service."""
        return f"flops-{self._instance}-{project_id}-{service}"

    def _labels(self, spec: ServiceSpec, node: str) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: self._instance,
            LABEL_PROJECT: spec.project_id,
            LABEL_SERVICE: spec.name,
            LABEL_ROLE: spec.role.value,
            LABEL_NODE: node,
        }

    def _label_filters(self, project_id: str | None) -> list[str]:
        """Label filters selecting this manager's services (of one project when given)."""
        filters = [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={self._instance}"]
        if project_id is not None:
            filters.append(f"{LABEL_PROJECT}={project_id}")
        return filters

    def _binds(self, spec: ServiceSpec, node: Node | None) -> tuple[list[Bind], dict[str, str]]:
        """Bind mounts of a service and the environment they need."""
        binds: list[Bind] = []
        env: dict[str, str] = {}
        if spec.role is ServiceRole.LEARNER and node is not None and node.data_dir:
            # Only the folders of the project's tags on this node, read-only: not the node's other data.
            for tag in spec.placement.data_tags:
                tag_dir = Path(node.data_dir) / tag
                tag_dir.mkdir(parents=True, exist_ok=True)
                share_with_container_user(tag_dir)
                binds.append(Bind(str(tag_dir), str(tag_dir), read_only=True))
        binds += [Bind(path, path, read_only=True) for path in spec.read_only_paths if Path(path).is_dir()]
        if spec.role is ServiceRole.BUILDER:
            socket = socket_path(self._docker_host)
            if socket is not None:
                binds.append(Bind(socket, DOCKER_SOCKET_IN_CONTAINER, read_only=False))
                env["DOCKER_HOST"] = f"unix://{DOCKER_SOCKET_IN_CONTAINER}"
            elif self._docker_host:
                env["DOCKER_HOST"] = self._docker_host
            if self._ca_bundle is not None:
                binds.append(Bind(self._ca_bundle, CA_BUNDLE_IN_CONTAINER, read_only=True))
                env["FLOPS_BUILD_CA_BUNDLE"] = CA_BUNDLE_IN_CONTAINER
            if self._registry_ca is not None:  # the builder reads the registry over TLS
                binds.append(Bind(self._registry_ca, REGISTRY_CA_IN_CONTAINER, read_only=True))
                env[REGISTRY_CA_ENV] = REGISTRY_CA_IN_CONTAINER
        return binds, env

    def _deployed(self, spec: ServiceSpec, node: str, info: dict[str, Any], record: str) -> ServiceHandle:
        """The handle of a service just deployed, also written to ``record`` in its service dir."""
        handle = ServiceHandle(
            backend=self.name,
            service_id=f"{spec.project_id}/{spec.name}",
            name=spec.name,
            role=spec.role,
            node=node,
            info=info,
        )
        service_dir = self._services_dir / spec.project_id / spec.name
        service_dir.mkdir(parents=True, exist_ok=True)
        (service_dir / record).write_text(handle.model_dump_json())
        return handle

    def _listed(self, labels: dict[str, str], info: dict[str, Any]) -> ServiceHandle:
        """The handle of a service found by its labels."""
        return ServiceHandle(
            backend=self.name,
            service_id=f"{labels[LABEL_PROJECT]}/{labels[LABEL_SERVICE]}",
            name=labels[LABEL_SERVICE],
            role=ServiceRole(labels[LABEL_ROLE]),
            node=labels.get(LABEL_NODE, ""),
            info=info,
        )

    def _output_log(self, handle: ServiceHandle) -> Path:
        """Where a service's output is kept once it is removed."""
        return self._services_dir / handle.service_id / "output.log"

    def _save_output(self, handle: ServiceHandle, output: bytes) -> None:
        path = self._output_log(handle)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(output)

    def logs(self, handle: ServiceHandle, tail: int | None = None) -> str:
        """The service's combined stdout and stderr from the engine (the saved output once it was removed)."""
        found = self._engine_object(handle)
        if found is None:
            return self._saved_logs(handle, tail)
        try:
            # A container answers with bytes, a Swarm service with a stream of chunks.
            raw = found.logs(stdout=True, stderr=True, tail=tail if tail is not None else "all")
            text = (raw if isinstance(raw, bytes) else b"".join(raw)).decode(errors="replace")
        except APIError:
            text = ""
        return text + self._engine_note(found)

    def _engine_note(self, found: Any) -> str:
        """What the engine says about a service beyond its output (appended to its logs)."""
        return ""

    def _saved_logs(self, handle: ServiceHandle, tail: int | None) -> str:
        """The output saved on undeploy (last ``tail`` lines when given); empty if there is none."""
        saved = self._output_log(handle)
        text = saved.read_text(errors="replace") if saved.is_file() else ""
        return "\n".join(text.splitlines()[-tail:]) if tail is not None else text
