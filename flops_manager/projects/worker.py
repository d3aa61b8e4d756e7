"""The engine's single worker: a command queue, due timers and a periodic tick, on one thread.

Everything that changes an active project runs here, so transitions never race. ``drain`` runs
the same loop body synchronously, which is how unit tests drive the engine without a thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from flops_manager.projects.context import Scheduler

log = logging.getLogger(__name__)

Command = Callable[[], None]


class Worker:
    """Runs commands in order, then due timers, then ``tick`` every ``tick_interval_s``."""

    def __init__(self, scheduler: Scheduler, tick: Command, tick_interval_s: float) -> None:
        self._scheduler = scheduler
        self._tick = tick
        self._tick_interval_s = tick_interval_s
        self._commands: queue.Queue[Command | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_tick = 0.0

    def call(self, command: Command) -> None:
        """Queue ``command`` for the worker thread (any thread may call this)."""
        self._commands.put(command)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="project-engine", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the worker thread runs (False in unit tests that ``drain`` instead)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the command at hand; queued commands are dropped."""
        self._stopping.set()
        self._commands.put(None)
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def drain(self) -> None:
        """Run every queued command and every due timer now, on this thread, then tick once."""
        while True:
            ran = self._run_due()
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                if not ran:
                    break
                continue
            if command is not None:
                self._guarded(command, "engine command")
        self._guarded(self._tick, "engine tick")

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                command = self._commands.get(timeout=self._tick_interval_s / 2)
            except queue.Empty:
                command = None
            else:
                if command is None:
                    break
                self._guarded(command, "engine command")
            if time.monotonic() - self._last_tick >= self._tick_interval_s:
                self._last_tick = time.monotonic()
                self._run_due()
                self._guarded(self._tick, "engine tick")

    def _run_due(self) -> bool:
        actions = self._scheduler.pop_due()
        for action in actions:
            self._guarded(action, "delayed action")
        return bool(actions)

    @staticmethod
    def _guarded(command: Command, what: str) -> None:
        try:
            command()
        except Exception:
            log.exception("%s failed", what)
