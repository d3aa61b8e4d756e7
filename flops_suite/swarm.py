"""A one-node Docker Swarm on loopback, made and unmade without any private-range bridge.

Swarm normally creates ``docker_gwbridge`` and the ``ingress`` overlay on 172.x/10.x ranges. Here:

* ``docker_gwbridge`` is created first, on 169.254.250.0/24, without masquerading or inter-container traffic;
* the swarm advertises and listens on 127.0.0.1 and allocates from a link-local address pool;
* ``ingress`` is removed at once (FLOps services use the host network, never the routing mesh).

``python -m flops_suite.swarm init|leave|label|status`` is what ``deploy/start-swarm.sh``,
``deploy/stop-swarm.sh`` and ``deploy/label-swarm-node.sh`` run, against ``DOCKER_HOST`` (or
``--docker-host``; the engine of ``deploy/start-docker.sh`` by default).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from typing import Any

import docker
from docker.errors import APIError, NotFound

from flops_manager.orchestrator.swarm import update_node_labels
from flops_suite.docker_engine import default_state_dir

GWBRIDGE = "docker_gwbridge"
GWBRIDGE_SUBNET = "169.254.250.0/24"
GWBRIDGE_GATEWAY = "169.254.250.1"
ADDRESS_POOL = "169.254.240.0/20"
DEFAULT_LISTEN_PORT = 2377


def ensure_gwbridge(client: Any) -> None:
    """Create ``docker_gwbridge`` on a link-local subnet unless it exists (Swarm would pick 172.x)."""
    with contextlib.suppress(NotFound):
        client.networks.get(GWBRIDGE)
        return
    client.networks.create(
        GWBRIDGE,
        driver="bridge",
        ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=GWBRIDGE_SUBNET, gateway=GWBRIDGE_GATEWAY)]
        ),
        options={
            "com.docker.network.bridge.name": GWBRIDGE,
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "false",
        },
    )


def remove_ingress(client: Any, timeout_s: float = 15.0) -> None:
    """Remove the routing-mesh network (it can take a moment to appear after init)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.networks.get("ingress").remove()
            return
        except NotFound:
            time.sleep(0.2)
        except APIError:
            time.sleep(0.5)  # still being set up


def in_swarm(client: Any) -> bool:
    """Whether this engine is an active swarm node."""
    return str(client.info().get("Swarm", {}).get("LocalNodeState")) == "active"


def init(client: Any, listen_port: int = DEFAULT_LISTEN_PORT, labels: dict[str, str] | None = None) -> str:
    """Make this engine a one-node swarm on 127.0.0.1 and label its node; return the node id."""
    ensure_gwbridge(client)
    if not in_swarm(client):
        client.swarm.init(
            advertise_addr="127.0.0.1",
            listen_addr=f"127.0.0.1:{listen_port}",
            default_addr_pool=[ADDRESS_POOL],
            subnet_size=24,
        )
    remove_ingress(client)
    node_id = str(client.info()["Swarm"]["NodeID"])
    if labels:
        update_node_labels(client, node_id, add=labels)
    return node_id


def leave(client: Any) -> None:
    """Leave the swarm (removing its services) and remove ``docker_gwbridge``; idempotent."""
    if in_swarm(client):
        client.swarm.leave(force=True)
    with contextlib.suppress(NotFound):
        client.networks.get(GWBRIDGE).remove()


def _client(docker_host: str | None) -> Any:
    host = docker_host or os.environ.get("DOCKER_HOST") or f"unix://{default_state_dir() / 'docker.sock'}"
    return docker.DockerClient(base_url=host, timeout=60)


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        pairs[key] = val if sep else "true"
    return pairs


def main(argv: list[str] | None = None) -> int:
    """Command line of the deploy scripts."""
    parser = argparse.ArgumentParser(prog="python -m flops_suite.swarm")
    parser.add_argument("--docker-host", help="engine URL (default: DOCKER_HOST, else the deploy/ engine)")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("init", help="make the engine a one-node swarm on 127.0.0.1")
    start.add_argument("--listen-port", type=int, default=DEFAULT_LISTEN_PORT)
    start.add_argument("--label", action="append", default=[], help="node label KEY[=VALUE] (repeatable)")
    commands.add_parser("leave", help="leave the swarm and remove docker_gwbridge")
    relabel = commands.add_parser("label", help="add or remove labels of a node")
    relabel.add_argument("node", help="node id or hostname ('self': this engine's node)")
    relabel.add_argument("--add", action="append", default=[], help="KEY[=VALUE] (repeatable)")
    relabel.add_argument("--remove", action="append", default=[], help="KEY (repeatable)")
    commands.add_parser("status", help="the nodes and their labels")
    args = parser.parse_args(argv)
    client = _client(args.docker_host)
    try:
        if args.command == "init":
            node_id = init(client, args.listen_port, _pairs(args.label))
            print(f"one-node swarm on 127.0.0.1:{args.listen_port}, node {node_id}")
        elif args.command == "leave":
            leave(client)
            print("left the swarm; docker_gwbridge removed")
        elif args.command == "label":
            node = client.info()["Swarm"]["NodeID"] if args.node == "self" else args.node
            print(json.dumps(update_node_labels(client, node, _pairs(args.add), args.remove), sort_keys=True))
        else:
            nodes = (
                [
                    {"hostname": n.attrs["Description"]["Hostname"], "labels": n.attrs["Spec"].get("Labels", {})}
                    for n in client.nodes.list()
                ]
                if in_swarm(client)
                else []
            )
            print(json.dumps({"swarm": in_swarm(client), "nodes": nodes}, indent=2))
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
