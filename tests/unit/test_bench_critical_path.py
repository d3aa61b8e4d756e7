"""The critical-path figures the benches compute from a project's events."""

from __future__ import annotations

from bench.e2e import critical_path, p90


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
