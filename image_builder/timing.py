"""Times build steps and reports each finished step."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from image_builder.errors import BuildError
from image_builder.notify import Notifier
from image_builder.steps import BuildStep

log = logging.getLogger(__name__)


class StepRecorder:
    """Runs steps: times them, reports BUILD_STEP, and turns unexpected errors into BuildError."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._started = time.monotonic()
        self.seconds: dict[str, float] = {}
        self.current: BuildStep | None = None

    @property
    def notifier(self) -> Notifier:
        """Where the build's events go (a plan streams its own LOG lines there)."""
        return self._notifier

    def elapsed(self) -> float:
        """Seconds since the build started."""
        return time.monotonic() - self._started

    @contextmanager
    def step(self, step: BuildStep) -> Iterator[dict[str, Any]]:
        """Run one step; the yielded dict is extra data for its BUILD_STEP event."""
        self.current = step
        extra: dict[str, Any] = {}
        started = time.monotonic()
        try:
            yield extra
        except BuildError:
            raise
        except Exception as exc:
            raise BuildError(step, f"internal builder error: {type(exc).__name__}: {exc}") from exc
        seconds = time.monotonic() - started
        self.seconds[step.value] = round(seconds, 3)
        log.info("step %s done in %.2f s %s", step.value, seconds, json.dumps(extra, default=str))
        self._notifier.step(step.value, seconds, **extra)
