"""The store contract, against the real store server (SecantusDB over pymongo) and the in-memory backend."""

from __future__ import annotations

import uuid

import pytest

from flops_common.events import Event, EventKind, Source
from flops_common.sla import ProjectSLA
from flops_common.stages import ProjectStatus, Stage
from flops_manager.projects.models import Project, StageRecord
from flops_manager.store.base import Store
from flops_manager.store.memory import MemoryStore
from flops_manager.store.mongo import MongoStore
from flops_manager.suite.embedded import EmbeddedSuite


@pytest.fixture(params=["mongo", "memory"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    suite: EmbeddedSuite = request.getfixturevalue("suite")
    instance = MongoStore.connect(f"mongodb://127.0.0.1:{suite.ports.store}", f"t{uuid.uuid4().hex[:8]}")
    instance.ensure_indexes()
    return instance


def _project(customer: str) -> Project:
    sla = ProjectSLA.model_validate(
        {
            "customerID": customer,
            "ml_repo_url": "https://example.org/r.git",
            "ml_model_flavor": "sklearn",
            "training_configuration": {"data_tags": ["digits"]},
        }
    )
    return Project(
        id=uuid.uuid4().hex[:12],
        customer_id=customer,
        sla=sla,
        stages=[StageRecord(stage=Stage.PROJECT_START, name="project start")],
    )


def test_projects_round_trip_and_filter_by_customer(store: Store) -> None:
    alice, bob = _project("alice"), _project("bob")
    store.insert_project(alice)
    store.insert_project(bob)
    loaded = store.get_project(alice.id)
    assert loaded is not None and loaded.sla == alice.sla and loaded.stages[0].stage == Stage.PROJECT_START
    assert [p.id for p in store.list_projects("alice")] == [alice.id]
    assert {p.id for p in store.list_projects()} == {alice.id, bob.id}

    alice.status = ProjectStatus.FAILED
    alice.cause = "boom"
    store.save_project(alice)
    assert [p.id for p in store.active_projects()] == [bob.id]
    again = store.get_project(alice.id)
    assert again is not None and again.cause == "boom"


def test_events_are_stored_once_and_in_order(store: Store) -> None:
    first = Event(project_id="p1", source=Source.BUILDER, kind=EventKind.BUILD_STEP, message="a", timestamp=1.0)
    second = Event(project_id="p1", source=Source.BUILDER, kind=EventKind.BUILD_SUCCEEDED, timestamp=2.0)
    assert store.add_event(second)
    assert store.add_event(first)
    assert not store.add_event(first)  # QoS 1 redelivery is ignored
    assert [e.kind for e in store.list_events("p1")] == [EventKind.BUILD_STEP, EventKind.BUILD_SUCCEEDED]
    assert [e.timestamp for e in store.list_events("p1", after=1.0)] == [2.0]


def test_tokens_are_found_by_hash_only(store: Store) -> None:
    store.add_token("h1", "alice", admin=False)
    record = store.find_token("h1")
    assert record is not None
    assert (record["token_hash"], record["customer_id"], record["admin"]) == ("h1", "alice", False)
    assert store.find_token("other") is None
