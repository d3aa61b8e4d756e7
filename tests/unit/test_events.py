"""The one event builder every service uses."""

from __future__ import annotations

from flops_common.events import EventKind, Source, make_event
from flops_common.stages import Stage


def test_keywords_beyond_stage_are_the_data_even_when_named_like_the_fields() -> None:
    event = make_event(
        "p1", Source.BUILDER, EventKind.BUILD_STEP, "dependencies done", stage=Stage.IMAGE_BUILD, source="uv.lock"
    )
    assert (event.project_id, event.source, event.kind) == ("p1", Source.BUILDER, EventKind.BUILD_STEP)
    assert (event.message, event.stage, event.data) == ("dependencies done", Stage.IMAGE_BUILD, {"source": "uv.lock"})


def test_message_and_stage_are_optional() -> None:
    event = make_event("p1", Source.MANAGER, EventKind.LOG)
    assert (event.message, event.stage, event.data) == ("", None, {})
    assert event.event_id != make_event("p1", Source.MANAGER, EventKind.LOG).event_id
