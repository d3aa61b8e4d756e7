"""The manager API over real HTTP: authentication, 422s that name the field, tenant isolation."""

from __future__ import annotations

import httpx
import pytest

from flops_manager.cli.client import ApiError, FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import example_sla


def test_health_needs_no_token_everything_else_does(suite: EmbeddedSuite) -> None:
    assert httpx.get(f"{suite.api_url}/health").json()["status"] == "ok"
    for method, path in [
        ("GET", "/api/flops/projects"),
        ("POST", "/api/flops/projects"),
        ("GET", "/api/flops/tracking"),
        ("POST", "/api/flops/mocks"),
        ("GET", "/api/flops/nodes"),
        ("DELETE", "/api/flops/projects/x"),
    ]:
        assert httpx.request(method, f"{suite.api_url}{path}").status_code == 401, path
    bad = httpx.get(f"{suite.api_url}/api/flops/projects", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("change", "loc", "reason"),
    [
        (
            {"training_configuration": {"data_tags": ["d"], "min_fit_clients": 3, "min_available_clients": 2}},
            ["body", "training_configuration"],
            "min_fit_clients (3) must not exceed min_available_clients (2)",
        ),
        (
            {"training_configuration": {"data_tags": ["d"], "training_rounds": 0}},
            ["body", "training_configuration", "training_rounds"],
            "greater than or equal to 1",
        ),
        ({"ml_model_flavor": "caffe"}, ["body", "ml_model_flavor"], "'sklearn'"),
        ({"ml_repo_url": "http://example.org/r"}, ["body", "ml_repo_url"], "scheme 'http'"),
    ],
)
def test_bad_sla_is_422_naming_field_and_reason(
    suite: EmbeddedSuite, admin: FlopsClient, change: dict, loc: list, reason: str
) -> None:
    sla = example_sla(suite, "digits_sklearn") | change
    with pytest.raises(ApiError) as info:
        admin.submit(sla)
    assert info.value.status_code == 422
    detail = info.value.detail[0]
    assert detail["loc"] == loc
    assert reason in detail["msg"]


def test_customers_see_only_their_own_projects(suite: EmbeddedSuite, admin: FlopsClient) -> None:
    alice = FlopsClient(suite.api_url, admin.issue_token("alice"))
    bob = FlopsClient(suite.api_url, admin.issue_token("bob"))
    sla = example_sla(suite, "digits_sklearn")
    sla["customerID"] = "alice"
    sla["ml_repo_ref"] = "no-such-branch"  # fails fast at stage 2; ownership is what matters here
    project_id = alice.submit(sla)["project_id"]
    assert [p["id"] for p in alice.projects()] == [project_id]
    assert project_id not in [p["id"] for p in bob.projects()]
    for call in (bob.project, bob.events, bob.timeline, bob.cancel):
        with pytest.raises(ApiError) as info:
            call(project_id)
        assert info.value.status_code == 404
    with pytest.raises(ApiError) as claim:
        bob.submit(sla)  # customerID alice
    assert claim.value.status_code == 422 and claim.value.detail[0]["loc"] == ["body", "customerID"]
    with pytest.raises(ApiError) as forbidden:
        bob.mock_data("x")
    assert forbidden.value.status_code == 403
    assert project_id in [p["id"] for p in admin.projects()]


def test_openapi_documents_the_models(suite: EmbeddedSuite) -> None:
    schema = httpx.get(f"{suite.api_url}/openapi.json").json()
    assert "ProjectSLA" in schema["components"]["schemas"]
    assert "Project" in schema["components"]["schemas"]
