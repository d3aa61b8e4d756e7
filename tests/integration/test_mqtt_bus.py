"""MqttBus against the real Mosquitto broker: delivery, and no loss while the manager is away."""

from __future__ import annotations

import threading
import time
import uuid

from flops_common.events import Event, EventKind, Source
from flops_common.jobs import BusConfig
from flops_common.mqtt import EventPublisher
from flops_manager.bus.mqtt_bus import MqttBus
from flops_suite.embedded import EmbeddedSuite


def _collector() -> tuple[list[Event], threading.Event, object]:
    got: list[Event] = []
    signal = threading.Event()

    def handle(event: Event) -> None:
        got.append(event)
        signal.set()

    return got, signal, handle


def _wait(cond: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_events_from_services_reach_the_manager(suite: EmbeddedSuite) -> None:
    bus_config = BusConfig(port=suite.ports.broker)
    bus = MqttBus(bus_config, client_id=f"t-{uuid.uuid4().hex[:8]}")
    got, _, handle = _collector()
    bus.start(handle)  # type: ignore[arg-type]
    try:
        with EventPublisher(bus_config) as pub:
            pub.publish(
                Event(project_id="bus1", source=Source.LEARNER, kind=EventKind.LEARNER_READY, data={"samples": 5})
            )
        assert _wait(lambda: any(e.project_id == "bus1" for e in got))
        assert got[-1].data == {"samples": 5}
    finally:
        bus.stop()


def test_events_published_while_the_manager_is_down_arrive_after_it_returns(suite: EmbeddedSuite) -> None:
    bus_config = BusConfig(port=suite.ports.broker)
    client_id = f"t-{uuid.uuid4().hex[:8]}"
    first = MqttBus(bus_config, client_id=client_id)
    first.start(lambda e: None)
    first.stop()  # durable session stays on the broker
    with EventPublisher(bus_config) as pub:
        for i in range(20):
            pub.publish(
                Event(project_id="bus2", source=Source.AGGREGATOR, kind=EventKind.ROUND_COMPLETED, data={"round": i})
            )
    got, _, handle = _collector()
    second = MqttBus(bus_config, client_id=client_id)
    second.start(handle)  # type: ignore[arg-type]
    try:
        assert _wait(lambda: len([e for e in got if e.project_id == "bus2"]) == 20)
        assert sorted(e.data["round"] for e in got if e.project_id == "bus2") == list(range(20))
    finally:
        second.stop()
