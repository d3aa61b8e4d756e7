"""Publishing the actors' events on the project's MQTT topic."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any

from flops_common.events import EventKind, Source, make_event
from flops_common.jobs import BusConfig
from flops_common.mqtt import EventPublisher
from flops_common.stages import Stage

log = logging.getLogger(__name__)


class EventReporter(AbstractContextManager["EventReporter"]):
    """Publishes events of one actor; without a bus it only logs them.

    A broker that is down must not break training: failures are logged, not raised.
    """

    def __init__(self, project_id: str, source: Source, stage: Stage, bus: BusConfig | None) -> None:
        self.project_id = project_id
        self.source = source
        self.stage = stage
        self._publisher = EventPublisher(bus) if bus is not None else None

    def publish(self, kind: EventKind, message: str = "", data: dict[str, Any] | None = None) -> bool:
        """Publish one event (QoS 1, waits for the broker's ack); ``False`` if it could not."""
        event = make_event(self.project_id, self.source, kind, message, stage=self.stage, **(data or {}))
        log.info("event %s: %s", kind.value, message)
        if self._publisher is None:
            return False
        try:
            self._publisher.publish(event)
        except Exception as exc:  # broker down, timeout: keep going, the exit code still tells
            log.error("could not publish %s event: %s", kind.value, exc)
            return False
        return True

    def close(self) -> None:
        """Disconnect from the broker."""
        if self._publisher is not None:
            try:
                self._publisher.close()
            except Exception as exc:
                log.warning("closing the MQTT connection failed: %s", exc)

    def __exit__(self, *exc_info: object) -> None:
        self.close()
