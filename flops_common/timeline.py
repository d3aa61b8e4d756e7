"""How an event reads in a project's timeline (shared by the observer, the API and the CLI)."""

from __future__ import annotations

import time
from typing import Any

from flops_common.events import Event, EventKind


def progress_text(kind: EventKind, data: dict[str, Any]) -> str:
    """A round or cycle line: ``round 3 done: …``, ``cluster-0 round 3 (cycle 2) done: …``, ``cycle 2 done: …``."""
    metrics = data.get("metrics") or {}
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, int | float))
    if kind == EventKind.CYCLE_COMPLETED:
        clusters = ", ".join(data.get("clusters") or [])
        head = f"cycle {data.get('cycle')} done" + (f" (clusters {clusters})" if clusters else "")
    elif data.get("cluster"):
        head = f"{data['cluster']} round {data.get('round')} (cycle {data.get('cycle')}) done"
    else:
        head = f"round {data.get('round')} done"
    return head + (f": {shown}" if shown else "")


def format_event(event: Event) -> str:
    """One readable timeline line: time, stage, source, what happened."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    stage = f"stage {int(event.stage)}" if event.stage is not None else "       "
    text = event.message or event.kind.value.replace("_", " ")
    if event.kind == EventKind.BUILD_STEP and "seconds" in event.data:
        text = f"{text} ({float(event.data['seconds']):.1f} s)"
    elif event.kind in (EventKind.ROUND_COMPLETED, EventKind.CYCLE_COMPLETED):
        text = progress_text(event.kind, event.data)
    return f"{clock}.{int(event.timestamp * 1000) % 1000:03d}  {stage}  {event.source.value:<10}  {text}"
