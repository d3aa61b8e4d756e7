"""The manager API over real HTTP: authentication, 422s that name the field, tenant isolation."""

from __future__ import annotations

import time

import httpx
import pytest

from flops_manager.cli.client import ApiError, FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_no_internals, example_sla, wait_final, wait_stage


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


def _strategy(name: str, options: dict) -> dict:
    """An SLA change choosing strategy ``name`` with ``options`` (checked at submit: 422, not a failed run)."""
    return {"training_configuration": {"data_tags": ["d"], "strategy": {"name": name, "options": options}}}


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
        (
            _strategy("FedAdam", {"eta_typo": 0.1}),
            ["body", "training_configuration", "strategy", "options", "eta_typo"],
            "FedAdam does not accept 'eta_typo'; accepted: beta_1, beta_2, eta, eta_l, fraction_evaluate",
        ),
        (
            _strategy("FedAdam", {"eta": "fast"}),
            ["body", "training_configuration", "strategy", "options", "eta"],
            "FedAdam option 'eta' must be float",
        ),
        (
            _strategy("FedAvg", {"weighted_by_key": "n"}),
            ["body", "training_configuration", "strategy", "options"],
            "'weighted_by_key' is set by FLOps",
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
    assert {"ProjectPublic", "ProjectAdminView"} <= set(schema["components"]["schemas"])


def test_a_customer_sees_no_backend_internals_of_a_running_project(
    suite: EmbeddedSuite, admin: FlopsClient, digits_data: object
) -> None:
    carol = FlopsClient(suite.api_url, admin.issue_token("carol"))
    sla = example_sla(suite, "digits_sklearn", training_rounds=1)
    sla["customerID"] = "carol"
    project_id = carol.submit(sla)["project_id"]
    running = wait_stage(carol, project_id, 4)
    deadline = time.monotonic() + 60  # stage 4 is entered, then its actors are deployed
    while not {s["role"] for s in running["services"]} >= {"aggregator", "learner"} and time.monotonic() < deadline:
        time.sleep(0.2)
        running = carol.project(project_id)
    assert running["status"] == "running", running.get("cause")
    assert {s["role"] for s in running["services"]} >= {"aggregator", "learner", "observer"}
    assert_no_internals(carol.project(project_id), admin.project(project_id))
    for listed in carol.projects():
        assert "debug" not in listed
    assert wait_final(carol, project_id)["status"] == "succeeded"
