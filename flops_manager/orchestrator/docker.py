"""``docker`` backend: every service is a container on one Docker engine (docker SDK 7); nodes are virtual.

Nodes come from configuration (``virtual_nodes``), as with the ``local`` backend: ``builder-<i>`` (image-builder) and
``learner-<i>`` (learner), each with a data folder ``nodes/<name>/data/<tag>/``; a learner's node data
folder is bind-mounted read-only into its container at the same path. Containers:

* use the host's network (the engine runs without a bridge) and talk to 127.0.0.1 only;
* carry labels ``org.flops.{managed,instance,project,service,role,node}`` (``list_services`` filters on them;
  ``instance`` keeps two managers on one engine apart);
* get memory (MB) and vCPU limits from ``ServiceSpec.resources``; secrets in a 0600 file mounted read-only
  (``flops_common.secret_env``), never in the container's configuration;
* are confined (``container_hardening``): non-root, no capabilities, ``no-new-privileges``, a PID limit,
  a read-only root filesystem with a private ``/tmp`` as working directory (all but the builder);
* run ``spec.image``, or the platform's service image for the builder and the observer. The builder also
  gets the engine's socket (it builds and pushes images) and, if configured, the host's CA bundle.

On undeploy a container's output is saved to ``services/<project>/<service>/output.log``, then the
container is stopped and removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from flops_common.secret_env import SECRET_ENV_FILE, SECRET_ENV_PATH
from flops_manager.orchestrator.base import (
    Node,
    ServiceHandle,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
)
from flops_manager.orchestrator.container_hardening import (
    CONTAINER_UID,
    container_env,
    container_options,
    container_workdir,
    unprivileged,
)
from flops_manager.orchestrator.docker_base import DockerBackedOrchestrator
from flops_manager.orchestrator.virtual_nodes import VirtualNodes

log = logging.getLogger(__name__)

SECRET_ENV_IN_CONTAINER = f"/run/secrets/{SECRET_ENV_FILE}"
STOP_TIMEOUT_S = 10


class DockerOrchestrator(DockerBackedOrchestrator):
    """Containers with host networking on one engine; virtual nodes from configuration."""

    name = "docker"
    _collection = "containers"
    _id_key = "container"

    def __init__(
        self,
        nodes_dir: Path,
        services_dir: Path,
        learner_nodes: int,
        builder_nodes: int,
        service_image: str,
        clusters: int = 1,
        **engine: str | None,
    ) -> None:
        """``engine``: ``docker_host``, ``ca_bundle`` and ``instance`` as the base takes them; ``clusters``:
        how many clusters the learner nodes are split into."""
        super().__init__(nodes_dir, services_dir, service_image, **engine)
        self._virtual_nodes = VirtualNodes(nodes_dir, learner_nodes, builder_nodes, clusters)

    # nodes
    def node_data_dir(self, node: str) -> Path:
        """The folder holding a node's data, one subfolder per data tag."""
        return self._virtual_nodes.data_dir(node)

    def nodes(self) -> list[Node]:
        """Virtual nodes; data tags are the non-empty tag folders under each node's data dir."""
        return self._virtual_nodes.nodes()

    # services
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
        name = self.engine_name(spec.project_id, spec.name)
        image = spec.image or self._service_image
        binds, mount_env = self._binds(spec, node)
        volumes = {b.source: {"bind": b.target, "mode": "ro" if b.read_only else "rw"} for b in binds}
        environment = {**spec.env, **mount_env, **container_env(spec), "FLOPS_NODE": node.name}
        if spec.secret_env:
            secret_file = self._write_secret_env(spec)
            if unprivileged(spec):
                os.chown(secret_file, CONTAINER_UID, CONTAINER_UID)  # still 0600: only the container's user
            volumes[str(secret_file)] = {"bind": SECRET_ENV_IN_CONTAINER, "mode": "ro"}
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
                labels=self._labels(spec, node.name),
                volumes=volumes,
                working_dir=container_workdir(spec),
                init=True,
                **container_options(spec),
                **limits,
            )
        except ImageNotFound as exc:
            raise RuntimeError(f"image {image} of {spec.name} is neither on the engine nor pullable: {exc}") from exc
        info = {"container": container.id, "container_name": name, "image": image}
        # Not service.json: that name is the local backend's record of a process service.
        return self._deployed(spec, node.name, info, record="container.json")

    def status(self, handle: ServiceHandle) -> ServiceStatus:
        """Running while the container runs; then its exit code; gone once removed."""
        container = self._engine_object(handle)
        if container is None:
            return ServiceStatus(state=ServiceState.GONE)
        state = container.attrs.get("State", {})
        if state.get("Status") in ("created", "running", "restarting") and not state.get("Dead"):
            return ServiceStatus(state=ServiceState.RUNNING)
        return ServiceStatus(state=ServiceState.EXITED, exit_code=state.get("ExitCode"))

    def undeploy(self, handle: ServiceHandle) -> None:
        """Save the output, stop (SIGTERM, SIGKILL after a grace period) and remove; idempotent."""
        container = self._engine_object(handle)
        if container is None:
            self._secret_env_file(handle.service_id).unlink(missing_ok=True)
            return
        with contextlib.suppress(APIError):
            if container.status == "running":
                container.stop(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(APIError, OSError):
            self._save_output(handle, container.logs(stdout=True, stderr=True))
        with contextlib.suppress(NotFound):
            container.remove(force=True)
        self._secret_env_file(handle.service_id).unlink(missing_ok=True)

    def list_services(self, project_id: str | None = None) -> list[ServiceHandle]:
        """Containers of this manager (of one project when given), from their labels."""
        try:
            # Sparse: no inspection per container, which fails for one removed while being listed.
            containers = self._client.containers.list(
                all=True, sparse=True, filters={"label": self._label_filters(project_id)}
            )
        except DockerException as exc:
            log.warning("listing containers failed: %s", exc)
            return []
        return [
            self._listed(
                container.attrs.get("Labels") or {},
                {
                    "container": container.id,
                    "container_name": (container.attrs.get("Names") or [""])[0].lstrip("/"),
                },
            )
            for container in containers
        ]
