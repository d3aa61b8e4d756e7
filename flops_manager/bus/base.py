"""The bus boundary: publish events, receive every project's events."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from flops_common.events import Event

EventHandler = Callable[[Event], None]


class Bus(ABC):
    """One backend per module; callers only see this interface."""

    @abstractmethod
    def start(self, handler: EventHandler) -> None:
        """Connect and deliver every project event to ``handler`` (never on the network thread)."""

    @abstractmethod
    def publish(self, event: Event) -> None:
        """Publish an event so observers see it (QoS 1)."""

    @abstractmethod
    def publish_replay(self, project_id: str, events: list[Event]) -> None:
        """Hand a project's observer, in one message, the events stored before it listened."""

    @abstractmethod
    def stop(self) -> None:
        """Disconnect."""
