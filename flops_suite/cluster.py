"""A Docker Swarm of several hosts on one machine: network namespaces as hosts, one dockerd each.

What a real multi-host swarm has, made locally so that it can be tested:

* host 0 (``flc-h0``, the Swarm manager and image builder) is the root network namespace, as the platform
  host: its address is the bridge's, 169.254.100.1, where the FLOps suite (broker, MLflow, registry,
  manager) listens. It must be: a builder needs the Internet (PyPI), and only the root namespace has it
  here (routing the namespaces out would need NAT, which this machine's network rule forbids);
* every other host is a network namespace (``flc-h<i>``) joined by a veth pair to the Linux bridge
  ``flc-br`` in the root namespace, which stands in for the LAN;
* each engine has its own UTS namespace (its own hostname, which is what Swarm names the node) and a
  private mount namespace, in which the host's own ``etc-docker`` directory is bind-mounted over
  ``/etc/docker`` (its ``certs.d`` trusts the registry's CA);
* every address is link-local (``169.254.100.0/24`` for the hosts, ``169.254.101+i.0/24`` for host i's
  ``docker_gwbridge`` (Linux name ``flc-gw<i>``: a one-node swarm's ``docker_gwbridge`` may live in the root
  namespace too), ``169.254.208.0/20`` for Swarm's pool and ``169.254.160.0/20`` for an engine's
  default pool), outside the one-node swarm's 169.254.240.0/20 and 169.254.250.0/24;
* one dockerd per host, in a namespace host through ``nsenter --net=/var/run/netns/<host>`` (not
  ``ip netns exec``: it remounts /sys and dockerd fails), without bridge, iptables or masquerading;
  host 0 initialises the swarm (label ``flops.image-builder``), the others join as workers
  (``flops.learner``, ``flops.data-dir``).

Everything made is recorded in ``STATE/cluster.json`` (namespaces, links, PIDs) as soon as it exists,
and ``stop`` removes exactly that, then compares ``ip -br addr`` with what it was before ``start``.

``python -m flops_suite.cluster start N|add|kill-engine|stop|status`` is what
``deploy/start-swarm-cluster.sh`` and ``deploy/stop-swarm-cluster.sh`` run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import httpx
from pydantic import BaseModel, Field

from flops_suite.processes import pid_alive, terminate

HOSTS_NETWORK = ipaddress.ip_network("169.254.100.0/24")
PLATFORM_ADDRESS = "169.254.100.1"  # the bridge's address in the root namespace: where the suite listens
HOST_ADDRESS_OFFSET = 10  # host i is 169.254.100.(10 + i)
MAX_HOSTS = 16
SWARM_ADDRESS_POOL = "169.254.208.0/20"
ENGINE_ADDRESS_POOL_BASE = "169.254.160.0/20"
ENGINE_ADDRESS_POOL = f"base={ENGINE_ADDRESS_POOL_BASE},size=24"
SWARM_PORT = 2377
BRIDGE = "flc-br"
LINK_PREFIX = "flc-"  # every link the cluster makes: flc-br, flc-h<i> (veth), flc-gw<i> (gwbridge)
NAME_PREFIX = "flc-h"
MANAGER_LABELS = {"flops.image-builder": "true"}
WORKER_LABELS = {"flops.learner": "true"}
DATA_DIR_LABEL = "flops.data-dir"
GWBRIDGE = "docker_gwbridge"


def default_state_dir() -> Path:
    """``$FLOPS_HOME/cluster`` (``var/cluster`` by default)."""
    return Path(os.environ.get("FLOPS_HOME", "var")).resolve() / "cluster"


def ip_brief_addr() -> list[str]:
    """``ip -br addr`` of the root namespace, one line per interface, spacing normalised."""
    out = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    return [" ".join(line.split()) for line in out.splitlines() if line.strip()]


def _cluster_range(address: str) -> bool:
    """Whether an address (``a.b.c.d/len``) is in a range the cluster uses: hosts, gwbridges, pools."""
    try:
        ip = ipaddress.ip_interface(address).ip
    except ValueError:
        return False
    ranges = [HOSTS_NETWORK, ipaddress.ip_network(SWARM_ADDRESS_POOL), ipaddress.ip_network(ENGINE_ADDRESS_POOL_BASE)]
    ranges += [ipaddress.ip_network(gwbridge_subnet(index)) for index in range(MAX_HOSTS)]
    return any(ip in network for network in ranges)


def cluster_leftovers(before: list[str], now: list[str] | None = None) -> list[str]:
    """Lines of ``ip -br addr`` (``now``, default: the current one) not in ``before`` that a cluster makes:
    an ``flc-`` link or an address in the cluster's ranges. Other new lines belong to someone else on this
    machine (e.g. a one-node swarm's ``docker_gwbridge`` on 169.254.250.0/24) and are not the cluster's."""
    current = ip_brief_addr() if now is None else now
    new = sorted(set(current) - set(before))
    return [line for line in new if line.startswith(LINK_PREFIX) or any(map(_cluster_range, line.split()))]


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")


def gwbridge_subnet(index: int) -> str:
    """Host ``index``'s ``docker_gwbridge`` subnet: 169.254.(101 + index).0/24."""
    return f"169.254.{101 + index}.0/24"


class ClusterHost(BaseModel):
    """One host: its namespace, link, address, engine state dir and engine PID."""

    index: int
    name: str  # namespace, hostname and Swarm node name
    address: str
    state_dir: str
    link: str | None = None  # root-side veth end (the host side goes with the namespace)
    netns: bool = False  # whether we created the namespace (host 0 lives in the root namespace)
    gwbridge: str | None = None  # Linux name of its docker_gwbridge once created
    pid: int | None = None  # the dockerd

    @property
    def socket(self) -> Path:
        """The engine's API socket."""
        return Path(self.state_dir) / "docker.sock"

    @property
    def docker_host(self) -> str:
        """The ``DOCKER_HOST`` of its engine."""
        return f"unix://{self.socket}"

    @property
    def data_dir(self) -> Path:
        """Where this host's FL data lives (label ``flops.data-dir``)."""
        return Path(self.state_dir) / "data"

    @property
    def etc_docker(self) -> Path:
        """What its engine sees as ``/etc/docker`` (``certs.d`` with the registry CA, its key)."""
        return Path(self.state_dir) / "etc-docker"


class ClusterState(BaseModel):
    """What ``start`` made (written as it goes, so that ``stop`` can undo a half-made cluster)."""

    state_dir: str
    bridge: str | None = None
    bridge_address: str = f"{PLATFORM_ADDRESS}/{HOSTS_NETWORK.prefixlen}"
    hosts: list[ClusterHost] = Field(default_factory=list)
    ip_addr_before: list[str] = Field(default_factory=list)
    registry_ca: str | None = None  # PEM file installed in every engine's certs.d
    registry: str | None = None  # host:port it is trusted for

    @property
    def file(self) -> Path:
        """Where this state is kept."""
        return Path(self.state_dir) / "cluster.json"

    def save(self) -> None:
        """Write the state (after each thing made)."""
        self.file.write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> ClusterState | None:
        """The recorded state, if any."""
        path = state_dir / "cluster.json"
        return cls.model_validate_json(path.read_text()) if path.is_file() else None

    @property
    def manager(self) -> ClusterHost:
        """Host 0, the Swarm manager."""
        return self.hosts[0]


def _engine_command(host: ClusterHost) -> list[str]:
    """dockerd inside the host's namespaces: own hostname, own ``/etc/docker``, no bridge, no iptables."""
    state = Path(host.state_dir)
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    # sh runs in the new UTS and mount namespaces: set the hostname, mount this host's /etc/docker, exec dockerd.
    script = 'hostname "$0" && mount --bind "$1" /etc/docker && shift && exec "$@"'
    enter = ["nsenter", f"--net=/var/run/netns/{host.name}"] if host.netns else []
    return [
        *enter,
        "unshare",
        "--uts",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        host.name,
        str(host.etc_docker),
        dockerd,
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--ip6tables=false",
        "--ip-forward=false",
        f"--default-address-pool={ENGINE_ADDRESS_POOL}",
        f"--data-root={state / 'data-root'}",
        f"--exec-root=/tmp/{host.name}-{_tag(state)}",
        f"--pidfile={state / 'dockerd.daemon.pid'}",
        f"--host={host.docker_host}",
        "--log-driver=json-file",
        "--log-opt=max-size=20m",
        "--shutdown-timeout=5",
    ]


def _tag(state: Path) -> str:
    """A short tag of the state dir (the exec root's socket paths must stay short)."""

    return hashlib.sha256(str(state).encode()).hexdigest()[:8]


def _ping(host: ClusterHost) -> bool:
    if not host.socket.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(host.socket)), timeout=2) as client:
            return client.get("http://docker/_ping").status_code == 200
    except httpx.HTTPError:
        return False


