"""The Flower run configuration of a FLOps app: keys, defaults, parsing and overrides.

Defaults go into the app's ``pyproject.toml`` (``[tool.flwr.app.config]``); the aggregator
overrides them for each run from its ``AggregatorJob``; the ServerApp reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flops_common.jobs import AggregatorJob
from flops_common.sla import ModelFlavor, StrategyName

ROUNDS = "num-server-rounds"
STRATEGY = "strategy"
STRATEGY_OPTIONS = "strategy-options"  # JSON object: keyword options of the strategy
MIN_FIT = "min-fit-clients"
MIN_EVALUATE = "min-evaluate-clients"
MIN_AVAILABLE = "min-available-clients"
ROUND_TIMEOUT = "round-timeout-s"
FLAVOR = "flavor"
PROJECT_ID = "project-id"
EVAL_IN_TRAIN = "eval-in-train"  # evaluate the global model inside train replies (fewer exchanges)
POLL_INTERVAL = "poll-interval-s"  # how often the ServerApp polls the SuperLink for replies
CONNECT_TIMEOUT = "connect-timeout-s"  # how long to wait for min-available-clients learners

DEFAULTS: dict[str, str | int | float | bool] = {
    ROUNDS: 3,
    STRATEGY: StrategyName.FEDAVG.value,
    STRATEGY_OPTIONS: "{}",
    MIN_FIT: 1,
    MIN_EVALUATE: 1,
    MIN_AVAILABLE: 1,
    ROUND_TIMEOUT: 120.0,
    FLAVOR: ModelFlavor.SKLEARN.value,
    PROJECT_ID: "",
    EVAL_IN_TRAIN: True,
    POLL_INTERVAL: 0.5,
    CONNECT_TIMEOUT: 300.0,
}


@dataclass(frozen=True)
class RunSettings:
    """What the ServerApp needs to know about one training run."""

    rounds: int = 3
    strategy: StrategyName = StrategyName.FEDAVG
    strategy_options: dict[str, Any] = field(default_factory=dict)
    min_fit_clients: int = 1
    min_evaluate_clients: int = 1
    min_available_clients: int = 1
    round_timeout_s: float = 120.0
    flavor: ModelFlavor = ModelFlavor.SKLEARN
    project_id: str = ""
    eval_in_train: bool = True
    poll_interval_s: float = 0.5
    connect_timeout_s: float = 300.0

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any]) -> RunSettings:
        """Parse a Flower run config (``context.run_config``); missing keys take the defaults."""
        values = {**DEFAULTS, **dict(config)}
        options = json.loads(str(values[STRATEGY_OPTIONS]) or "{}")
        if not isinstance(options, dict):
            raise ValueError(f"{STRATEGY_OPTIONS} must be a JSON object, got {values[STRATEGY_OPTIONS]!r}")
        return cls(
            rounds=int(values[ROUNDS]),
            strategy=StrategyName(str(values[STRATEGY])),
            strategy_options=options,
            min_fit_clients=int(values[MIN_FIT]),
            min_evaluate_clients=int(values[MIN_EVALUATE]),
            min_available_clients=int(values[MIN_AVAILABLE]),
            round_timeout_s=float(values[ROUND_TIMEOUT]),
            flavor=ModelFlavor(str(values[FLAVOR])),
            project_id=str(values[PROJECT_ID]),
            eval_in_train=bool(values[EVAL_IN_TRAIN]),
            poll_interval_s=float(values[POLL_INTERVAL]),
            connect_timeout_s=float(values[CONNECT_TIMEOUT]),
        )

    @property
    def evaluation_enabled(self) -> bool:
        """Whether learners evaluate the global model at all."""
        return self.min_evaluate_clients > 0 and float(self.strategy_options.get("fraction_evaluate", 1.0)) > 0

    def as_params(self) -> dict[str, str]:
        """The settings as flat strings, e.g. to log them as MLflow params."""
        return {
            "rounds": str(self.rounds),
            "strategy": self.strategy.value,
            "strategy_options": json.dumps(self.strategy_options, sort_keys=True),
            "min_fit_clients": str(self.min_fit_clients),
            "min_evaluate_clients": str(self.min_evaluate_clients),
            "min_available_clients": str(self.min_available_clients),
            "round_timeout_s": str(self.round_timeout_s),
            "flavor": self.flavor.value,
            "eval_in_train": str(self.eval_in_train),
        }


def overrides_for_job(job: AggregatorJob, connect_timeout_s: float) -> dict[str, str | int | float | bool]:
    """The run config values of one aggregator job (passed to ``flwr run --run-config``)."""
    return {
        ROUNDS: job.rounds,
        STRATEGY: job.strategy.name.value,
        STRATEGY_OPTIONS: json.dumps(job.strategy.options, sort_keys=True),
        MIN_FIT: job.min_fit_clients,
        MIN_EVALUATE: job.min_evaluate_clients,
        MIN_AVAILABLE: job.min_available_clients,
        ROUND_TIMEOUT: float(job.round_timeout_s),
        FLAVOR: job.flavor.value,
        PROJECT_ID: job.project_id,
        CONNECT_TIMEOUT: float(connect_timeout_s),
    }


def to_toml(values: Mapping[str, str | int | float | bool]) -> str:
    """Render flat run config values as TOML ``key = value`` lines (JSON strings are valid TOML)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int | float):
            rendered = repr(float(value)) if isinstance(value, float) else str(value)
        else:
            rendered = json.dumps(value)
        lines.append(f'"{key}" = {rendered}')
    return "\n".join(lines) + "\n"
