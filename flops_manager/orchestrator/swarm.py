"""``swarm`` backend: every service is a Docker Swarm service; nodes and their capabilities come from Swarm.

A node's FLOps capabilities are its Swarm node labels (``docker node update --label-add``)::

    flops.image-builder=true      may run image builders (it needs a Docker engine to build on)
    flops.learner=true            may run learners
    flops.inference=true          may run inference services (when no node has it, any node may)
    flops.data-tag.<tag>=true     holds data under <tag>
    flops.data-dir=/abs/path      where that data lives (default: FLOPS_HOME/nodes/<hostname>/data)
    flops.cluster=<name>          the node's cluster (hierarchical mode; default: cluster-0)

Only ready, active nodes count. Services:

* one Swarm service per FLOps service, replicated with one replica, on the host network (no overlay,
  no ingress, no bridge), restart condition ``none`` for one-shot services (builder, aggregator,
  learners) and ``on-failure`` for the observer;
* placement constraints from node labels: the capability and every data tag, plus the node FLOps chose
  (``node.hostname==``) so that learners spread as planned; the aggregator and the observer run on the
  Swarm manager this backend talks to, where the platform's broker and MLflow listen;
* secrets never enter the service spec: they become a Swarm secret mounted at ``/run/secrets/`` and
  read by the service at start (``flops_common.secret_env``), and the secret is removed on undeploy;
* labels ``org.flops.{managed,instance,project,service,role,node}`` as with the ``docker`` backend.

Logs come through the service API; on undeploy they are saved to ``services/<project>/<service>/output.log``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

from docker.errors import APIError, DockerException, NotFound
from docker.types import Mount, Resources, RestartPolicy, SecretReference, ServiceMode

from flops_common.secret_env import SECRET_ENV_FILE, SECRET_ENV_PATH
from flops_manager.orchestrator.base import (
    CAP_IMAGE_BUILDER,
    CAP_INFERENCE,
    CAP_LEARNER,
    DEFAULT_CLUSTER,
    Node,
    Placement,
    ServiceHandle,
    ServiceRole,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
)
from flops_manager.orchestrator.container_hardening import (
    CONTAINER_UID,
    WRITABLE_DIRS,
    container_env,
    container_workdir,
    unprivileged,
)
from flops_manager.orchestrator.docker_base import (
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_PROJECT,
    DockerBackedOrchestrator,
)

log = logging.getLogger(__name__)

NODE_LABEL_PREFIX = "flops."
DATA_TAG_PREFIX = "flops.data-tag."
DATA_DIR_LABEL = "flops.data-dir"
CLUSTER_LABEL = "flops.cluster"
CAPABILITIES = (CAP_IMAGE_BUILDER, CAP_LEARNER, CAP_INFERENCE)
STOP_GRACE_NS = 10 * 10**9
# Task states after which the task's container has stopped for good.
_TERMINAL = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


def capability_label(capability: str) -> str:
    """The node label granting a capability (``flops.learner``)."""
    return f"{NODE_LABEL_PREFIX}{capability}"


def data_tag_label(tag: str) -> str:
    """The node label saying a node holds data under ``tag``."""
    return f"{DATA_TAG_PREFIX}{tag}"


def constraints(placement: Placement, node: Node | None) -> list[str]:
    """Swarm placement constraints for a FLOps placement, pinned to ``node`` when given."""
    result = []
    if placement.capability:
        result.append(f"node.labels.{capability_label(placement.capability)}==true")
    result += [f"node.labels.{data_tag_label(tag)}==true" for tag in placement.data_tags]
    if placement.cluster is not None:
        result.append(f"node.labels.{CLUSTER_LABEL}=={placement.cluster}")
    if node is not None:
        result.append(f"node.hostname=={node.name}")
    return result


def node_from_swarm(attrs: dict[str, Any], default_data_root: Path) -> Node:
    """A FLOps node from a Swarm node's attributes (labels give capabilities, tags and data dir; a node
    Swarm does not see as ready is ``down``)."""
    hostname = attrs["Description"]["Hostname"]
    labels: dict[str, str] = attrs.get("Spec", {}).get("Labels") or {}
    caps = [c for c in CAPABILITIES if labels.get(capability_label(c)) == "true"]
    tags = sorted(
        k.removeprefix(DATA_TAG_PREFIX) for k, v in labels.items() if k.startswith(DATA_TAG_PREFIX) and v == "true"
    )
    data_dir = labels.get(DATA_DIR_LABEL) or str(default_data_root / hostname / "data")
    cluster = labels.get(CLUSTER_LABEL) or DEFAULT_CLUSTER
    state: Literal["ready", "down"] = "ready" if attrs.get("Status", {}).get("State") == "ready" else "down"
    return Node(name=hostname, capabilities=caps, data_tags=tags, data_dir=data_dir, cluster=cluster, state=state)


def swarm_node_address(attrs: dict[str, Any]) -> str:
    """A Swarm node's address from its attributes: ``Status.Addr``, else its manager address, else loopback."""
    address = str(attrs.get("Status", {}).get("Addr") or "")
    if address in ("", "0.0.0.0"):
        address = str(attrs.get("ManagerStatus", {}).get("Addr") or "").rsplit(":", 1)[0]
    return address or "127.0.0.1"


