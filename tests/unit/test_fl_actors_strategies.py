"""SLA strategy names map to flwr.serverapp.strategy classes with FLOps' node counts."""

from __future__ import annotations

import pytest
from flwr.serverapp import strategy as flower

from fl_actors.strategies import allowed_options, build_strategy
from flops_common.sla import StrategyName


@pytest.mark.parametrize("name", list(StrategyName))
def test_every_sla_strategy_builds_with_the_sla_node_counts(name: StrategyName) -> None:
    strategy = build_strategy(name, {}, min_fit_clients=2, min_evaluate_clients=1, min_available_clients=3)
    assert type(strategy).__name__ == name.value
    assert isinstance(strategy, flower.FedAvg)
    assert (strategy.min_train_nodes, strategy.min_evaluate_nodes, strategy.min_available_nodes) == (2, 1, 3)


def test_options_reach_the_constructor() -> None:
    strategy = build_strategy(StrategyName.FEDPROX, {"proximal_mu": 0.3, "fraction_train": 0.5}, 1, 1, 1)
    assert isinstance(strategy, flower.FedProx)
    assert strategy.proximal_mu == 0.3
    assert strategy.fraction_train == 0.5


@pytest.mark.parametrize("option", ["weighted_by_key", "arrayrecord_key", "min_train_nodes", "no_such_option"])
def test_reserved_or_unknown_options_are_refused_with_the_allowed_list(option: str) -> None:
    with pytest.raises(ValueError, match=r"does not accept the options.*allowed: .*fraction_train"):
        build_strategy(StrategyName.FEDAVG, {option: 1}, 1, 1, 1)


def test_no_evaluation_clients_turns_federated_evaluation_off() -> None:
    strategy = build_strategy(StrategyName.FEDAVG, {}, 1, 0, 1)
    assert isinstance(strategy, flower.FedAvg)
    assert strategy.fraction_evaluate == 0.0


def test_allowed_options_per_strategy() -> None:
    assert "server_momentum" in allowed_options(StrategyName.FEDAVGM)
    assert "min_available_nodes" not in allowed_options(StrategyName.FEDAVG)
