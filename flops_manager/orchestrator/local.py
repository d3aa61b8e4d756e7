"""``local`` backend: services are process groups on this machine, nodes are virtual.

Each node is a folder (``nodes/<name>/data/<tag>/``, ``virtual_nodes``): a node holds a data tag when that
folder has files. Each service gets its own working dir with ``output.log`` and, once it
ended, ``exit_code``; processes run in their own session so a manager restart neither kills
nor loses them, and undeploy ends the whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from flops_common.untrusted import UNTRUSTED_GID_ENV, UNTRUSTED_UID_ENV
from flops_manager.orchestrator.base import (
    Node,
    Orchestrator,
    ServiceHandle,
    ServiceRole,
    ServiceSpec,
    ServiceState,
    ServiceStatus,
)
from flops_manager.orchestrator.local_identity import ServiceIdentities, ServiceIdentity
from flops_manager.orchestrator.virtual_nodes import VirtualNodes

_WRAPPER = '"$@"; echo $? > "$FLOPS_EXIT_FILE"'
MARKER_ENV = "FLOPS_SERVICE_MARKER"
_INHERIT_BLOCKLIST = ("FLOPS_", "MLFLOW_", "AWS_SECRET", "PYTHONPATH", "VIRTUAL_ENV")
# CPU niceness of a role's processes: an observer only follows its project's events, yet its start
# (an interpreter importing paho and pydantic, ~0.65 s of CPU) is the largest CPU cost of a new
# project; at normal priority a burst of them starves the manager and the store on a small
# machine, and every API request waits on the run queue (bench/RESULTS.md, P7 POST).
ROLE_NICENESS: dict[ServiceRole, int] = {ServiceRole.OBSERVER: 10}


def _deprioritize_session(pid: int, niceness: int) -> None:
    """Raise the niceness of the autogroup of ``pid``'s session, where the kernel has autogroups.

    With ``kernel.sched_autogroup_enabled`` the scheduler first shares the CPU between sessions,
    and a service runs in a session of its own: a plain ``nice`` then only orders the service's
    own processes, and N busy services get N shares against the manager's one. The autogroup's
    niceness is what weighs against other sessions; it covers every process of the session,
    those started later too.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against reused PIDs), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def service_processes(marker: str) -> list[int]:
    """PIDs of live processes carrying ``FLOPS_SERVICE_MARKER=marker`` in their environment.

    Every process a service starts inherits the marker, even one that leaves the process group
    (Flower starts its SuperLink in a new session) or is re-parented after its parent died.
    """
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class LocalOrchestrator(Orchestrator):
    """Processes on this machine; virtual nodes from configuration."""

    name = "local"

    def __init__(
        self,
        nodes_dir: Path,
        services_dir: Path,
        learner_nodes: int,
        builder_nodes: int,
        identities: ServiceIdentities | None = None,
        clusters: int = 1,
    ) -> None:
        """``identities``: run every service as an unprivileged user of its own (the manager must be root);
        ``clusters``: the learner nodes are split into that many clusters (hierarchical mode)."""
        self._virtual_nodes = VirtualNodes(nodes_dir, learner_nodes, builder_nodes, clusters)
        self._services_dir = services_dir
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._identities = identities
        if identities is not None:
            identities.secure_home()

    def _identity(self, spec: ServiceSpec, node: Node, service_dir: Path) -> ServiceIdentity | None:
        """The unprivileged identity ``spec`` runs as, its working dir its own; None without isolation."""
        if self._identities is None:
            return None
        identity = self._identities.allocate()
        if spec.role is ServiceRole.LEARNER and node.data_dir:
            identity = self._identities.grant_data(identity, node.name, Path(node.data_dir), spec.placement.data_tags)
        self._identities.own_workdir(identity, service_dir)
        return identity

    def node_data_dir(self, node: str) -> Path:
        """The folder holding a node's data, one subfolder per data tag."""
        return self._virtual_nodes.data_dir(node)

    def nodes(self) -> list[Node]:
        """Virtual nodes; data tags are the non-empty tag folders under each node's data dir."""
        return self._virtual_nodes.nodes()

    def _service_dir(self, project_id: str, name: str) -> Path:
        return self._services_dir / project_id / name

    def deploy(self, spec: ServiceSpec, node: Node | None = None) -> ServiceHandle:
        """Start the service as a new process group in its own working dir."""
        node = node or self.place(spec.placement)[0]
        service_dir = self._service_dir(spec.project_id, spec.name)
        service_dir.mkdir(parents=True, exist_ok=True)
        exit_file = service_dir / "exit_code"
        exit_file.unlink(missing_ok=True)
        bin_dir = Path(spec.image) / "bin" if spec.image else Path(sys.executable).parent
        command = list(spec.command)
        if command and command[0] == "python":
            command[0] = str(bin_dir / "python")
        niceness = ROLE_NICENESS.get(spec.role, 0)
        if niceness:
            # ``nice`` execs the command: no preexec_fn, so Popen still spawns with vfork.
            command = ["nice", "-n", str(niceness), *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERIT_BLOCKLIST)}
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env |= spec.env | spec.secret_env
        env["FLOPS_EXIT_FILE"] = str(exit_file)
        marker = uuid.uuid4().hex
        env[MARKER_ENV] = marker
        env["FLOPS_NODE"] = node.name
        identity = self._identity(spec, node, service_dir)
        run_as: dict[str, Any] = {}
        if identity is not None and spec.role is ServiceRole.BUILDER:
            # The builder's own code writes the registry and uv's cache (its HOME stays the manager's);
            # the repo's code it runs (the import check) runs as this identity (``flops_common.untrusted``).
            env |= {UNTRUSTED_UID_ENV: str(identity.uid), UNTRUSTED_GID_ENV: str(identity.gid)}
        elif identity is not None:
            env |= {"HOME": str(service_dir), "TMPDIR": str(service_dir / "tmp"), "USER": f"flops-{identity.uid}"}
            run_as = {"user": identity.uid, "group": identity.gid, "extra_groups": list(identity.extra_groups)}
        with open(service_dir / "output.log", "ab") as log:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, "sh", *command],
                cwd=spec.workdir or service_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **run_as,
            )
        if niceness:
            _deprioritize_session(proc.pid, niceness)
        self._children[proc.pid] = proc
        handle = ServiceHandle(
            backend=self.name,
            service_id=f"{spec.project_id}/{spec.name}",
            name=spec.name,
            role=spec.role,
            node=node.name,
            info={"pid": proc.pid, "start_time": _start_time(proc.pid), "dir": str(service_dir), "marker": marker},
        )
        (service_dir / "service.json").write_text(handle.model_dump_json())
        return handle

    def _alive(self, handle: ServiceHandle) -> bool:
        pid = int(handle.info["pid"])
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            self._children.pop(pid, None)
            return False
        return _start_time(pid) is not None and _start_time(pid) == handle.info.get("start_time")

    def status(self, handle: ServiceHandle) -> ServiceStatus:
        """Running while its process lives; then the exit code the wrapper wrote."""
        if self._alive(handle):
            return ServiceStatus(state=ServiceState.RUNNING)
        exit_file = Path(handle.info["dir"]) / "exit_code"
        if not Path(handle.info["dir"]).exists():
            return ServiceStatus(state=ServiceState.GONE)
        try:
            code: int | None = int(exit_file.read_text().strip())
        except (OSError, ValueError):
            code = None  # killed before the wrapper could write it
        return ServiceStatus(state=ServiceState.EXITED, exit_code=code)

    def logs(self, handle: ServiceHandle, tail: int | None = None) -> str:
        """The service's combined stdout and stderr."""
        try:
            text = (Path(handle.info["dir"]) / "output.log").read_text(errors="replace")
        except OSError:
            return ""
        if tail is not None:
            return "\n".join(text.splitlines()[-tail:])
        return text

    def undeploy(self, handle: ServiceHandle) -> None:
        """SIGTERM every process of the service, SIGKILL what is left after a grace period."""
        pid = int(handle.info["pid"])
        marker = str(handle.info["marker"])
        if self._alive(handle):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        _signal_all(service_processes(marker), signal.SIGTERM)
        deadline = time.monotonic() + 8.0
        while service_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
            child = self._children.get(pid)
            if child is not None:
                child.poll()
        _signal_all(service_processes(marker), signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        marker_file = Path(handle.info["dir"]) / "undeployed"
        if marker_file.parent.exists():
            marker_file.touch()

    def list_services(self, project_id: str | None = None) -> list[ServiceHandle]:
        """Services not yet undeployed, read from their working dirs."""
        pattern = f"{project_id}/*/service.json" if project_id else "*/*/service.json"
        handles = []
        for path in self._services_dir.glob(pattern):
            if (path.parent / "undeployed").exists():
                continue
            handles.append(ServiceHandle.model_validate(json.loads(path.read_text())))
        return handles
