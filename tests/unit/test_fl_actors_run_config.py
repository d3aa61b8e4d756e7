"""Run config: declared keys, one job's values through TOML back into settings, MLflow params."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from fl_actors import run_config
from fl_actors.run_config import RunSettings
from fl_actors.tracking import run_params
from flops_common.sla import ModelFlavor, StrategyConfig, StrategyName, TrainingConfiguration
from tests.unit.fl_actors_fakes import aggregator_job

FEDPROX = StrategyConfig(name=StrategyName.FEDPROX, options={"proximal_mu": 0.1, "fraction_train": 0.5})


def _through_flower(values: dict[str, run_config.Scalar]) -> RunSettings:
    """What the ServerApp sees: the app's declared defaults fused with the run's TOML overrides."""
    parsed = tomllib.loads(run_config.to_toml(values))
    assert parsed == values
    return RunSettings.from_run_config({**run_config.declared_config(), **parsed})


def test_a_jobs_training_configuration_reaches_the_server_app_whole() -> None:
    job = aggregator_job(
        ModelFlavor.PYTORCH,
        training_rounds=5,
        strategy=FEDPROX,
        min_available_clients=3,
        min_fit_clients=2,
        learners=4,
        round_timeout_s=45,
    )
    settings = _through_flower(run_config.for_job(job, connect_timeout_s=120))
    assert settings.training == job.training
    assert settings.flavor == ModelFlavor.PYTORCH
    assert settings.project_id == "p-1"
    assert settings.connect_timeout_s == 120.0
    assert (settings.eval_in_train, settings.poll_interval_s) == (True, 0.1)


def test_every_declared_key_is_a_settings_field_with_its_default() -> None:
    declared = run_config.declared_config()
    assert declared == {
        "training": "",
        "flavor": "sklearn",
        "project-id": "",
        "eval-in-train": True,
        "poll-interval-s": 0.1,
        "connect-timeout-s": 300.0,
        "clusters": 0,
    }
    training = TrainingConfiguration(data_tags=["d"])
    assert RunSettings.from_run_config({**declared, "training": training.model_dump_json()}) == RunSettings(
        training=training
    )


def test_a_run_without_training_configuration_is_refused() -> None:
    with pytest.raises(ValidationError, match="holds no training configuration"):
        RunSettings.from_run_config(run_config.declared_config())
    with pytest.raises(ValidationError, match="training_rounds"):
        RunSettings.from_run_config({"training": '{"data_tags": ["d"], "training_rounds": 0}'})


def test_strings_that_are_hard_for_toml_survive() -> None:
    options: dict[str, float | int | str | bool] = {"note": 'quote " backslash \\ del \x7f emoji \U0001f600 newline \n'}
    job = aggregator_job(strategy=StrategyConfig(options=options), data_tags=["d\U0001d400"])
    assert _through_flower(run_config.for_job(job, connect_timeout_s=1)).training == job.training


@pytest.mark.parametrize(
    ("options", "min_evaluate", "enabled"),
    [({}, 1, True), ({}, 0, False), ({"fraction_evaluate": 0.0}, 2, False)],
)
def test_evaluation_can_be_switched_off(options: dict, min_evaluate: int, enabled: bool) -> None:
    strategy = StrategyConfig(options=options)
    training = TrainingConfiguration(
        data_tags=["d"], strategy=strategy, min_available_clients=2, min_evaluate_clients=min_evaluate
    )
    assert RunSettings(training=training).evaluation_enabled is enabled


def test_mlflow_params_use_the_sla_field_names() -> None:
    job = aggregator_job(training_rounds=5, strategy=FEDPROX, min_available_clients=3)
    params = run_params(RunSettings(training=job.training, flavor=job.flavor))
    assert params == {
        "mode": "classic",
        "data_tags": '["digits"]',
        "training_rounds": "5",
        "min_available_clients": "3",
        "min_fit_clients": "1",
        "min_evaluate_clients": "1",
        "learners": "3",
        "strategy.name": "FedProx",
        "strategy.options.proximal_mu": "0.1",
        "strategy.options.fraction_train": "0.5",
        "round_timeout_s": "120.0",
        "flavor": "sklearn",
        "eval_in_train": "True",
    }
