"""Reports the build over MQTT: BUILD_STEP per step, then BUILD_SUCCEEDED or BUILD_FAILED.

The bus is best effort for the build itself: an unreachable broker is logged and the build goes on
(the manifest on disk is the source of truth); the exit code still tells the outcome. After a failed
connection only the final event (succeeded/failed) tries again, so a dead broker costs one timeout.
"""

from __future__ import annotations

import logging
from typing import Any

from flops_common.events import EventKind, Source, make_event
from flops_common.image_key import ImageManifest
from flops_common.jobs import BusConfig
from flops_common.mqtt import EventPublisher
from flops_common.stages import Stage

log = logging.getLogger(__name__)


class Notifier:
    """Publishes the builder's events for one project (QoS 1, waits for the broker's ack)."""

    def __init__(self, bus: BusConfig, project_id: str, stage: Stage = Stage.IMAGE_BUILD) -> None:
        self._publisher = EventPublisher(bus)
        self._project_id = project_id
        self._stage = stage
        self._connected = False
        self._unreachable = False

    def _publish(self, kind: EventKind, message: str, data: dict[str, Any], final: bool = False) -> None:
        event = make_event(self._project_id, Source.BUILDER, kind, message, stage=self._stage, **data)
        if not self._connected and self._unreachable and not final:
            log.debug("broker unreachable, not published: %s %s", kind, message)
            return
        try:
            if not self._connected:
                self._publisher.connect()
                self._connected = True
                self._unreachable = False
            self._publisher.publish(event)
        except Exception as exc:  # the bus must never break the build
            self._unreachable = not self._connected
            log.warning("could not publish %s event: %s", kind, exc)

    def log(self, message: str, **data: Any) -> None:
        """A LOG line for the project's timeline."""
        self._publish(EventKind.LOG, message, dict(data))

    def step(self, step: str, seconds: float, **data: Any) -> None:
        """BUILD_STEP: ``step`` finished in ``seconds``."""
        self._publish(
            EventKind.BUILD_STEP,
            f"{step} done in {seconds:.2f} s",
            {"step": step, "seconds": round(seconds, 3), **data},
        )

    def succeeded(self, manifest: ImageManifest) -> None:
        """BUILD_SUCCEEDED with the published manifest."""
        self._publish(
            EventKind.BUILD_SUCCEEDED,
            f"image {manifest.digest} built in {manifest.build_seconds:.1f} s",
            {"manifest": manifest.model_dump(mode="json")},
            final=True,
        )

    def failed(self, step: str, cause: str) -> None:
        """BUILD_FAILED: ``cause`` is the user-facing reason, ``step`` where it happened."""
        self._publish(EventKind.BUILD_FAILED, cause, {"step": step}, final=True)

    def final(self, kind: EventKind, message: str, **data: Any) -> None:
        """The outcome of another kind of build (e.g. a serving build), retried like the others."""
        self._publish(kind, message, dict(data), final=True)

    def close(self) -> None:
        """Disconnect from the broker."""
        if self._connected:
            try:
                self._publisher.close()
            except Exception as exc:
                log.warning("closing the MQTT connection failed: %s", exc)
            self._connected = False
