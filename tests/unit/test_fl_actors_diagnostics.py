"""Failure causes a user can read, and the aggregator's time budget."""

from __future__ import annotations

from fl_actors.aggregator import failure_cause, overall_timeout_s
from fl_actors.control_api import RunStatus
from fl_actors.diagnostics import error_summary
from tests.unit.fl_actors_fakes import aggregator_job

TRACEBACK = """\x1b[91mERROR \x1b[0m:     ServerApp raised an exception
Traceback (most recent call last):
  File "/x/fl_actors/tracking.py", line 72, in log_model
ModuleNotFoundError: No module named 'pandas'
\x1b[91mERROR \x1b[0m:     Exit Code: 201
"""


def test_error_summary_finds_the_exception_line() -> None:
    assert error_summary(TRACEBACK) == "ModuleNotFoundError: No module named 'pandas'"
    assert error_summary("just\nlines\n") == "lines"
    assert error_summary("") == ""


def test_failure_cause_prefers_flowers_details_then_the_log() -> None:
    detailed = RunStatus("finished:failed", "ServerApp failed with exception: boom", 3.0)
    assert failure_cause(7, detailed, TRACEBACK) == (
        "Flower run 7 ended as finished:failed: ServerApp failed with exception: boom"
    )
    bare = RunStatus("finished:stopped", "", 3.0)
    assert failure_cause(7, bare, TRACEBACK).endswith("No module named 'pandas'")


def test_overall_timeout_covers_connecting_rounds_and_a_margin() -> None:
    job = aggregator_job(training_rounds=3, round_timeout_s=60)
    assert overall_timeout_s(job) == 120 + 4 * 2 * 60 + 120
