"""Virtual nodes from configuration, for backends that run every service on this machine (local, docker).

``builder-<i>`` nodes have the image-builder capability, ``learner-<i>`` nodes the learner capability. A node
is a folder ``nodes/<name>/data/<tag>/``: it holds a data tag when that folder has files.
"""

from __future__ import annotations

from pathlib import Path

from flops_manager.orchestrator.base import CAP_IMAGE_BUILDER, CAP_LEARNER, Node


class VirtualNodes:
    """The configured nodes and their data folders."""

    def __init__(self, nodes_dir: Path, learner_nodes: int, builder_nodes: int) -> None:
        self._nodes_dir = nodes_dir
        self._caps: dict[str, list[str]] = {f"builder-{i}": [CAP_IMAGE_BUILDER] for i in range(builder_nodes)}
        self._caps |= {f"learner-{i}": [CAP_LEARNER] for i in range(learner_nodes)}

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
            result.append(Node(name=name, capabilities=caps, data_tags=tags, data_dir=str(data_dir)))
        return result
