"""The base classes the addon's ML repos subclass: the ML repo contract as abstract methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class DataManagerTemplate(ABC):
    """Prepares this node's data (typically from ``load_dataset()``) and hands it to the ModelManager."""

    @abstractmethod
    def _prepare_data(self) -> Any:
        """Load the node's data (``flops_utils.ml_repo_building_blocks.load_dataset``) and preprocess it."""

    @abstractmethod
    def get_data(self) -> tuple[Any, Any]:
        """The prepared ``(training data, test data)``."""


class ModelManagerTemplate(ABC):
    """The model side of the contract; ``ModelManager()`` must need no data (the aggregator has none)."""

    @abstractmethod
    def set_model_data(self) -> None:
        """Get the data from the DataManager (called by learners only, never in ``__init__``)."""

    @abstractmethod
    def get_model(self) -> Any:
        """The managed model."""

    @abstractmethod
    def get_model_parameters(self) -> Any:
        """The model parameters as a list of numpy arrays."""

    @abstractmethod
    def set_model_parameters(self, parameters: Any) -> None:
        """Replace the model parameters."""

    @abstractmethod
    def fit_model(self) -> int:
        """Train on the local data; return the number of training samples."""

    @abstractmethod
    def evaluate_model(self) -> tuple[Any, Any, int]:
        """``(loss, accuracy, number of test samples)`` on the local data."""
