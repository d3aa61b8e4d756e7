"""Publishing events over MQTT (paho-mqtt, v2 callback API), QoS 1 by default."""

from __future__ import annotations

import os
import time
import uuid
from types import TracebackType

import paho.mqtt.client as mqtt

from flops_common.events import Event
from flops_common.jobs import BusConfig
from flops_common.topics import project_events

PASSWORD_ENV = "FLOPS_MQTT_PASSWORD"


def new_client(bus: BusConfig, client_id: str = "", clean_start: bool = True) -> mqtt.Client:
    """A configured, unconnected paho client; the password comes from ``FLOPS_MQTT_PASSWORD``."""
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"flops-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
    )
    if bus.username:
        client.username_pw_set(bus.username, os.environ.get(PASSWORD_ENV))
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


class EventPublisher:
    """Publishes events of services to the project topic and waits for the broker's ack."""

    def __init__(self, bus: BusConfig, ack_timeout_s: float = 10.0) -> None:
        self._bus = bus
        self._ack_timeout_s = ack_timeout_s
        self._client: mqtt.Client | None = None
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def connect(self) -> None:
        """Connect to the broker and start the network loop."""
        client = new_client(self._bus)
        client.connect(self._bus.host, self._bus.port, keepalive=30)
        client.loop_start()
        self._client = client

    def publish(self, event: Event, qos: int = 1) -> None:
        """Publish one event; with QoS 1 wait until the broker acknowledged it."""
        if self._client is None:
            self.connect()
        assert self._client is not None
        info = self._client.publish(project_events(event.project_id), event.model_dump_json(), qos=qos)
        if qos == 0:
            return
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # paho keeps QoS 1 messages while reconnecting and sends them once it is back.
            self._pending.append(info)
            return
        info.wait_for_publish(timeout=self._ack_timeout_s)
        if not info.is_published():
            self._pending.append(info)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued event was acknowledged; False if some were not in time."""
        deadline = time.monotonic() + (self._ack_timeout_s * 3 if timeout_s is None else timeout_s)
        while self._pending and time.monotonic() < deadline:
            self._pending = [info for info in self._pending if not info.is_published()]
            time.sleep(0.05)
        return not self._pending

    def close(self) -> None:
        """Deliver what is still queued (bounded), then disconnect."""
        if self._client is not None:
            self.flush()
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def __enter__(self) -> EventPublisher:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
