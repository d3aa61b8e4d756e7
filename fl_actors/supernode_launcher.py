"""The learner's SuperNode (``python -m fl_actors.supernode_launcher ARGS``): Flower's own, polling sooner.

Flower 1.41's SuperNode loop (``flwr.supernode.start_client_internal``) sleeps a hard-coded 3 s
after every pull that found no message, and it pulls right after pushing each reply, so nearly every
exchange of a run waits about 3 s before the SuperNode sees its next message; it also waits for the
ClientApp's reply and its objects in 0.5 s steps. Nothing in 1.41 configures these waits (Flower made
its SuperExec's interval configurable in a later release). This launcher is the one place FLOps
changes them: it gives that module a ``time`` whose ``sleep`` is paced (:class:`PacedSleep`, idle
waits at most ``FLOPS_SUPERNODE_POLL_S`` seconds, default 0.2), makes Flower's object pulls retry
sooner (:mod:`fl_actors.object_pulls`), then runs Flower's own ``flower-supernode`` entry point with
the same arguments. Nothing else of Flower changes, and no installed file is edited. ``flwr`` is
pinned, and ``tests/integration/test_supernode_launcher.py`` fails when the patched module's source
changes.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from fl_actors import object_pulls, pacing

log = logging.getLogger("fl_actors.supernode_launcher")

POLL_ENV = "FLOPS_SUPERNODE_POLL_S"  # longest wait of the SuperNode's loop, in seconds
DEFAULT_POLL_S = 0.2
PATCHED_MODULE = "flwr.supernode.start_client_internal"
COMMAND = "flower-supernode"
BUSY_WAIT_S = 0.01  # waits for the ClientApp's reply check in-process state: cheap to repeat


class PacedSleep:
    """The ``time`` module as the SuperNode loop sees it: its waits end sooner.

    The loop sleeps 3 s after each pull that found no message (an *idle* wait: the next pull is an
    HTTP call to the SuperLink) and 0.5 s between in-process checks for the ClientApp's reply and
    its objects (a *busy* wait). Busy waits last ``busy_s``; idle waits follow a
    :class:`~fl_actors.pacing.Pacer` capped at ``cap_s`` and restarted by each busy wait, so the
    SuperNode asks for the next message within milliseconds after sending a reply and slows down to
    one pull per ``cap_s`` while nothing comes.
    """

    IDLE_WAIT_S = 1.0  # the loop's idle wait is 3 s, its busy waits 0.5 s

    def __init__(self, cap_s: float, busy_s: float = BUSY_WAIT_S) -> None:
        self.pacer = pacing.Pacer(cap_s=cap_s)
        self.busy_s = busy_s

    @property
    def cap_s(self) -> float:
        """The longest idle wait."""
        return self.pacer.cap_s

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, but no longer than the current pace (the loop's waits are all polls)."""
        if seconds >= self.IDLE_WAIT_S:
            time.sleep(min(seconds, self.pacer.interval()))
        else:
            self.pacer.restart()
            time.sleep(min(seconds, self.busy_s))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def poll_interval(environ: Mapping[str, str]) -> float:
    """The cap from ``FLOPS_SUPERNODE_POLL_S``: a positive number of seconds, else the default."""
    raw = environ.get(POLL_ENV, "").strip()
    if not raw:
        return DEFAULT_POLL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        log.warning("%s=%r is not a positive number of seconds; using %s", POLL_ENV, raw, DEFAULT_POLL_S)
        return DEFAULT_POLL_S
    return value


def patch(cap_s: float) -> ModuleType:
    """Cap the waits of Flower's SuperNode loop at ``cap_s`` and make its object pulls retry sooner
    (:mod:`fl_actors.object_pulls`); return the patched loop module."""
    object_pulls.retry_sooner()
    loop = importlib.import_module(PATCHED_MODULE)
    loop.time = PacedSleep(cap_s)  # type: ignore[attr-defined]
    return loop


def argv(args: Sequence[str]) -> list[str]:
    """The command line that runs the SuperNode through this launcher with the current interpreter."""
    return [sys.executable, "-m", "fl_actors.supernode_launcher", *args]


def main() -> None:
    """Patch, then hand this process's arguments to Flower's ``flower-supernode``."""
    patch(poll_interval(os.environ))
    from flwr.supercore.logger import update_console_handler
    from flwr.supernode.cli.flower_supernode import flower_supernode

    update_console_handler(timestamps=True, colored=False)  # a learner's log is read by time, not on a terminal

    sys.argv[0] = COMMAND
    flower_supernode()


if __name__ == "__main__":
    main()
