"""Maps an SLA strategy name and its options to a ``flwr.serverapp.strategy`` instance."""

from __future__ import annotations

import inspect
from typing import Any

from flwr.serverapp import strategy as flower_strategies
from flwr.serverapp.strategy import Strategy

from flops_common.sla import StrategyName

STRATEGY_CLASSES: dict[StrategyName, type[flower_strategies.FedAvg]] = {
    StrategyName.FEDAVG: flower_strategies.FedAvg,
    StrategyName.FEDPROX: flower_strategies.FedProx,
    StrategyName.FEDADAGRAD: flower_strategies.FedAdagrad,
    StrategyName.FEDADAM: flower_strategies.FedAdam,
    StrategyName.FEDYOGI: flower_strategies.FedYogi,
    StrategyName.FEDMEDIAN: flower_strategies.FedMedian,
    StrategyName.FEDTRIMMEDAVG: flower_strategies.FedTrimmedAvg,
    StrategyName.FEDAVGM: flower_strategies.FedAvgM,
}

# Set by FLOps itself: node counts come from the SLA, record keys and aggregation functions
# are what FLOps' ClientApp speaks.
RESERVED_OPTIONS = frozenset(
    {
        "min_train_nodes",
        "min_evaluate_nodes",
        "min_available_nodes",
        "weighted_by_key",
        "arrayrecord_key",
        "configrecord_key",
        "train_metrics_aggr_fn",
        "evaluate_metrics_aggr_fn",
    }
)


def allowed_options(name: StrategyName) -> list[str]:
    """The constructor options an SLA may set for a strategy."""
    params = inspect.signature(STRATEGY_CLASSES[name].__init__).parameters
    return sorted(p for p in params if p != "self" and p not in RESERVED_OPTIONS)


def build_strategy(
    name: StrategyName,
    options: dict[str, Any],
    min_fit_clients: int,
    min_evaluate_clients: int,
    min_available_clients: int,
) -> Strategy:
    """A configured strategy; unknown or reserved options raise ``ValueError`` naming them.

    ``min_evaluate_clients == 0`` turns federated evaluation off (``fraction_evaluate = 0``)
    unless the options set ``fraction_evaluate`` themselves.
    """
    allowed = allowed_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"strategy {name.value} does not accept the options {unknown}; allowed: {', '.join(allowed)}")
    kwargs = dict(options)
    if min_evaluate_clients == 0:
        kwargs.setdefault("fraction_evaluate", 0.0)
    return STRATEGY_CLASSES[name](
        min_train_nodes=min_fit_clients,
        min_evaluate_nodes=min_evaluate_clients,
        min_available_nodes=min_available_clients,
        **kwargs,
    )


class InvalidStrategyOption(ValueError):
    """An SLA strategy option the chosen strategy does not accept (placeholder until the contract merge)."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


def validate_strategy_options(name: StrategyName, options: dict[str, Any]) -> None:
    """Raise InvalidStrategyOption for an option the strategy does not accept."""
    allowed = allowed_options(name)
    for option in sorted(options):
        if option not in allowed:
            raise InvalidStrategyOption(option, f"{name.value} does not accept {option!r}; accepted: {allowed}")
