"""SLA strategies: options checked against Flower's real constructors, built with FLOps' node counts."""

from __future__ import annotations

from typing import Any

import pytest
from flwr.serverapp import strategy as flower

from fl_actors.strategies import (
    STRATEGY_CLASSES,
    InvalidStrategyOption,
    allowed_options,
    build_strategy,
    validate_strategy_options,
)
from flops_common.sla import RESERVED_STRATEGY_OPTIONS, StrategyConfig, StrategyName, TrainingConfiguration


def _training(
    name: StrategyName = StrategyName.FEDAVG, options: dict[str, Any] | None = None, **counts: int
) -> TrainingConfiguration:
    strategy = StrategyConfig(name=name, options=options or {})
    return TrainingConfiguration.model_validate({"data_tags": ["d"], "strategy": strategy, **counts})


def _refusal(name: StrategyName, options: dict[str, object]) -> InvalidStrategyOption:
    with pytest.raises(InvalidStrategyOption) as info:
        validate_strategy_options(name, options)
    assert isinstance(info.value, ValueError)
    return info.value


def test_an_unknown_option_is_named_with_the_accepted_ones() -> None:
    refused = _refusal(StrategyName.FEDADAM, {"eta": 0.1, "eta_typo": 0.1})
    assert refused.option == "eta_typo"
    assert refused.reason == (
        "FedAdam does not accept 'eta_typo'; "
        "accepted: beta_1, beta_2, eta, eta_l, fraction_evaluate, fraction_train, tau"
    )
    assert str(refused) == refused.reason


@pytest.mark.parametrize("value", ["fast", "0.1", True, None, [0.1]])
def test_a_value_of_the_wrong_type_is_refused(value: object) -> None:
    refused = _refusal(StrategyName.FEDADAM, {"eta": value})
    assert refused.option == "eta"
    assert refused.reason.startswith(f"FedAdam option 'eta' must be float, not {value!r}")


def test_ints_are_fine_for_floats_and_strings_for_strings() -> None:
    validate_strategy_options(StrategyName.FEDADAM, {"eta": 1, "beta_1": 0.8})
    validate_strategy_options(StrategyName.FEDAVGM, {"server_momentum": 0})
    with pytest.raises(InvalidStrategyOption, match="must be float"):
        validate_strategy_options(StrategyName.FEDPROX, {"proximal_mu": "1"})


@pytest.mark.parametrize("option", sorted(RESERVED_STRATEGY_OPTIONS))
def test_reserved_options_say_where_their_value_comes_from(option: str) -> None:
    refused = _refusal(StrategyName.FEDADAM, {option: 1})
    assert refused.option == option
    assert f"{option!r} is set by FLOps from {RESERVED_STRATEGY_OPTIONS[option]}" in refused.reason
    assert "FedAdam accepts: beta_1" in refused.reason


def test_the_node_counts_name_their_sla_fields() -> None:
    assert "training_configuration.min_fit_clients" in _refusal(StrategyName.FEDAVG, {"min_train_nodes": 1}).reason


@pytest.mark.parametrize("name", list(StrategyName))
def test_every_sla_strategy_builds_with_its_defaults_and_the_sla_node_counts(name: StrategyName) -> None:
    assert set(STRATEGY_CLASSES) == set(StrategyName)
    validate_strategy_options(name, {})
    strategy = build_strategy(_training(name, min_available_clients=3, min_fit_clients=2, min_evaluate_clients=1))
    assert type(strategy) is STRATEGY_CLASSES[name]
    assert type(strategy).__name__ == name.value
    assert (strategy.min_train_nodes, strategy.min_evaluate_nodes, strategy.min_available_nodes) == (2, 1, 3)


def test_options_reach_the_constructor() -> None:
    strategy = build_strategy(_training(StrategyName.FEDPROX, {"proximal_mu": 0.3, "fraction_train": 0.5}))
    assert isinstance(strategy, flower.FedProx)
    assert strategy.proximal_mu == 0.3
    assert strategy.fraction_train == 0.5


def test_building_refuses_what_validation_refuses() -> None:
    with pytest.raises(InvalidStrategyOption, match=r"FedAvg does not accept 'learning_rate'; accepted: .*fraction"):
        build_strategy(_training(options={"learning_rate": 0.1}))


def test_no_evaluation_clients_turns_federated_evaluation_off() -> None:
    strategy = build_strategy(_training(min_evaluate_clients=0))
    assert strategy.fraction_evaluate == 0.0


def test_allowed_options_per_strategy() -> None:
    assert "server_momentum" in allowed_options(StrategyName.FEDAVGM)
    assert not set(RESERVED_STRATEGY_OPTIONS) & set(allowed_options(StrategyName.FEDAVG))
