"""The learner's SuperNode (``python -m fl_actors.supernode_launcher ARGS``): Flower's own, polling sooner.

Flower 1.41's SuperNode loop (``flwr.supernode.start_client_internal``) sleeps a hard-coded 3 s
after every pull that found no message, and it pulls right after pushing each reply, so nearly every
exchange of a run waits about 3 s before the SuperNode sees its next message; it also waits for the
ClientApp's reply and its objects in 0.5 s steps. Nothing in 1.41 configures these waits (Flower made
its SuperExec's interval configurable in a later release). This launcher is the one place FLOps
changes them: it gives that module a ``time`` whose ``sleep`` lasts at most ``FLOPS_SUPERNODE_POLL_S``
seconds (default 0.2), then runs Flower's own ``flower-supernode`` entry point with the same
arguments. Nothing else of Flower changes, and no installed file is edited. ``flwr`` is pinned, and
``tests/unit/test_supernode_launcher.py`` fails when the patched module's source changes.
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

log = logging.getLogger("fl_actors.supernode_launcher")

POLL_ENV = "FLOPS_SUPERNODE_POLL_S"  # longest wait of the SuperNode's loop, in seconds
DEFAULT_POLL_S = 0.2
PATCHED_MODULE = "flwr.supernode.start_client_internal"
COMMAND = "flower-supernode"


class CappedSleep:
    """The ``time`` module as the SuperNode loop sees it: every ``sleep`` lasts at most ``cap_s``."""

    def __init__(self, cap_s: float) -> None:
        self.cap_s = cap_s

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, but no longer than the cap (the loop's waits are all polls)."""
        time.sleep(min(seconds, self.cap_s))

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
    """Cap the waits of Flower's SuperNode loop at ``cap_s``; return the patched module."""
    loop = importlib.import_module(PATCHED_MODULE)
    loop.time = CappedSleep(cap_s)  # type: ignore[attr-defined]
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
