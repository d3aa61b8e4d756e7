"""Run config: defaults, job overrides, TOML rendering and parsing back."""

from __future__ import annotations

import tomllib

import pytest

from fl_actors import run_config
from fl_actors.run_config import RunSettings
from flops_common.jobs import AggregatorJob, BusConfig
from flops_common.sla import ModelFlavor, StrategyConfig, StrategyName


def _job() -> AggregatorJob:
    return AggregatorJob(
        project_id="p-1",
        bus=BusConfig(),
        flavor=ModelFlavor.PYTORCH,
        app_dir="/app",
        superlink_port=9100,
        rounds=5,
        strategy=StrategyConfig(name=StrategyName.FEDPROX, options={"proximal_mu": 0.1, "fraction_train": 0.5}),
        min_available_clients=3,
        min_fit_clients=2,
        min_evaluate_clients=1,
        learners=3,
        round_timeout_s=45,
        mlflow_tracking_uri="http://127.0.0.1:5000",
        mlflow_experiment="p-1",
    )


def test_job_overrides_survive_toml_and_parse_into_settings() -> None:
    values = run_config.overrides_for_job(_job(), connect_timeout_s=120)
    parsed = tomllib.loads(run_config.to_toml(values))
    assert parsed == values
    settings = RunSettings.from_run_config({**run_config.DEFAULTS, **parsed})
    assert settings.rounds == 5
    assert settings.strategy == StrategyName.FEDPROX
    assert settings.strategy_options == {"fraction_train": 0.5, "proximal_mu": 0.1}
    assert (settings.min_fit_clients, settings.min_evaluate_clients, settings.min_available_clients) == (2, 1, 3)
    assert settings.round_timeout_s == 45.0
    assert settings.flavor == ModelFlavor.PYTORCH
    assert settings.project_id == "p-1"
    assert settings.connect_timeout_s == 120.0
    assert settings.eval_in_train is True
    assert settings.as_params()["strategy_options"] == '{"fraction_train": 0.5, "proximal_mu": 0.1}'


def test_defaults_parse() -> None:
    assert RunSettings.from_run_config({}) == RunSettings()


@pytest.mark.parametrize(
    ("options", "min_evaluate", "enabled"),
    [({}, 1, True), ({}, 0, False), ({"fraction_evaluate": 0.0}, 2, False)],
)
def test_evaluation_can_be_switched_off(options: dict, min_evaluate: int, enabled: bool) -> None:
    settings = RunSettings(strategy_options=options, min_evaluate_clients=min_evaluate)
    assert settings.evaluation_enabled is enabled


def test_strategy_options_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        RunSettings.from_run_config({run_config.STRATEGY_OPTIONS: "[1]"})
