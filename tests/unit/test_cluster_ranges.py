"""The test cluster's addresses are link-local and clear of the one-node swarm's ranges."""

from __future__ import annotations

import ipaddress

from flops_suite import cluster, swarm


def test_cluster_ranges_are_link_local_and_clear_of_the_one_node_swarm() -> None:
    link_local = ipaddress.IPv4Network("169.254.0.0/16")
    taken = [ipaddress.IPv4Network(swarm.ADDRESS_POOL), ipaddress.IPv4Network(swarm.GWBRIDGE_SUBNET)]
    ranges = [
        ipaddress.IPv4Network(str(cluster.HOSTS_NETWORK)),
        ipaddress.IPv4Network(cluster.SWARM_ADDRESS_POOL),
        ipaddress.IPv4Network(cluster.ENGINE_ADDRESS_POOL_BASE),
        *(ipaddress.IPv4Network(cluster.gwbridge_subnet(i)) for i in range(16)),
    ]
    for network in ranges:
        assert network.subnet_of(link_local), network
        assert not any(network.overlaps(t) for t in taken), network
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])


def test_leftovers_are_the_clusters_own_links_and_ranges_only() -> None:
    before = ["lo UNKNOWN 127.0.0.1/8 ::1/128", "eth0 UP 192.0.2.2/24"]
    now = [
        *before,
        "docker_gwbridge DOWN 169.254.250.1/24 fe80::42:ff:feb8:702/64",  # another agent's one-node swarm
        "flc-h1@if207 UP fe80::74dd:dff:fec6:8a16/64",
        "flc-gw0 DOWN 169.254.101.1/24",
        "br-x DOWN 169.254.209.1/24",  # in the cluster's Swarm pool
    ]
    assert cluster.cluster_leftovers(before, now) == [
        "br-x DOWN 169.254.209.1/24",
        "flc-gw0 DOWN 169.254.101.1/24",
        "flc-h1@if207 UP fe80::74dd:dff:fec6:8a16/64",
    ]
    assert cluster.cluster_leftovers(before, [*before, now[2]]) == []
