"""The Flower run configuration of a FLOps app: its keys and defaults (once, in :class:`RunSettings`).

Flower takes a run's configuration only as flat scalars under keys the app declares in its
``pyproject.toml`` (``[tool.flwr.app.config]``, written from :func:`declared_config`); the aggregator
sets them for each run (``flwr run --run-config``, :func:`for_job`); the ServerApp parses them back
(:meth:`RunSettings.from_run_config`). Field ``x_y`` of :class:`RunSettings` is the key ``x-y``.

The SLA's training configuration is the one structured value: it travels whole, as its own JSON,
under the key ``training`` (encoded and decoded only here), and the same pydantic model checks it
at both ends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from flops_common.jobs import AggregatorJob
from flops_common.sla import ModelFlavor, TrainingConfiguration

Scalar = str | int | float | bool


def _key(field_name: str) -> str:
    return field_name.replace("_", "-")


class RunSettings(BaseModel):
    """What the ServerApp needs to know about one training run."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=_key, populate_by_name=True)

    training: TrainingConfiguration  # no default: every run sets it
    flavor: ModelFlavor = ModelFlavor.SKLEARN
    project_id: str = ""
    eval_in_train: bool = True  # evaluate the global model inside train replies (fewer exchanges)
    # how often the ServerApp polls the SuperLink for replies: a loopback HTTP call of ~1 ms CPU, while
    # every poll interval adds half of itself to each exchange on average
    poll_interval_s: float = 0.1
    connect_timeout_s: float = 300.0  # how long to wait for min_available_clients learners
    clusters: int = 0  # a hierarchical root: the cluster aggregators deployed (it waits for all, needs min_clusters)

    @field_validator("training", mode="before")
    @classmethod
    def _decode_training(cls, value: Any) -> Any:
        if value == "":
            raise ValueError("the run config holds no training configuration (the aggregator sets it)")
        return TrainingConfiguration.model_validate_json(value) if isinstance(value, str) else value

    @field_serializer("training")
    def _encode_training(self, training: TrainingConfiguration) -> str:
        return training.model_dump_json()

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any]) -> RunSettings:
        """Parse a Flower run config (``context.run_config``); missing keys take the defaults."""
        return cls.model_validate(dict(config))

    def to_run_config(self) -> dict[str, Scalar]:
        """The settings as Flower run config values (flat scalars under their keys)."""
        values: dict[str, Scalar] = self.model_dump(mode="json", by_alias=True)
        return values

    @property
    def evaluation_enabled(self) -> bool:
        """Whether learners evaluate the global model at all."""
        fraction = self.training.strategy.options.get("fraction_evaluate", 1.0)
        return self.training.min_evaluate_clients > 0 and float(fraction) > 0


def declared_config() -> dict[str, Scalar]:
    """The keys a FLOps app declares, with their defaults (``training`` is declared empty)."""
    declared: dict[str, Scalar] = {}
    for name, info in RunSettings.model_fields.items():
        default = "" if info.is_required() else info.default
        declared[info.alias or _key(name)] = default.value if isinstance(default, ModelFlavor) else default
    return declared


def for_job(job: AggregatorJob, connect_timeout_s: float) -> dict[str, Scalar]:
    """The run config values of one aggregator job (passed to ``flwr run --run-config``)."""
    settings = RunSettings(
        training=job.training,
        flavor=job.flavor,
        project_id=job.project_id,
        connect_timeout_s=connect_timeout_s,
        clusters=job.clusters,
    )
    return settings.to_run_config()


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string once non-ASCII stays literal (no surrogate escapes)
    # and DEL, which JSON leaves raw and TOML forbids, is escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(values: Mapping[str, Scalar]) -> str:
    """Render flat run config values as TOML ``"key" = value`` lines."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, float):
            rendered = repr(value)
        elif isinstance(value, int):
            rendered = str(value)
        else:
            rendered = _toml_string(value)
        lines.append(f"{_toml_string(key)} = {rendered}")
    return "\n".join(lines) + "\n"
