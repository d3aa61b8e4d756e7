"""Turning SIGTERM/SIGINT into an exception, so that ``finally`` blocks stop the children."""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM or SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    # Ignore further signals while we clean up.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Terminated(signum)


def install() -> None:
    """Raise :class:`Terminated` in the main thread on SIGTERM or SIGINT."""
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)


EXIT_TERMINATED = 143  # 128 + SIGTERM
