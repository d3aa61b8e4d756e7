"""The mock data provider writes each dataset as scikit-learn ships it, split over learner nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import datasets

from flops_manager.mock_data import BundledDataset, MockDataRequest, UnknownNodeError, provide
from flops_manager.orchestrator.base import CAP_LEARNER, Node


def _nodes(tmp_path: Path, count: int) -> list[Node]:
    return [
        Node(name=f"learner-{i}", capabilities=[CAP_LEARNER], data_dir=str(tmp_path / f"n{i}")) for i in range(count)
    ]


def _read(node: Node, tag: str) -> dict[str, np.ndarray]:
    with np.load(Path(node.data_dir or "") / tag / "part.npz") as npz:
        return {key: npz[key] for key in npz.files}


@pytest.mark.parametrize(
    ("dataset", "loader"), [(BundledDataset.DIGITS, datasets.load_digits), (BundledDataset.WINE, datasets.load_wine)]
)
def test_partitions_hold_the_shipped_values_and_dtypes(tmp_path: Path, dataset: BundledDataset, loader: object) -> None:
    nodes = _nodes(tmp_path, 2)
    result = provide(MockDataRequest(data_tag="t", dataset=dataset), nodes)
    shipped = loader()  # type: ignore[operator]
    parts = [_read(node, "t") for node in nodes]
    x = np.concatenate([p[k] for p in parts for k in ("x_train", "x_test")])
    y = np.concatenate([p[k] for p in parts for k in ("y_train", "y_test")])
    assert x.dtype == shipped.data.dtype and y.dtype == shipped.target.dtype
    # Same rows, reordered: every shipped row is there once, unscaled.
    assert sorted(map(tuple, x)) == sorted(map(tuple, shipped.data))
    assert x.max() == shipped.data.max()
    assert sum(p.train_samples + p.test_samples for p in result.partitions) == len(shipped.target)


def test_number_of_partitions_picks_that_many_learner_nodes(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, 3)
    result = provide(MockDataRequest(data_tag="t", partitions=2), nodes)
    assert [p.node for p in result.partitions] == ["learner-0", "learner-1"]
    assert not (tmp_path / "n2" / "t").exists()


def test_more_partitions_than_learner_nodes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownNodeError, match="3 partitions need as many learner nodes; there are 2"):
        provide(MockDataRequest(data_tag="t", partitions=3), _nodes(tmp_path, 2))
