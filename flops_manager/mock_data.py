"""Mock data providers: partition a dataset bundled with scikit-learn across learner nodes."""

from __future__ import annotations

import os
import tempfile
import time
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from flops_manager.orchestrator.base import CAP_LEARNER, Node


class BundledDataset(StrEnum):
    """Datasets that ship inside scikit-learn (no download)."""

    DIGITS = "digits"
    IRIS = "iris"
    BREAST_CANCER = "breast_cancer"
    WINE = "wine"


class MockDataRequest(BaseModel):
    """Partition ``dataset`` over learner nodes under ``data_tag``."""

    data_tag: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    dataset: BundledDataset = BundledDataset.DIGITS
    nodes: list[str] | None = Field(default=None, description="Learner nodes (default: all)")
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0


class Partition(BaseModel):
    """What one node received."""

    node: str
    train_samples: int
    test_samples: int


class MockDataResult(BaseModel):
    """What the provider wrote."""

    data_tag: str
    dataset: BundledDataset
    partitions: list[Partition]
    created_at: float = Field(default_factory=time.time)


class UnknownNodeError(ValueError):
    """A requested node is not a learner node."""


def _load(dataset: BundledDataset) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {
        BundledDataset.DIGITS: datasets.load_digits,
        BundledDataset.IRIS: datasets.load_iris,
        BundledDataset.BREAST_CANCER: datasets.load_breast_cancer,
        BundledDataset.WINE: datasets.load_wine,
    }[dataset]
    bunch = loader()
    x = np.asarray(bunch.data, dtype=np.float32)
    if dataset is BundledDataset.DIGITS:
        x = x / 16.0
    return x, np.asarray(bunch.target, dtype=np.int64)


def provide(request: MockDataRequest, nodes: list[Node]) -> MockDataResult:
    """Shuffle, split train/test, and give each learner node an equal disjoint share."""
    learners = [n for n in nodes if CAP_LEARNER in n.capabilities and n.data_dir]
    if request.nodes is not None:
        by_name = {n.name: n for n in learners}
        unknown = [name for name in request.nodes if name not in by_name]
        if unknown:
            raise UnknownNodeError(f"not learner nodes: {unknown}; learner nodes are {sorted(by_name)}")
        learners = [by_name[name] for name in request.nodes]
    if not learners:
        raise UnknownNodeError("there are no learner nodes to give data to")
    x, y = _load(request.dataset)
    order = np.random.default_rng(request.seed).permutation(len(y))
    x, y = x[order], y[order]
    partitions = []
    for index, (xs, ys) in enumerate(
        zip(np.array_split(x, len(learners)), np.array_split(y, len(learners)), strict=True)
    ):
        n_test = max(1, int(len(ys) * request.test_fraction))
        node = learners[index]
        tag_dir = Path(node.data_dir or "") / request.data_tag
        tag_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tag_dir, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, x_train=xs[n_test:], y_train=ys[n_test:], x_test=xs[:n_test], y_test=ys[:n_test])
        os.replace(tmp, tag_dir / "part.npz")
        partitions.append(Partition(node=node.name, train_samples=len(ys) - n_test, test_samples=n_test))
    return MockDataResult(data_tag=request.data_tag, dataset=request.dataset, partitions=partitions)
