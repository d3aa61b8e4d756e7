"""MQTT bus (paho-mqtt v2) with a durable session, so a manager restart loses no event."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import TypeAdapter, ValidationError

from flops_common.events import Event
from flops_common.jobs import BusConfig
from flops_common.mqtt import new_client
from flops_common.topics import ALL_PROJECT_EVENTS, project_events, project_replay
from flops_manager.bus.base import Bus, EventHandler

log = logging.getLogger(__name__)
_SESSION_EXPIRY_S = 7 * 24 * 3600
EVENT_LIST = TypeAdapter(list[Event])


class MqttBus(Bus):
    """Subscribes to all project events with QoS 1 under a fixed client id and a persistent session."""

    def __init__(self, bus: BusConfig, client_id: str = "flops-manager") -> None:
        self._bus = bus
        self._client_id = client_id
        self._client: mqtt.Client | None = None
        self._inbox: queue.Queue[Event | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._connected = threading.Event()

    def start(self, handler: EventHandler) -> None:
        """Connect (waiting up to 10 s) and hand events to ``handler`` on a worker thread."""
        client = new_client(self._bus, client_id=self._client_id)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        self._worker = threading.Thread(target=self._drain, args=(handler,), name="bus-inbox", daemon=True)
        self._worker.start()
        client.connect(self._bus.host, self._bus.port, keepalive=15, clean_start=False, properties=props)
        client.loop_start()
        self._client = client
        if not self._connected.wait(10):
            raise ConnectionError(f"MQTT broker at {self._bus.host}:{self._bus.port} did not accept us")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connect refused: %s", reason)
            return
        client.subscribe(ALL_PROJECT_EVENTS, qos=1)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            event = Event.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("dropping malformed event on %s: %s", msg.topic, exc.errors()[:1])
            return
        # The broker lets a project's services publish only on their own topic; an event naming
        # another project there is forged and must not touch that project.
        if msg.topic != project_events(event.project_id):
            log.warning("dropping an event for project %s published on %s", event.project_id, msg.topic)
            return
        self._inbox.put(event)

    def _drain(self, handler: EventHandler) -> None:
        while (event := self._inbox.get()) is not None:
            try:
                handler(event)
            except Exception:
                log.exception("event handler failed for %s", event.kind)

    def publish(self, event: Event) -> None:
        """Publish with QoS 1; waits briefly for the ack but never fails the caller."""
        if self._client is None:
            return
        info = self._client.publish(project_events(event.project_id), event.model_dump_json(), qos=1)
        try:
            info.wait_for_publish(timeout=2)
        except (RuntimeError, ValueError):
            log.warning("event %s queued while the broker is unreachable", event.kind)

    def publish_replay(self, project_id: str, events: list[Event]) -> None:
        """Publish the events as one JSON array with QoS 1 (not retained: only a listening observer wants it)."""
        if self._client is not None:
            self._client.publish(project_replay(project_id), EVENT_LIST.dump_json(events), qos=1)

    def stop(self) -> None:
        """Disconnect and stop the worker (the session stays on the broker)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        self._inbox.put(None)
        if self._worker is not None:
            self._worker.join(timeout=5)