def update_node_labels(
    client: Any, node: str, add: dict[str, str] | None = None, remove: list[str] | None = None
) -> dict[str, str]:
    """Add and remove labels of a Swarm node (id or hostname); return its labels."""
    swarm_node = client.nodes.get(node)
    spec = dict(swarm_node.attrs["Spec"])
    labels = dict(spec.get("Labels") or {})
    labels.update(add or {})
    for key in remove or []:
        labels.pop(key, None)
    spec["Labels"] = labels
    swarm_node.update(spec)
    return labels


def _latest_task(service: Any) -> dict[str, Any] | None:
    tasks = service.tasks()
    return max(tasks, key=lambda t: (t["Version"]["Index"], t.get("CreatedAt", ""))) if tasks else None


class SwarmOrchestrator(DockerBackedOrchestrator):
    """Swarm services with host networking, placed by node labels."""

    name = "swarm"
    _collection = "services"
    _id_key = "service"

    # nodes
    def nodes(self) -> list[Node]:
        """Active Swarm nodes with their FLOps labels, ready or down (only ready ones get services)."""
        result = []
        for swarm_node in self._client.nodes.list():
            attrs = swarm_node.attrs
            if attrs.get("Spec", {}).get("Availability") != "active":
                continue
            result.append(node_from_swarm(attrs, self._nodes_dir))
        return sorted(result, key=lambda n: n.name)

    def place(self, placement: Placement, count: int = 1) -> list[Node]:
        """Spread over the matching nodes; a Swarm node may hold several learners of a project."""
        return super().place(placement.model_copy(update={"exclusive": False}), count)

    def data_provided(self, node: str, data_tag: str) -> None:
        """Label the node as holding ``data_tag``."""
        update_node_labels(self._client, node, add={data_tag_label(data_tag): "true"})

    def _manager_node_id(self) -> str:
        return str(self._client.info()["Swarm"]["NodeID"])

    def aggregator_address(self) -> str:
        """The address the Swarm manager this backend talks to advertises (aggregators run there)."""
        address = str(self._client.info()["Swarm"].get("NodeAddr") or "")
        return address if address and address != "0.0.0.0" else "127.0.0.1"

    def node_address(self, node: Node) -> str:
        """The address Swarm knows ``node`` by (a hierarchical cluster aggregator listens there for the
        cluster's learners on other hosts); a manager node that reports 0.0.0.0 gives its advertised one."""
        attrs = self._client.nodes.get(node.name).attrs
        return swarm_node_address(attrs)

    # services
    def _secret(self, name: str, spec: ServiceSpec) -> list[SecretReference]:
        """The service's secrets as one Swarm secret (replacing one left by an earlier deployment)."""
        self._remove_secret(name)
        if not spec.secret_env:
            return []
        labels = {LABEL_MANAGED: "true", LABEL_INSTANCE: self._instance, LABEL_PROJECT: spec.project_id}
        secret = self._client.secrets.create(name=name, data=json.dumps(spec.secret_env).encode(), labels=labels)
        owner = str(CONTAINER_UID if unprivileged(spec) else 0)
        return [SecretReference(secret.id, name, filename=SECRET_ENV_FILE, uid=owner, gid=owner, mode=0o400)]

    def _remove_secret(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self._client.secrets.get(name).remove()

    def _pinned(self, image: str) -> str:
        """``image@sha256:…`` as its registry has it now (what ``docker service create`` does), for images
        of a registry: a node that already holds that digest starts the task without pulling again."""
        host = image.split("/", 1)[0] if "/" in image else ""
        if "@" in image or not (("." in host or ":" in host) or host == "localhost"):
            return image  # already pinned, or a local image no registry has (the builder's)
        try:
            digest = self._client.images.get_registry_data(image).id
        except DockerException as exc:
            log.warning("cannot resolve %s to a digest (nodes will pull it by tag): %s", image, exc)
            return image
        return f"{image}@{digest}"

    def _remove_stale(self, name: str) -> None:
        """A service of the same name left by an earlier deployment (e.g. a manager restart) is removed."""
        with contextlib.suppress(NotFound):
            self._client.services.get(name).remove()

    def deploy(self, spec: ServiceSpec, node: Node | None = None) -> ServiceHandle:
        """Create a one-replica service on the host network, constrained by labels (and ``node``)."""
        platform_role = spec.role in (ServiceRole.AGGREGATOR, ServiceRole.OBSERVER)
        if node is None and not platform_role:
            node = self.place(spec.placement)[0]
        name = self.engine_name(spec.project_id, spec.name)
        image = self._pinned(spec.image or self._service_image)
        binds, mount_env = self._binds(spec, node)
        mounts = [Mount(b.target, b.source, type="bind", read_only=b.read_only) for b in binds]
        confined = unprivileged(spec)
        if confined:
            mounts += [Mount(path, None, type="tmpfs") for path in WRITABLE_DIRS]
        placement = constraints(spec.placement, node)
        if platform_role:
            placement.append(f"node.id=={self._manager_node_id()}")
        node_name = node.name if node is not None else "manager"
        env = {**spec.env, **mount_env, **container_env(spec), "FLOPS_NODE": node_name}
        if spec.secret_env:
            env[SECRET_ENV_PATH] = f"/run/secrets/{SECRET_ENV_FILE}"
        resources = spec.resources
        self._remove_stale(name)
        service = self._client.services.create(
            image,
            command=list(spec.command),
            name=name,
            env=[f"{k}={v}" for k, v in env.items()],
            labels=self._labels(spec, node_name),
            container_labels=self._labels(spec, node_name),
            constraints=placement,
            mounts=mounts,
            networks=["host"],
            mode=ServiceMode("replicated", replicas=1),
            restart_policy=RestartPolicy(condition="none" if spec.one_shot else "on-failure", max_attempts=0),
            resources=Resources(
                cpu_limit=int(resources.vcpus * 1e9) if resources.vcpus else None,
                mem_limit=resources.memory * 2**20 if resources.memory else None,
            ),
            secrets=self._secret(name, spec),
            stop_grace_period=STOP_GRACE_NS,
            workdir=container_workdir(spec),
            init=True,
            # Swarm's API 1.41 (Docker 20.10) has no no-new-privileges or PID limit for services.
            user=f"{CONTAINER_UID}:{CONTAINER_UID}" if confined else None,
            read_only=confined,
            cap_drop=["ALL"] if confined else None,
        )
        info = {"service": service.id, "service_name": name, "image": image}
        return self._deployed(spec, node_name, info, record="swarm-service.json")

    def status(self, handle: ServiceHandle) -> ServiceStatus:
        """Running until its task ends (or cannot be scheduled); then the exit code; gone once removed."""
        service = self._engine_object(handle)
        if service is None:
            return ServiceStatus(state=ServiceState.GONE)
        task = _latest_task(service)
        if task is None:
            return ServiceStatus(state=ServiceState.RUNNING)  # not scheduled yet
        status = task.get("Status", {})
        state = status.get("State", "")
        if state in _TERMINAL or (state == "pending" and status.get("Err")):
            return ServiceStatus(state=ServiceState.EXITED, exit_code=status.get("ContainerStatus", {}).get("ExitCode"))
        down = self._down_node(task)
        if down is not None:  # its container went with the host; Swarm keeps the task's last state
            return ServiceStatus(state=ServiceState.EXITED, lost=f"host {down} is down")
        return ServiceStatus(state=ServiceState.RUNNING)

    def _down_node(self, task: dict[str, Any]) -> str | None:
        """The hostname of the task's node if Swarm sees that node as down (not ready), else None."""
        if not task.get("NodeID"):
            return None
        try:
            attrs = self._client.nodes.get(task["NodeID"]).attrs
        except NotFound:
            return "(removed node)"
        if attrs.get("Status", {}).get("State") == "ready":
            return None
        return str(attrs.get("Description", {}).get("Hostname", task["NodeID"]))

    def logs(self, handle: ServiceHandle, tail: int | None = None) -> str:
        """The service's output; for a task on a down host only what was saved (its engine cannot answer)."""
        service = self._engine_object(handle)
        task = _latest_task(service) if service is not None else None
        down = self._down_node(task) if task is not None else None
        if down is not None:
            return self._saved_logs(handle, tail) + f"\nswarm: host {down} is down; its output is lost with it"
        return super().logs(handle, tail)

    def _engine_note(self, found: Any) -> str:
        """Swarm's word on the service's task if it failed."""
        task = _latest_task(found)
        if task is not None and task.get("Status", {}).get("Err"):
            return f"\nswarm: task {task['Status']['State']}: {task['Status']['Err']}"
        return ""

    def undeploy(self, handle: ServiceHandle) -> None:
        """Save the output, remove the service (Swarm stops its container) and its secret; idempotent."""
        service = self._engine_object(handle)
        if service is not None:
            with contextlib.suppress(APIError, OSError):
                self._save_output(handle, self.logs(handle).encode())
            with contextlib.suppress(NotFound):
                service.remove()
        self._remove_secret(handle.info.get("service_name", ""))

    def list_services(self, project_id: str | None = None) -> list[ServiceHandle]:
        """Swarm services of this manager (of one project when given), from their labels."""
        try:
            services = self._client.services.list(filters={"label": self._label_filters(project_id)})
        except DockerException as exc:
            log.warning("listing services failed: %s", exc)
            return []
        return [
            self._listed(service.attrs["Spec"].get("Labels", {}), {"service": service.id, "service_name": service.name})
            for service in services
        ]
