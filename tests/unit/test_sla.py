"""SLA validation: the anchor's fields are accepted; bad values name the field and the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flops_common.sla import ProjectSLA

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slas"


def _sla(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = json.loads((EXAMPLES / "digits_sklearn.json").read_text())
    for dotted, value in overrides.items():
        target = base
        *path, last = dotted.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return base


def _error(data: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as info:
        ProjectSLA.model_validate(data)
    first = info.value.errors()[0]
    return first["loc"], first["msg"]


@pytest.mark.parametrize("name", ["digits_sklearn.json", "digits_pytorch.json"])
def test_example_slas_are_valid(name: str) -> None:
    sla = ProjectSLA.model_validate_json((EXAMPLES / name).read_text())
    assert sla.training_configuration.learner_count == 2


def test_anchor_minimal_sla_is_accepted() -> None:
    anchor = {
        "customerID": "Admin",
        "verbose": True,
        "ml_repo_url": "https://example.org/flops_ml_repo_mnist_sklearn",
        "ml_model_flavor": "sklearn",
        "training_configuration": {
            "data_tags": ["mnist"],
            "training_rounds": 3,
            "min_available_clients": 1,
            "min_fit_clients": 1,
            "min_evaluate_clients": 1,
        },
        "post_training_steps": ["build_image_for_trained_model"],
    }
    sla = ProjectSLA.model_validate(anchor)
    assert sla.training_configuration.strategy.name == "FedAvg"
    assert sla.repo_scheme == "https"


def test_fit_clients_above_available_names_both() -> None:
    loc, msg = _error(_sla(training_configuration__min_fit_clients=3))
    assert loc == ("training_configuration",)
    assert "min_fit_clients (3) must not exceed min_available_clients (2)" in msg


def test_rounds_below_one() -> None:
    loc, msg = _error(_sla(training_configuration__training_rounds=0))
    assert loc == ("training_configuration", "training_rounds")
    assert "greater than or equal to 1" in msg


def test_unknown_flavor() -> None:
    loc, msg = _error(_sla(ml_model_flavor="caffe"))
    assert loc == ("ml_model_flavor",)
    assert "'sklearn'" in msg and "'pytorch'" in msg


@pytest.mark.parametrize("url", ["http://example.org/repo", "ftp://x/y", "/abs/path", "-uupload-pack=evil"])
def test_repo_url_scheme(url: str) -> None:
    loc, msg = _error(_sla(ml_repo_url=url))
    assert loc == ("ml_repo_url",)
    assert "scheme" in msg or "must not start with '-'" in msg


@pytest.mark.parametrize(
    "url", ["https://h/r.git", "ssh://git@h/r", "git@h:org/r.git", "git://127.0.0.1/r", "file:///x"]
)
def test_repo_url_accepted(url: str) -> None:
    ProjectSLA.model_validate(_sla(ml_repo_url=url))


@pytest.mark.parametrize("ref", ["--upload-pack=x", "a..b", "has space", "x^{}"])
def test_bad_git_ref(ref: str) -> None:
    loc, _ = _error(_sla(ml_repo_ref=ref))
    assert loc == ("ml_repo_ref",)


def test_unknown_field_is_rejected() -> None:
    loc, msg = _error(_sla(training_configuration__traning_rounds=3))
    assert loc == ("training_configuration", "traning_rounds")
    assert "Extra inputs are not permitted" in msg


def test_learners_below_available() -> None:
    _, msg = _error(_sla(training_configuration__learners=1))
    assert "learners (1) must be at least min_available_clients (2)" in msg


def test_strategy_options_cannot_override_client_counts() -> None:
    loc, msg = _error(_sla(training_configuration__strategy={"name": "FedAvg", "options": {"min_train_nodes": 1}}))
    assert loc[:2] == ("training_configuration", "strategy")
    assert "min_train_nodes" in msg


def test_unknown_strategy() -> None:
    loc, _ = _error(_sla(training_configuration__strategy={"name": "FedMagic"}))
    assert loc == ("training_configuration", "strategy", "name")
