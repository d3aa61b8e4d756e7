"""The Oakestra FLOps addon's published SLAs, byte for byte, against the real API.

Only ``ml_repo_url`` is pointed at this suite's git server; every classic project SLA is accepted (202)
and cancelled (the hierarchical ones train in test_hierarchical.py), the mock SLAs the clear offline-datasets 422.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from flops_common.sla import MEMORY_FLOOR_MB, ModelFlavor
from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, wait_final

pytestmark = pytest.mark.e2e

ADDON = Path(__file__).resolve().parents[1] / "data" / "addon_slas"
# The addon's example repo each SLA names, and the FLOps example of the same flavor served here.
CLASSIC = {
    "projects/mnist_sklearn_small": "digits_sklearn",
    "projects/mnist_sklearn_large": "digits_sklearn",
    "projects/cifar10_pytorch": "digits_pytorch",
    "legacy/cifar10_keras": "digits_keras",
}
MOCKS = ["mocks/mnist_simple", "mocks/mnist_multi", "mocks/cifar10_simple"]


def _post(suite: EmbeddedSuite, path: str, body: bytes) -> httpx.Response:
    """POST raw JSON bytes with the admin token (no client-side re-encoding)."""
    headers = {"Authorization": f"Bearer {suite.admin_token()}", "Content-Type": "application/json"}
    return httpx.post(f"{suite.api_url}{path}", content=body, headers=headers, timeout=30)


def _pointed_here(name: str, url: str) -> bytes:
    """The published bytes with only the repo URL replaced."""
    raw = (ADDON / f"{name}.json").read_bytes()
    published = json.loads(raw)["ml_repo_url"].encode()
    assert raw.count(published) == 1
    return raw.replace(published, url.encode())


@pytest.mark.parametrize("name", list(CLASSIC))
def test_classic_addon_sla_is_accepted_as_published(suite: EmbeddedSuite, admin: FlopsClient, name: str) -> None:
    body = _pointed_here(name, suite.git_url(CLASSIC[name]))
    response = _post(suite, "/api/flops/projects", body)
    assert response.status_code == 202, response.text
    project_id = response.json()["project_id"]
    project = admin.project(project_id)
    published = json.loads(body)
    assert project["sla"]["ml_model_flavor"] == published["ml_model_flavor"]
    assert project["sla"]["use_devel_base_images"] is published["use_devel_base_images"]
    # The addon's 100 MB would kill an actor: the stored limit is the flavor's floor.
    floor = MEMORY_FLOOR_MB[ModelFlavor(published["ml_model_flavor"])]
    assert project["sla"]["resource_constraints"]["memory"] == floor
    admin.cancel(project_id)
    project = wait_final(admin, project_id, timeout_s=120)
    assert project["status"] == "cancelled", (project["status"], project.get("cause"))
    assert_nothing_left(suite, project)


@pytest.mark.parametrize("name", MOCKS)
def test_addon_mock_sla_gets_the_offline_datasets_422(suite: EmbeddedSuite, name: str) -> None:
    raw = (ADDON / f"{name}.json").read_bytes()
    response = _post(suite, "/api/flops/mocks", raw)
    assert response.status_code == 422, response.text
    dataset = json.loads(raw)["mock_data_configuration"]["dataset_name"]
    message = response.json()["detail"][0]["msg"]
    assert f"dataset {dataset!r} is not available offline" in message
    assert "digits, iris, breast_cancer, wine" in message


def test_addon_mock_shape_with_an_offline_dataset_partitions_it(suite: EmbeddedSuite, admin: FlopsClient) -> None:
    config: dict[str, Any] = {"dataset_name": "digits", "number_of_partitions": 2, "data_tag": "addon-digits"}
    body = {"customerID": "Admin", "mock_data_configuration": config}
    response = _post(suite, "/api/flops/mocks", json.dumps(body).encode())
    assert response.status_code == 201, response.text
    result = response.json()
    assert [p["node"] for p in result["partitions"]] == ["learner-0", "learner-1"]
    tagged = {n["name"] for n in admin.nodes() if "addon-digits" in n["data_tags"]}
    assert tagged == {"learner-0", "learner-1"}
    too_many = {"customerID": "Admin", "mock_data_configuration": config | {"number_of_partitions": 9}}
    response = _post(suite, "/api/flops/mocks", json.dumps(too_many).encode())
    assert response.status_code == 422
    assert "9 partitions need as many learner nodes; there are 4" in response.json()["detail"][0]["msg"]
