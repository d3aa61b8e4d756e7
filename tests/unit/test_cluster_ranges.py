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
