"""Experiment only (never used by FLOps itself): ``flower-supernode`` with its idle poll shortened.

Flower 1.41's SuperNode sleeps a hard-coded 3 s whenever it finds no message for it
(``flwr.supernode.start_client_internal``); no option or variable changes that. To measure what
that sleep costs, this wrapper replaces the ``time`` module that function sees with one whose
``sleep(3)`` lasts ``FLOPS_BENCH_SUPERNODE_POLL_S`` (default 0.5 s), then runs the SuperNode's own
entry point with the same arguments. It is a monkeypatch of a private detail, hence only a bench.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


class _ShortIdleSleep:
    """``time`` for ``start_client_internal``: its 3 s idle sleep made shorter."""

    def __init__(self, idle_s: float) -> None:
        self._idle_s = idle_s

    def sleep(self, seconds: float) -> None:
        """Sleep, but at most ``idle_s`` for the SuperNode's 3 s idle wait."""
        time.sleep(self._idle_s if seconds == 3 else seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def main() -> None:
    """Patch, then run ``flower-supernode`` with this process's arguments."""
    import flwr.supernode.start_client_internal as loop
    from flwr.supernode.cli.flower_supernode import flower_supernode

    loop.time = _ShortIdleSleep(float(os.environ.get("FLOPS_BENCH_SUPERNODE_POLL_S", "0.5")))  # type: ignore[assignment]
    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
