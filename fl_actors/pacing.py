"""Poll intervals that grow with the time since something last happened.

Flower's Deployment Engine moves every message by polling (the SuperNode asks its SuperLink, the
SuperExec asks its SuperNode, the ServerApp asks for replies), and each poll interval adds half of
itself to every exchange on average. A fixed short interval costs CPU for as long as a project is
idle; a fixed long one makes short rounds wait. In a round, the next message or reply comes soon
after the last one, so FLOps' pollers wait a fixed fraction of the time since their last event:
fast right after it, back to their long interval when nothing happens. The added latency is then
about ``1 / (2 * ratio)`` of each wait (5% at the default ratio), however long the rounds are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

RATIO = 10.0  # wait a tenth of the time since the last event
FLOOR_S = 0.05  # never poll more often than 20 times a second


@dataclass
class Pacer:
    """The interval for the next poll: ``(now - since) / ratio``, within ``[floor_s, cap_s]``."""

    cap_s: float
    floor_s: float = FLOOR_S
    ratio: float = RATIO
    since: float = field(default_factory=time.monotonic)

    def restart(self, now: float | None = None) -> None:
        """Something happened (a message, a task, a reply): poll fast again from ``now``."""
        self.since = time.monotonic() if now is None else now

    def interval(self, now: float | None = None) -> float:
        """Seconds to wait before the next poll."""
        elapsed = (time.monotonic() if now is None else now) - self.since
        return min(self.cap_s, max(self.floor_s, elapsed / self.ratio))
