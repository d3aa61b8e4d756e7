"""A real Mosquitto broker on 127.0.0.1 for tests, started and stopped by PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt

from flops_common.events import Event
from flops_common.topics import ALL_PROJECT_EVENTS
from tests.helpers.ports import free_port


class Mosquitto:
    """``mosquitto -c CONF`` listening on 127.0.0.1:port, anonymous, no persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the broker this object started (by its PID)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EventCollector:
    """Subscribes to every project's events and keeps them per project id."""

    def __init__(self, port: int) -> None:
        self._events: dict[str, list[Event]] = defaultdict(list)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(ALL_PROJECT_EVENTS, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        event = Event.model_validate_json(message.payload)
        with self._cond:
            self._events[event.project_id].append(event)
            self._cond.notify_all()

    def events(self, project_id: str) -> list[Event]:
        """What arrived for one project so far."""
        with self._cond:
            return list(self._events[project_id])

    def wait_for(self, project_id: str, kinds: set[str], timeout_s: float = 10.0) -> list[Event]:
        """All events of a project once one of ``kinds`` arrived."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not any(e.kind in kinds for e in self._events[project_id]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {kinds} for {project_id}: {self._events[project_id]}")
                self._cond.wait(remaining)
            return list(self._events[project_id])

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> EventCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