def _client(host: ClusterHost) -> Any:
    return docker.DockerClient(base_url=host.docker_host, timeout=60)


def install_registry_ca(host: ClusterHost, registry: str, ca_file: Path) -> None:
    """Trust ``ca_file`` for ``registry`` on the host's engine (``/etc/docker/certs.d/<registry>/ca.crt``)."""
    target = host.etc_docker / "certs.d" / registry
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_file, target / "ca.crt")


def trust_registry(state_dir: Path, registry: str, ca_file: Path) -> list[str]:
    """Install a registry's CA on every host's engine (read at each pull) and for hosts added later."""
    state = ClusterState.load(state_dir.resolve())
    if state is None:
        raise RuntimeError(f"no cluster recorded in {state_dir}")
    state.registry, state.registry_ca = registry, str(ca_file.resolve())
    state.save()
    for host in state.hosts:
        install_registry_ca(host, registry, ca_file)
    return [h.name for h in state.hosts]


def _create_host(state: ClusterState, index: int) -> ClusterHost:
    """Namespace, veth pair into the bridge, address; recorded step by step (host 0: the root namespace)."""
    name = f"{NAME_PREFIX}{index}"
    address = PLATFORM_ADDRESS if index == 0 else str(HOSTS_NETWORK.network_address + HOST_ADDRESS_OFFSET + index)
    host = ClusterHost(index=index, name=name, address=address, state_dir=str(Path(state.state_dir) / name))
    for path in (Path(host.state_dir), host.data_dir, host.etc_docker / "certs.d"):
        path.mkdir(parents=True, exist_ok=True)
    state.hosts.append(host)
    if index == 0:
        state.save()
        return host
    _ip("netns", "add", name)
    host.netns = True
    state.save()
    peer = f"{name}p"
    _ip("link", "add", name, "type", "veth", "peer", "name", peer)
    host.link = name
    state.save()
    _ip("link", "set", peer, "netns", name)
    _ip("link", "set", name, "master", BRIDGE)
    _ip("link", "set", name, "up")
    _ip("addr", "add", f"{address}/{HOSTS_NETWORK.prefixlen}", "dev", peer, netns=name)
    _ip("link", "set", peer, "up", netns=name)
    _ip("link", "set", "lo", "up", netns=name)
    return host


