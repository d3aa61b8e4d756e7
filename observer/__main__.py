"""``python -m observer PROJECT_ID``: print the project's timeline until it finishes."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import TypeAdapter

from flops_common.events import Event, EventKind, Source, make_event
from flops_common.jobs import BusConfig
from flops_common.mqtt import new_client
from flops_common.secret_env import load_secret_env
from flops_common.timeline import format_event
from flops_common.topics import project_events, project_replay

EVENT_LIST = TypeAdapter(list[Event])
# Live events are held back until the manager's replay of what came before arrives, so the timeline
# stays in order; a manager that never answers must not silence the observer for long.
REPLAY_WAIT_S = 20.0


class Timeline:
    """Prints each event once, in order: the replayed past first, then live events."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.held: list[Event] = []
        self.replayed = False
        self.finished = threading.Event()
        self.lock = threading.Lock()

    def live(self, event: Event) -> None:
        """An event published while the observer listens."""
        with self.lock:
            if self.replayed:
                self._print([event])
            else:
                self.held.append(event)

    def replay(self, events: list[Event]) -> None:
        """The manager's stored events (once; later replays add only what is new)."""
        with self.lock:
            held, self.held, self.replayed = self.held, [], True
            self._print(sorted([*events, *held], key=lambda e: e.timestamp))

    def _print(self, events: list[Event]) -> None:
        for event in events:
            if event.event_id in self.seen:
                continue
            self.seen.add(event.event_id)
            print(format_event(event), flush=True)
            if event.kind == EventKind.PROJECT_FINISHED:
                self.finished.set()


def main(argv: list[str] | None = None) -> int:
    """Subscribe to one project's topics, ask for what was missed, print each event as a timeline line."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m observer PROJECT_ID", file=sys.stderr)
        return 2
    project_id = args[0]
    load_secret_env()
    bus = BusConfig.model_validate_json(os.environ.get("FLOPS_OBSERVER_BUS", "{}"))
    timeline = Timeline()
    events_topic, replay_topic = project_events(project_id), project_replay(project_id)

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(events_topic, 1), (replay_topic, 1)])

    def on_subscribe(client: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        ready = make_event(
            project_id, Source.OBSERVER, EventKind.LOG, "observer following the project", observer_ready=True
        )
        client.publish(events_topic, ready.model_dump_json(), qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == replay_topic:
            timeline.replay(EVENT_LIST.validate_json(msg.payload))
        else:
            timeline.live(Event.model_validate_json(msg.payload))

    client = new_client(bus, client_id=f"flops-observer-{project_id}")
    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(bus.host, bus.port, keepalive=15)
    client.loop_start()
    with contextlib.suppress(KeyboardInterrupt):
        if not timeline.finished.wait(REPLAY_WAIT_S) and not timeline.replayed:
            timeline.replay([])
        timeline.finished.wait()
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
