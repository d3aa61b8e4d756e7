"""Fuzz the manager API from its own OpenAPI schema (bounded): no 5xx, responses match the schema."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis

from flops_manager.cli.client import FlopsClient
from flops_manager.suite.embedded import EmbeddedSuite


@pytest.fixture(scope="session")
def customer_token(admin: FlopsClient) -> str:
    """A customer (not admin) token: fuzzing must not reset the shared suite."""
    return admin.issue_token("fuzzer")


@pytest.fixture(scope="session")
def api_schema(suite: EmbeddedSuite) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{suite.api_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_api_never_fails_on_any_input(case: schemathesis.Case, suite: EmbeddedSuite, customer_token: str) -> None:
    case.call_and_validate(base_url=suite.api_url, headers={"Authorization": f"Bearer {customer_token}"})
