"""Maps an SLA's strategy to a ``flwr.serverapp.strategy`` instance, and checks its options first.

The options an SLA may set are read from the strategy's real constructor (names and annotated
types), so a new Flower release is checked by what it accepts, not by a copy of its signature.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from flwr.serverapp import strategy as flower_strategies
from pydantic import TypeAdapter, ValidationError

from flops_common.sla import StrategyName, TrainingConfiguration, reserved_option_reason

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


class InvalidStrategyOption(ValueError):
    """An SLA strategy option the chosen strategy does not accept, or of the wrong type."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(reason)
        self.option = option
        self.reason = reason


@cache
def _accepted(name: StrategyName) -> dict[str, Any]:
    """The constructor options an SLA may set, each with its annotated type."""
    init = STRATEGY_CLASSES[name].__init__
    hints = typing.get_type_hints(init)
    return {
        param: hints.get(param, Any)
        for param in inspect.signature(init).parameters
        if param != "self" and reserved_option_reason(param) is None
    }


def allowed_options(name: StrategyName) -> list[str]:
    """The constructor options an SLA may set for a strategy, sorted."""
    return sorted(_accepted(name))


def validate_strategy_options(name: StrategyName, options: Mapping[str, object]) -> None:
    """Raise :class:`InvalidStrategyOption` for the first option (by name) the strategy refuses.

    An option is refused when FLOps sets it itself, when the constructor has no such parameter,
    or when its value does not fit the parameter's annotation, strictly (``"0.1"`` is no float;
    ``1`` is one).
    """
    accepted = _accepted(name)
    listing = ", ".join(sorted(accepted))
    for option in sorted(options):
        value = options[option]
        reserved = reserved_option_reason(option)
        if reserved is not None:
            raise InvalidStrategyOption(option, f"{reserved}; {name.value} accepts: {listing}")
        if option not in accepted:
            raise InvalidStrategyOption(option, f"{name.value} does not accept {option!r}; accepted: {listing}")
        annotation = accepted[option]
        try:
            TypeAdapter(annotation).validate_python(value, strict=True)
        except ValidationError as exc:
            expected = getattr(annotation, "__name__", str(annotation))
            reason = f"{name.value} option {option!r} must be {expected}, not {value!r}: {exc.errors()[0]['msg']}"
            raise InvalidStrategyOption(option, reason) from None


def build_strategy(training: TrainingConfiguration) -> flower_strategies.FedAvg:
    """The configured strategy of a training configuration; refused options raise ``InvalidStrategyOption``.

    ``min_evaluate_clients == 0`` turns federated evaluation off (``fraction_evaluate = 0``)
    unless the options set ``fraction_evaluate`` themselves.
    """
    name, options = training.strategy.name, dict(training.strategy.options)
    validate_strategy_options(name, options)
    if training.min_evaluate_clients == 0:
        options.setdefault("fraction_evaluate", 0.0)
    return STRATEGY_CLASSES[name](
        min_train_nodes=training.min_fit_clients,
        min_evaluate_nodes=training.min_evaluate_clients,
        min_available_nodes=training.min_available_clients,
        **options,  # type: ignore[arg-type]  # checked against the constructor above
    )
