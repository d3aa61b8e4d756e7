"""Mock data providers: partition a dataset bundled with scikit-learn across learner nodes.

The data is the dataset as scikit-learn ships it: the same values and dtypes (digits are 0..16 float64,
labels int64). Datasets that would need a download (the addon's ``mnist``, ``cifar10``) are refused
with the list of those available offline: other data is never served under a real dataset's name.
"""

from __future__ import annotations

import os
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flops_manager.orchestrator.base import CAP_LEARNER, Node


class BundledDataset(StrEnum):
    """Datasets that ship inside scikit-learn (no download)."""

    DIGITS = "digits"
    IRIS = "iris"
    BREAST_CANCER = "breast_cancer"
    WINE = "wine"


def offline_datasets() -> str:
    """The names of the datasets available offline, comma-separated."""
    return ", ".join(d.value for d in BundledDataset)


def _from_addon_shape(data: Any) -> Any:
    """The addon's ``{customerID, mock_data_configuration: {...}}`` as FLOps' request fields."""
    if not isinstance(data, dict) or "mock_data_configuration" not in data:
        return data
    rest = {k: v for k, v in data.items() if k not in ("mock_data_configuration", "customerID", "customer_id")}
    config = data["mock_data_configuration"]
    if not isinstance(config, dict):
        return data  # field validation reports the wrong type
    renamed = {"dataset_name": "dataset", "number_of_partitions": "partitions", "data_tag": "data_tag"}
    unknown = sorted(set(config) - set(renamed))
    if unknown:
        raise ValueError(f"mock_data_configuration has unknown fields {unknown}; it takes {sorted(renamed)}")
    return rest | {renamed[k]: v for k, v in config.items()}


class MockDataRequest(BaseModel):
    """Partition ``dataset`` over learner nodes under ``data_tag``.

    Also takes the addon's request, ``{customerID, mock_data_configuration: {dataset_name,
    number_of_partitions, data_tag}}``: ``number_of_partitions`` learner nodes each get one partition.
    """

    model_config = ConfigDict(extra="forbid")

    data_tag: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    dataset: BundledDataset = BundledDataset.DIGITS
    nodes: list[str] | None = Field(default=None, description="Learner nodes (default: all)")
    partitions: int | None = Field(
        default=None, ge=1, le=256, description="How many learner nodes get a partition (default: all)"
    )
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _addon_shape(cls, data: Any) -> Any:
        return _from_addon_shape(data)

    @field_validator("dataset", mode="before")
    @classmethod
    def _offline_only(cls, name: Any) -> Any:
        if isinstance(name, str) and name not in BundledDataset.__members__.values():
            raise ValueError(
                f"dataset {name!r} is not available offline here: it would have to be downloaded, and no "
                f"installed package ships its files. Available offline: {offline_datasets()}"
            )
        return name


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
    return np.asarray(bunch.data), np.asarray(bunch.target)  # as shipped: no scaling, no dtype change


def provide(request: MockDataRequest, nodes: list[Node]) -> MockDataResult:
    """Shuffle, split train/test, and give each learner node an equal disjoint share."""
    learners = [n for n in nodes if CAP_LEARNER in n.capabilities and n.data_dir]
    if request.nodes is not None:
        by_name = {n.name: n for n in learners}
        unknown = [name for name in request.nodes if name not in by_name]
        if unknown:
            raise UnknownNodeError(f"not learner nodes: {unknown}; learner nodes are {sorted(by_name)}")
        learners = [by_name[name] for name in request.nodes]
    if request.partitions is not None:
        if request.partitions > len(learners):
            raise UnknownNodeError(
                f"{request.partitions} partitions need as many learner nodes; there are {len(learners)}: "
                f"{sorted(n.name for n in learners)}"
            )
        learners = sorted(learners, key=lambda n: n.name)[: request.partitions]
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