def _start_engine(state: ClusterState, host: ClusterHost, timeout_s: float = 60.0) -> None:
    """Start the host's dockerd (recording its PID) and wait until it answers."""
    if state.registry and state.registry_ca:
        install_registry_ca(host, state.registry, Path(state.registry_ca))
    Path(host.state_dir, "dockerd.daemon.pid").unlink(missing_ok=True)
    host.socket.unlink(missing_ok=True)
    with open(Path(host.state_dir) / "dockerd.log", "ab") as log:
        proc = subprocess.Popen(
            _engine_command(host), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    host.pid = proc.pid  # nsenter, unshare and sh exec: this PID becomes dockerd's
    state.save()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (Path(host.state_dir) / "dockerd.log").read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"dockerd of {host.name} exited with {proc.returncode}: {' | '.join(tail)}")
        if _ping(host):
            return
        time.sleep(0.2)
    raise RuntimeError(f"dockerd of {host.name} did not answer within {timeout_s:.0f} s")


def _ensure_gwbridge(state: ClusterState, client: Any, host: ClusterHost) -> None:
    """The host's ``docker_gwbridge`` on its own link-local /24 (Swarm would pick a private range)."""
    with contextlib.suppress(docker.errors.NotFound):
        client.networks.get(GWBRIDGE)
        return
    subnet = ipaddress.ip_network(gwbridge_subnet(host.index))
    host.gwbridge = f"flc-gw{host.index}"
    state.save()
    client.networks.create(
        GWBRIDGE,
        driver="bridge",
        ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet.network_address + 1))]
        ),
        options={
            "com.docker.network.bridge.name": host.gwbridge,
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "false",
        },
    )


