"""The critical-path figures the benches compute from a project's events."""

from __future__ import annotations

import pytest

from bench.critical_path import warm_runs
from bench.e2e import critical_path, p90, warm_series


def _round(ts: float, round_time: float, compute: float) -> dict[str, object]:
    metrics = {"round_time_s": round_time, "client_compute_s": compute}
    return {"kind": "round_completed", "source": "aggregator", "timestamp": ts, "data": {"metrics": metrics}}


def test_overhead_first_round_and_deployment_per_learner() -> None:
    events = [
        {"kind": "training_started", "source": "aggregator", "timestamp": 20.0, "data": {}},
        _round(30.0, 3.5, 0.5),
        _round(33.0, 2.0, 1.0),
        _round(40.0, 6.0, 1.0),
    ]
    figures = critical_path(events, {"4 actor deployment": 9.0}, deployed_at=11.0)
    assert figures == {
        "round_overhead_s_median": 3.0,
        "round_overhead_s_p90": 5.0,
        "aggregator_start_to_first_round_s": 19.0,
        "run_submitted_to_first_round_s": 10.0,
        "actor_deployment_s_per_learner": 4.5,
    }


def test_no_rounds_gives_no_figures() -> None:
    figures = critical_path([], {}, deployed_at=None)
    assert set(figures.values()) == {None}


def test_p90_is_nearest_rank() -> None:
    assert p90([1.0]) == 1.0
    assert p90([float(i) for i in range(1, 11)]) == 9.0


def test_warm_series_takes_the_median_of_runs_and_of_all_their_rounds() -> None:
    def run(wall: float, *rounds: tuple[float, float]) -> dict[str, object]:
        detail = [{"round_time_s": t, "client_compute_s": c} for t, c in rounds]
        return {"wall_s": wall, "rounds_detail": detail}

    series = warm_series([run(14.0, (1.0, 0.5), (2.0, 0.5)), run(16.0, (0.7, 0.2)), run(13.0, (3.0, 1.0))])
    assert series == {
        "runs": 3,
        "wall_s": [14.0, 16.0, 13.0],
        "wall_s_median": 14.0,
        "round_overhead_s_median": 1.0,
        "round_overhead_s_p90": 2.0,
        "rounds": 4,
    }


def test_warm_runs_option() -> None:
    assert warm_runs([]) == 1
    assert warm_runs(["--no-plain", "--warm", "6"]) == 6
    for bad in (["--warm"], ["--warm", "0"], ["--warm", "six"]):
        with pytest.raises(SystemExit):
            warm_runs(bad)
