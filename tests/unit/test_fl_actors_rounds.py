"""The round loop with the real ClientApp and the digits_sklearn example, in process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from flwr.app import ArrayRecord
from flwr.serverapp import Grid

from fl_actors import ml_repo
from fl_actors.rounds import LoopSettings, RoundReport, TrainingError, run_rounds, wait_for_nodes
from fl_actors.strategies import build_strategy
from flops_common.sla import TrainingConfiguration
from tests.unit.fl_actors_fakes import SKLEARN_REPO, FakeGrid, write_digits_partitions


@pytest.fixture
def sklearn_repo_on_path() -> Iterator[None]:
    ml_repo.add_to_path(SKLEARN_REPO)
    yield
    sys.path.remove(str(SKLEARN_REPO.resolve()))
    for name in ("model_manager", "data_manager"):
        sys.modules.pop(name, None)


def _run(grid: FakeGrid, eval_in_train: bool, rounds: int = 3) -> tuple[list[RoundReport], list[RoundReport]]:
    training = TrainingConfiguration(
        data_tags=["digits"], min_available_clients=2, min_fit_clients=2, min_evaluate_clients=2
    )
    strategy = build_strategy(training)
    initial = ArrayRecord(ml_repo.new_model_manager().get_model_parameters())
    seen: list[RoundReport] = []
    result = run_rounds(
        cast(Grid, grid),
        strategy,
        initial,
        LoopSettings(training_rounds=rounds, round_timeout_s=30, eval_in_train=eval_in_train, poll_interval_s=0.01),
        seen.append,
    )
    return seen, result.reports


@pytest.mark.usefixtures("sklearn_repo_on_path")
@pytest.mark.parametrize("eval_in_train", [True, False])
def test_three_rounds_reach_085_with_one_report_per_round(tmp_path: Path, eval_in_train: bool) -> None:
    grid = FakeGrid(write_digits_partitions(tmp_path))
    seen, reports = _run(grid, eval_in_train)
    assert [r.server_round for r in seen] == [1, 2, 3]
    assert seen == reports
    for report in reports:
        assert report.train_replies == 2 and report.train_failures == 0
        assert set(report.metrics) >= {"eval_loss", "eval_accuracy", "round_time_s", "clients_replied"}
    assert reports[-1].metrics["eval_accuracy"] >= 0.85
    if eval_in_train:  # R train exchanges + one final evaluation
        assert grid.exchanges == ["train", "train", "train", "evaluate"]
    else:
        assert grid.exchanges == ["train", "evaluate"] * 3


@pytest.mark.usefixtures("sklearn_repo_on_path")
def test_merged_and_separate_evaluation_give_the_same_metrics(tmp_path: Path) -> None:
    dirs = write_digits_partitions(tmp_path)
    merged, _ = _run(FakeGrid(dirs), eval_in_train=True)
    separate, _ = _run(FakeGrid(dirs), eval_in_train=False)
    for a, b in zip(merged, separate, strict=True):
        assert a.metrics["eval_accuracy"] == pytest.approx(b.metrics["eval_accuracy"])
        assert a.metrics["eval_loss"] == pytest.approx(b.metrics["eval_loss"])


@pytest.mark.usefixtures("sklearn_repo_on_path")
def test_a_failing_learner_is_tolerated_but_all_failing_stops_with_the_reason(tmp_path: Path) -> None:
    dirs = write_digits_partitions(tmp_path)
    seen, _ = _run(FakeGrid(dirs, failing_nodes=frozenset({2})), eval_in_train=True, rounds=2)
    assert [r.train_replies for r in seen] == [1, 1]
    assert [r.train_failures for r in seen] == [1, 1]
    with pytest.raises(TrainingError, match=r"round 1: no learner returned a usable training result.*boom on purpose"):
        _run(FakeGrid(dirs, failing_nodes=frozenset({1, 2})), eval_in_train=True)


def test_waiting_for_learners_times_out_with_a_clear_message() -> None:
    grid = FakeGrid([Path("/nonexistent")])
    assert wait_for_nodes(cast(Grid, grid), 1, timeout_s=1) == 1
    with pytest.raises(TrainingError, match="only 1 of the 3 learners"):
        wait_for_nodes(cast(Grid, grid), 3, timeout_s=0.2, poll_interval_s=0.05)
