"""``python -m observer PROJECT_ID``: print the project's timeline until it finishes."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt

from flops_common.events import Event, EventKind, Source, make_event
from flops_common.jobs import BusConfig
from flops_common.mqtt import new_client
from flops_common.secret_env import load_secret_env
from flops_common.timeline import format_event
from flops_common.topics import project_events


def main(argv: list[str] | None = None) -> int:
    """Subscribe to one project's topic and print each event as a timeline line."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m observer PROJECT_ID", file=sys.stderr)
        return 2
    project_id = args[0]
    load_secret_env()
    bus = BusConfig.model_validate_json(os.environ.get("FLOPS_OBSERVER_BUS", "{}"))
    finished = threading.Event()
    seen: set[str] = set()

    def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(project_events(project_id), qos=1)

    def on_subscribe(client: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        ready = make_event(
            project_id, Source.OBSERVER, EventKind.LOG, "observer following the project", observer_ready=True
        )
        client.publish(project_events(project_id), ready.model_dump_json(), qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        event = Event.model_validate_json(msg.payload)
        if event.event_id in seen:
            return
        seen.add(event.event_id)
        print(format_event(event), flush=True)
        if event.kind == EventKind.PROJECT_FINISHED:
            finished.set()

    client = new_client(bus, client_id=f"flops-observer-{project_id}")
    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(bus.host, bus.port, keepalive=15)
    client.loop_start()
    with contextlib.suppress(KeyboardInterrupt):
        finished.wait()
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
