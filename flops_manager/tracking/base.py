"""The tracking boundary: where training is tracked and how users reach it."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Tracking(ABC):
    """One backend per module; callers only see this interface."""

    @property
    @abstractmethod
    def tracking_uri(self) -> str:
        """What the aggregator logs to."""

    @property
    @abstractmethod
    def ui_url(self) -> str:
        """What users open in a browser."""

    @abstractmethod
    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The browser link of one run."""

    @abstractmethod
    def healthy(self) -> bool:
        """Whether the tracking server answers."""
