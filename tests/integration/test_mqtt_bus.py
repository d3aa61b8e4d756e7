"""MqttBus against the real Mosquitto broker: delivery, and no loss while the manager is away."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


def test_an_observer_started_late_prints_what_it_missed_first_and_in_order(suite: EmbeddedSuite) -> None:
    """The suite's manager stores a project's events and replays them to its observer once it listens."""
    project_id = f"obs{uuid.uuid4().hex[:8]}"
    bus_config = BusConfig(port=suite.ports.broker)

    def event(message: str, kind: EventKind = EventKind.LOG) -> Event:
        return Event(project_id=project_id, source=Source.BUILDER, kind=kind, message=message)

    past = [event(f"before {i}") for i in range(3)]
    with EventPublisher(bus_config) as pub:
        for earlier in past:
            pub.publish(earlier)
    time.sleep(1)  # the manager stores them
    env = {**os.environ, "FLOPS_OBSERVER_BUS": bus_config.model_dump_json()}
    observer = subprocess.Popen(
        [sys.executable, "-m", "observer", project_id], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        ready = MqttBus(bus_config, client_id=f"t-{uuid.uuid4().hex[:8]}")
        heard = threading.Event()
        ready.start(lambda e: heard.set() if e.project_id == project_id and e.data.get("observer_ready") else None)
        try:
            assert heard.wait(30), "the observer never said it listens"
        finally:
            ready.stop()
        time.sleep(0.5)
        with EventPublisher(bus_config) as pub:
            pub.publish(event("live"))
            pub.publish(past[1])  # a duplicate prints once
            pub.publish(event("", EventKind.PROJECT_FINISHED))
        out, _ = observer.communicate(timeout=30)
    finally:
        if observer.poll() is None:
            observer.kill()
    lines = [re.split(r"\s{2,}", line.strip())[-1] for line in out.splitlines()]
    assert lines == ["before 0", "before 1", "before 2", "observer following the project", "live", "project finished"]
