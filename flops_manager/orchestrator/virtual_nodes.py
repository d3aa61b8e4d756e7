"""Virtual nodes from configuration, for backends that run every service on this machine (local, docker).

``builder-<i>`` nodes have the image-builder capability, ``learner-<i>`` nodes the learner capability. A node
is a folder ``nodes/<name>/data/<tag>/``: it holds a data tag when that folder has files.

Clusters (hierarchical mode): the learner nodes are split in order into ``clusters`` groups of (nearly) equal
size, ``cluster-0`` first; builder nodes belong to ``cluster-0``.
"""

from __future__ import annotations

from pathlib import Path

from flops_manager.orchestrator.base import CAP_IMAGE_BUILDER, CAP_LEARNER, DEFAULT_CLUSTER, Node


def cluster_of_learner(index: int, learner_nodes: int, clusters: int) -> str:
    """The cluster of learner node ``index`` when ``learner_nodes`` are split in order into ``clusters``."""
    if learner_nodes <= 0:
        return DEFAULT_CLUSTER
    return f"cluster-{index * min(clusters, learner_nodes) // learner_nodes}"


class VirtualNodes:
    """The configured nodes, their clusters and their data folders."""

    def __init__(self, nodes_dir: Path, learner_nodes: int, builder_nodes: int, clusters: int = 1) -> None:
        self._nodes_dir = nodes_dir
        self._caps: dict[str, list[str]] = {f"builder-{i}": [CAP_IMAGE_BUILDER] for i in range(builder_nodes)}
        self._caps |= {f"learner-{i}": [CAP_LEARNER] for i in range(learner_nodes)}
        self._clusters = {f"learner-{i}": cluster_of_learner(i, learner_nodes, clusters) for i in range(learner_nodes)}

    def data_dir(self, node: str) -> Path:
        """The folder holding a node's data, one subfolder per data tag."""
        return self._nodes_dir / node / "data"

    def nodes(self) -> list[Node]:
        """Every node; its data tags are the non-empty tag folders under its data dir."""
        result = []
        for name, caps in self._caps.items():
            data_dir = self.data_dir(name)
            tags = (
                sorted(p.name for p in data_dir.iterdir() if p.is_dir() and any(p.iterdir()))
                if data_dir.is_dir()
                else []
            )
            cluster = self._clusters.get(name, DEFAULT_CLUSTER)
            result.append(Node(name=name, capabilities=caps, data_tags=tags, data_dir=str(data_dir), cluster=cluster))
        return result
