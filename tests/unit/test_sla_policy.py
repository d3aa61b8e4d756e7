"""What a deployment refuses at submit, as the API's 422 will name it."""

from __future__ import annotations

import pytest

from flops_common.sla import ProjectSLA
from flops_manager.projects.sla_policy import SlaRejected, check_sla
from flops_manager.settings import Settings
from tests.unit.engine_fakes import sla


def _with_strategy(name: str, **options: object) -> ProjectSLA:
    return sla(strategy={"name": name, "options": options})


def test_a_typo_in_strategy_options_names_the_option_and_what_is_accepted() -> None:
    with pytest.raises(SlaRejected) as info:
        check_sla(Settings(), _with_strategy("FedAdam", eta_typo=0.1))
    assert info.value.field_name == "training_configuration.strategy.options.eta_typo"
    assert "eta_typo" in info.value.reason and "eta_l" in info.value.reason and "beta_1" in info.value.reason


def test_a_wrong_type_is_refused() -> None:
    with pytest.raises(SlaRejected) as info:
        check_sla(Settings(), _with_strategy("FedAdam", eta="fast"))
    assert info.value.field_name == "training_configuration.strategy.options.eta"


def test_good_options_pass() -> None:
    check_sla(Settings(), _with_strategy("FedAdam", eta=0.05, beta_1=0.9))


def test_repo_rules_of_the_deployment() -> None:
    local = sla().model_copy(update={"ml_repo_url": "file:///srv/repo"})
    with pytest.raises(SlaRejected, match="file:// repositories are disabled"):
        check_sla(Settings(allow_file_repos=False), local)
    with pytest.raises(SlaRejected, match="not one of the allowed repo hosts"):
        check_sla(Settings(repo_hosts=["example.org"]), sla())
