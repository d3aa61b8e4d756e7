"""The learner refuses to connect when its data cannot be loaded, and says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fl_actors import ml_repo
from flops_common.jobs import BusConfig, LearnerJob
from tests.helpers.ports import free_port
from tests.unit.fl_actors_fakes import SKLEARN_REPO, write_digits_partitions


def _job(data_dir: Path) -> LearnerJob:
    return LearnerJob(
        project_id="p",
        bus=BusConfig(host="127.0.0.1", port=free_port()),  # no broker: events are only logged
        learner_index=0,
        app_dir=str(SKLEARN_REPO),
        superlink_address="127.0.0.1:1",
        supernode_port=free_port(),
        data_dir=str(data_dir),
    )


def test_missing_data_fails_before_any_supernode_starts(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "fl_actors.learner"],
        env={**os.environ, "FLOPS_JOB": _job(empty).model_dump_json()},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "learner 0 could not load its data" in output
    assert "no .npz partition found" in output
    assert "supernode" not in output.lower().replace("before", "")


def test_load_data_counts_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fl_actors.learner import load_data

    (data_dir,) = write_digits_partitions(tmp_path, count=1)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        assert load_data(_job(data_dir)) == {"samples": 1347, "test_samples": 450}
    finally:
        for name in ("model_manager", "data_manager"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize(("split", "expected"), [(([1, 2, 3], [0, 1, 0]), 3), ([[1], [2]], 2), (list(range(5)), 5)])
def test_count_samples(split: object, expected: int) -> None:
    assert ml_repo.count_samples(split) == expected


def test_count_samples_of_a_data_loader_counts_its_dataset_not_its_batches() -> None:
    class Loader:  # the shape of torch.utils.data.DataLoader: len() is the number of batches
        dataset = tuple(range(70))

        def __len__(self) -> int:
            return 3

    assert ml_repo.count_samples(Loader()) == 70


def test_fit_results_may_carry_a_train_loss() -> None:
    assert ml_repo.parse_fit_result(10) == (10, None)
    assert ml_repo.parse_fit_result((10, 0.5)) == (10, 0.5)


def test_supernode_gets_data_dir_and_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fl_actors.learner import supernode_argv, supernode_env

    monkeypatch.setenv("FLOPS_MQTT_PASSWORD", "s3cret")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    job = _job(tmp_path)
    child = supernode_env(job, tmp_path / "home")
    assert child["FLOPS_DATA_DIR"] == str(tmp_path)
    assert child["FLWR_HOME"] == str(tmp_path / "home")
    assert "FLOPS_MQTT_PASSWORD" not in child and "MLFLOW_TRACKING_PASSWORD" not in child
    argv = supernode_argv(job)
    assert argv[argv.index("--port") + 1] == str(job.supernode_port)
    assert argv[argv.index("--superlink") + 1] == job.superlink_address
    assert "s3cret" not in " ".join(argv)
