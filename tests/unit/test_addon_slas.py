"""The Oakestra FLOps addon's published SLAs, byte for byte: what FLOps accepts and what it refuses, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flops_common.sla import MEMORY_FLOOR_MB, ModelFlavor, PostTrainingStep, ProjectSLA
from flops_manager.mock_data import BundledDataset, MockDataRequest

ADDON = Path(__file__).resolve().parents[1] / "data" / "addon_slas"
CLASSIC = [
    "projects/mnist_sklearn_small",
    "projects/mnist_sklearn_large",
    "projects/cifar10_pytorch",
    "legacy/cifar10_keras",
]
HIERARCHICAL = ["projects/hierarchical_mnist_sklearn_small", "projects/hierarchical_mnist_sklearn_large"]
MOCKS = ["mocks/mnist_simple", "mocks/mnist_multi", "mocks/cifar10_simple"]


def _text(name: str) -> str:
    return (ADDON / f"{name}.json").read_text()


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_addon_sla_parses(name: str) -> None:
    raw = json.loads(_text(name))
    sla = ProjectSLA.model_validate_json(_text(name))
    assert sla.customerID == raw["customerID"]
    assert sla.ml_model_flavor.value == raw["ml_model_flavor"]
    assert sla.use_devel_base_images is raw["use_devel_base_images"]
    assert sla.training_configuration.training_rounds == raw["training_configuration"]["training_rounds"]
    assert [s.value for s in sla.post_training_steps] == raw.get("post_training_steps", [])


@pytest.mark.parametrize("name", CLASSIC)
def test_addon_memory_of_100_mb_is_raised_to_the_flavor_floor_with_a_warning(name: str) -> None:
    sla = ProjectSLA.model_validate_json(_text(name))
    floor = MEMORY_FLOOR_MB[sla.ml_model_flavor]
    assert sla.resource_constraints.memory == floor
    assert sla.warnings == [
        f"resource_constraints.memory 100 MB is below what a {sla.ml_model_flavor.value} actor needs; "
        f"raised to {floor} MB"
    ]
    assert sla.model_copy().warnings == sla.warnings


def test_memory_at_or_above_the_floor_is_kept_without_warning() -> None:
    raw = json.loads(_text("projects/mnist_sklearn_small"))
    raw["resource_constraints"]["memory"] = MEMORY_FLOOR_MB[ModelFlavor.SKLEARN]
    sla = ProjectSLA.model_validate(raw)
    assert sla.resource_constraints.memory == MEMORY_FLOOR_MB[ModelFlavor.SKLEARN]
    assert sla.warnings == []
    # A stored SLA validates again to the same limit and no warning.
    again = ProjectSLA.model_validate(sla.model_dump(mode="json"))
    assert again == sla and again.warnings == []


@pytest.mark.parametrize("name", HIERARCHICAL)
def test_hierarchical_addon_sla_is_accepted_as_published(name: str) -> None:
    raw = json.loads(_text(name))["training_configuration"]
    training = ProjectSLA.model_validate_json(_text(name)).training_configuration
    assert training.hierarchical and training.min_clusters is None
    assert (training.training_cycles, training.training_rounds) == (raw["training_cycles"], raw["training_rounds"])
    assert training.min_fit_clients == raw["min_fit_clients"]


def _addon(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(_text("projects/mnist_sklearn_small"))
    return raw | changes


def test_customer_id_is_an_alias_of_customer_id_field() -> None:
    raw = _addon()
    raw["customer_id"] = raw.pop("customerID")
    sla = ProjectSLA.model_validate(raw)
    assert sla.customerID == "Admin"
    assert "customerID" in sla.model_dump() and "customer_id" not in sla.model_dump()


def test_both_customer_id_spellings_at_once_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        ProjectSLA.model_validate(_addon(customer_id="Other"))
    assert info.value.errors()[0]["loc"] == ("customer_id",)


def test_deploy_inference_service_is_read_as_deploy_trained_model_image() -> None:
    sla = ProjectSLA.model_validate(_addon(post_training_steps=["deploy_inference_service"]))
    assert sla.post_training_steps == [PostTrainingStep.DEPLOY_TRAINED_MODEL_IMAGE]


def test_unknown_post_training_step_and_unknown_field_stay_422() -> None:
    with pytest.raises(ValidationError) as info:
        ProjectSLA.model_validate(_addon(post_training_steps=["serve_forever"]))
    assert info.value.errors()[0]["loc"] == ("post_training_steps", 0)
    with pytest.raises(ValidationError) as info:
        ProjectSLA.model_validate(_addon(use_devel_base_image=True))
    assert info.value.errors()[0]["loc"] == ("use_devel_base_image",)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("flavor", ["sklearn", "pytorch", "keras", "tensorflow"])
def test_every_addon_flavor_is_accepted(flavor: str) -> None:
    assert ProjectSLA.model_validate(_addon(ml_model_flavor=flavor)).ml_model_flavor.value == flavor


@pytest.mark.parametrize("name", MOCKS)
def test_addon_mock_sla_parses_to_the_clear_offline_error(name: str) -> None:
    dataset = json.loads(_text(name))["mock_data_configuration"]["dataset_name"]
    with pytest.raises(ValidationError) as info:
        MockDataRequest.model_validate_json(_text(name))
    errors = info.value.errors()
    assert len(errors) == 1 and errors[0]["loc"] == ("dataset",)
    assert f"dataset {dataset!r} is not available offline" in errors[0]["msg"]
    assert "digits, iris, breast_cancer, wine" in errors[0]["msg"]


def test_addon_mock_shape_with_an_offline_dataset_maps_to_the_native_request() -> None:
    raw = json.loads(_text("mocks/mnist_multi"))
    raw["mock_data_configuration"]["dataset_name"] = "digits"
    request = MockDataRequest.model_validate(raw)
    assert (request.dataset, request.partitions, request.data_tag) == (BundledDataset.DIGITS, 3, "mnist")


def test_addon_mock_shape_with_an_unknown_configuration_field_is_refused() -> None:
    raw = json.loads(_text("mocks/mnist_simple"))
    raw["mock_data_configuration"]["partition_count"] = 2
    with pytest.raises(ValidationError, match=r"unknown fields \['partition_count'\]"):
        MockDataRequest.model_validate(raw)