def _label(manager: Any, node_name: str, labels: dict[str, str]) -> None:
    from flops_manager.orchestrator.swarm import update_node_labels

    deadline = time.monotonic() + 30
    while True:
        try:
            update_node_labels(manager, node_name, add=labels)
            return
        except docker.errors.APIError:  # a node just joined: its name may need a moment to resolve
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _join_worker(state: ClusterState, host: ClusterHost) -> None:
    """Gateway bridge, join as a worker, label as a learner with its data dir."""
    manager = _client(state.manager)
    worker = _client(host)
    try:
        _ensure_gwbridge(state, worker, host)
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        worker.swarm.join(
            remote_addrs=[f"{state.manager.address}:{SWARM_PORT}"],
            join_token=token,
            listen_addr=f"{host.address}:{SWARM_PORT}",
            advertise_addr=host.address,
        )
        _label(manager, host.name, {**WORKER_LABELS, DATA_DIR_LABEL: str(host.data_dir)})
    finally:
        worker.close()
        manager.close()


def start(count: int, state_dir: Path, registry: str | None = None, registry_ca: Path | None = None) -> ClusterState:
    """Make the bridge, ``count`` hosts and their engines; host 0 inits the swarm, the others join."""
    if count < 1:
        raise ValueError("a cluster needs at least one host")
    if count > MAX_HOSTS:
        raise ValueError(f"at most {MAX_HOSTS} hosts (each has a /24 for its docker_gwbridge)")
    state_dir = state_dir.resolve()
    if ClusterState.load(state_dir) is not None:
        raise RuntimeError(f"a cluster is recorded in {state_dir}: stop it first (deploy/stop-swarm-cluster.sh)")
    state_dir.mkdir(parents=True, exist_ok=True)
    state = ClusterState(state_dir=str(state_dir), ip_addr_before=ip_brief_addr())
    if registry_ca is not None and registry:
        state.registry, state.registry_ca = registry, str(registry_ca.resolve())
    state.save()
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        state.bridge = BRIDGE
        state.save()
        _ip("addr", "add", state.bridge_address, "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for index in range(count):
            _create_host(state, index)
        for host in state.hosts:
            _start_engine(state, host)
        manager = _client(state.manager)
        try:
            _ensure_gwbridge(state, manager, state.manager)
            manager.swarm.init(
                advertise_addr=state.manager.address,
                listen_addr=f"{state.manager.address}:{SWARM_PORT}",
                default_addr_pool=[SWARM_ADDRESS_POOL],
                subnet_size=24,
            )
            from flops_suite.swarm import remove_ingress

            remove_ingress(manager)
            _label(manager, state.manager.name, MANAGER_LABELS)
        finally:
            manager.close()
        for host in state.hosts[1:]:
            _join_worker(state, host)
    except BaseException:
        stop(state_dir)
        raise
    return state


def add_host(state_dir: Path) -> ClusterHost:
    """One more worker host, joined and labelled like the others."""
    state = ClusterState.load(state_dir.resolve())
    if state is None:
        raise RuntimeError(f"no cluster recorded in {state_dir}")
    host = _create_host(state, max(h.index for h in state.hosts) + 1)
    _start_engine(state, host)
    _join_worker(state, host)
    return host


def kill_engine(state_dir: Path, name: str) -> int:
    """SIGKILL a host's dockerd and everything it started (containerd, shims, containers) by its PIDs.

    What a host that loses power looks like to the others: its engine, and its containers, are gone.
    """
    state = ClusterState.load(state_dir.resolve())
    host = next((h for h in (state.hosts if state else []) if h.name == name), None)
    if host is None or host.pid is None or not host.netns:
        raise RuntimeError(f"no running worker host {name!r} recorded in {state_dir}")
    pid = host.pid
    for victim in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    for victim in _processes_in_netns(name):  # containers' processes re-parented away from the engine
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return pid


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _processes_in_netns(name: str) -> list[int]:
    """PIDs of processes inside the named network namespace."""
    done = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []


def _stop_engine(host: ClusterHost) -> None:
    if host.pid is None or not pid_alive(host.pid):
        return
    if _ping(host):
        client = _client(host)
        with contextlib.suppress(docker.errors.DockerException):
            client.swarm.leave(force=True)
        with contextlib.suppress(docker.errors.DockerException):  # dockerd leaves bridges behind when it stops
            client.networks.get(GWBRIDGE).remove()
        client.close()
    terminate(host.pid, grace_s=20, poll_s=0.2, group=False)
    if pid_alive(host.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.pid, signal.SIGKILL)


def stop(state_dir: Path) -> list[str]:
    """Stop every engine, then delete every namespace, link and bridge recorded; return what ``ip -br addr``
    shows now of the cluster's that it did not show before ``start`` (empty when all is undone)."""
    state = ClusterState.load(state_dir.resolve())
    if state is None:
        return []
    for host in reversed(state.hosts):
        _stop_engine(host)
        for victim in _processes_in_netns(host.name) if host.netns else []:  # what is left there, by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
    for host in reversed(state.hosts):
        if host.gwbridge and not host.netns and Path("/sys/class/net", host.gwbridge).exists():
            with contextlib.suppress(RuntimeError):
                _ip("link", "del", host.gwbridge)
        if host.link:
            with contextlib.suppress(RuntimeError):
                _ip("link", "del", host.link)
        if host.netns:
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", host.name)
        shutil.rmtree(f"/tmp/{host.name}-{_tag(Path(host.state_dir))}", ignore_errors=True)
    if state.bridge:
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", state.bridge)
    left = cluster_leftovers(state.ip_addr_before)
    state.file.rename(state.file.with_suffix(".stopped.json"))
    return left


def main(argv: list[str] | None = None) -> int:
    """Command line of ``deploy/start-swarm-cluster.sh`` and ``deploy/stop-swarm-cluster.sh``."""
    parser = argparse.ArgumentParser(prog="python -m flops_suite.cluster")
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $FLOPS_HOME/cluster")
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="make N hosts: a manager and N-1 workers")
    begin.add_argument("count", type=int)
    begin.add_argument("--registry", default=None, help="host:port of the registry the engines trust")
    begin.add_argument("--registry-ca", type=Path, default=None, help="its CA certificate (PEM)")
    commands.add_parser("add", help="one more worker host")
    trust = commands.add_parser("trust", help="every engine trusts a registry's CA (certs.d), hosts added later too")
    trust.add_argument("registry", help="host:port")
    trust.add_argument("ca", type=Path, help="its CA certificate (PEM)")
    kill = commands.add_parser("kill-engine", help="SIGKILL a host's engine and its containers")
    kill.add_argument("host")
    commands.add_parser("stop", help="remove everything start made")
    commands.add_parser("status", help="the recorded cluster")
    args = parser.parse_args(argv)
    state_dir = (args.state_dir or default_state_dir()).resolve()
    started = time.monotonic()
    if args.command == "start":
        state = start(args.count, state_dir, args.registry, args.registry_ca)
        print(f"{args.count} hosts in {time.monotonic() - started:.1f} s; platform address {PLATFORM_ADDRESS}")
        for host in state.hosts:
            print(f"  {host.name} {host.address} dockerd pid {host.pid} data {host.data_dir}")
        print(f"export DOCKER_HOST={state.manager.docker_host}")
    elif args.command == "add":
        host = add_host(state_dir)
        print(f"{host.name} {host.address} joined in {time.monotonic() - started:.1f} s")
    elif args.command == "trust":
        trusted = trust_registry(state_dir, args.registry, args.ca)
        print(f"{len(trusted)} engines trust {args.registry}: {', '.join(trusted)}")
    elif args.command == "kill-engine":
        print(f"killed dockerd pid {kill_engine(state_dir, args.host)} of {args.host}")
    elif args.command == "stop":
        left = stop(state_dir)
        if left:
            print("ip -br addr shows what it did not before: " + "; ".join(left), file=sys.stderr)
            return 1
        print("cluster removed; ip -br addr as before")
    else:
        recorded = ClusterState.load(state_dir)
        print(recorded.model_dump_json(indent=2) if recorded else "no cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
