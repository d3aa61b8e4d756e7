"""Poll pacing: fast right after an event, a tenth of the quiet time later, never beyond the cap."""

from __future__ import annotations

import pytest

from fl_actors.pacing import FLOOR_S, Pacer


def test_interval_grows_with_the_time_since_the_last_event() -> None:
    pacer = Pacer(cap_s=0.5, since=10.0)
    assert pacer.interval(now=10.0) == FLOOR_S
    assert pacer.interval(now=11.0) == pytest.approx(0.1)
    assert pacer.interval(now=14.0) == pytest.approx(0.4)
    assert pacer.interval(now=100.0) == 0.5


def test_restart_makes_the_next_polls_fast_again() -> None:
    pacer = Pacer(cap_s=0.2, since=0.0)
    assert pacer.interval(now=60.0) == 0.2
    pacer.restart(now=60.0)
    assert pacer.interval(now=60.05) == FLOOR_S


def test_a_cap_below_the_floor_wins() -> None:
    assert Pacer(cap_s=0.01, since=0.0).interval(now=0.0) == 0.01
