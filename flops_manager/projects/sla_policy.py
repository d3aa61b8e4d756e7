"""What this deployment refuses in an SLA that is valid by shape: checked at submit, answered with a 422."""

from __future__ import annotations

from fl_actors.strategies import InvalidStrategyOption, validate_strategy_options
from flops_common.sla import ProjectSLA
from flops_manager.settings import Settings


class SlaRejected(ValueError):
    """The SLA is valid by shape but refused here; ``field_name`` is its dotted path."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


def check_sla(settings: Settings, sla: ProjectSLA) -> None:
    """Raise ``SlaRejected`` for a repo this deployment may not reach or strategy options Flower would refuse."""
    if sla.repo_scheme == "file" and not settings.allow_file_repos:
        raise SlaRejected("ml_repo_url", "file:// repositories are disabled on this deployment")
    allowed = settings.repo_hosts
    if allowed is not None and sla.repo_scheme != "file" and sla.repo_host not in allowed:
        raise SlaRejected("ml_repo_url", f"host {sla.repo_host!r} is not one of the allowed repo hosts {allowed}")
    strategy = sla.training_configuration.strategy
    try:
        validate_strategy_options(strategy.name, strategy.options)
    except InvalidStrategyOption as exc:
        raise SlaRejected(f"training_configuration.strategy.options.{exc.option}", exc.reason) from exc
