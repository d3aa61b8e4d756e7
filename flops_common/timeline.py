"""How an event reads in a project's timeline (shared by the observer, the API and the CLI)."""

from __future__ import annotations

import time

from flops_common.events import Event, EventKind


def format_event(event: Event) -> str:
    """One readable timeline line: time, stage, source, what happened."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    stage = f"stage {int(event.stage)}" if event.stage is not None else "       "
    text = event.message or event.kind.value.replace("_", " ")
    if event.kind == EventKind.BUILD_STEP and "seconds" in event.data:
        text = f"{text} ({float(event.data['seconds']):.1f} s)"
    elif event.kind == EventKind.ROUND_COMPLETED:
        metrics = event.data.get("metrics") or {}
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, int | float))
        text = f"round {event.data.get('round')} done" + (f": {shown}" if shown else "")
    return f"{clock}.{int(event.timestamp * 1000) % 1000:03d}  {stage}  {event.source.value:<10}  {text}"
