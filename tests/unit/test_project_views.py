"""The API's project views: what a customer and an admin see, and the read cache the engine keeps current."""

from __future__ import annotations

import json

from flops_common.stages import Stage
from flops_manager.api.project_views import ProjectViews
from flops_manager.api.schemas import admin_view, public_view
from flops_manager.orchestrator.base import ServiceHandle, ServiceRole
from flops_manager.projects.models import Project, StageRecord
from tests.unit.engine_fakes import sla


def _running_project() -> Project:
    project = Project(id="p1", customer_id="alice", sla=sla(), stage=Stage.TRAINING)
    project.stages.append(StageRecord(stage=Stage.PROJECT_START, name="project start"))
    project.services["learner-0"] = ServiceHandle(
        backend="docker",
        service_id="9f" * 32,
        name="learner-0",
        role=ServiceRole.LEARNER,
        node="learner-0",
        info={"container": "9f" * 32, "pid": 31337, "workdir": "/srv/flops/services/p1/learner-0"},
    )
    project.observer = ServiceHandle(
        backend="local", service_id="obs", name="observer", role=ServiceRole.OBSERVER, node="local", info={"pid": 4}
    )
    return project


def test_a_customer_sees_services_by_role_node_and_state_but_no_internals() -> None:
    text = public_view(_running_project()).model_dump_json()
    assert "31337" not in text and "/srv/flops" not in text and "9f9f" not in text
    services = json.loads(text)["services"]
    assert {(s["name"], s["role"], s["node"], s["state"]) for s in services} == {
        ("learner-0", "learner", "learner-0", "running"),
        ("observer", "observer", "local", "running"),
    }


def test_an_admin_gets_the_internals_in_debug() -> None:
    view = json.loads(admin_view(_running_project()).model_dump_json())
    assert view["debug"]["services"]["learner-0"]["info"]["pid"] == 31337
    assert view["services"][0]["name"] == "learner-0"


def test_the_cache_follows_writes_and_keeps_the_newest() -> None:
    views = ProjectViews()
    project = _running_project()
    views.project_saved(project)
    stale = project.model_copy(deep=True)
    project.cause, project.updated_at = "newer", project.updated_at + 1
    views.project_saved(project)
    views.remember(stale)  # a store read that loaded the document before the save finished
    cached = views.get("p1")
    assert cached is not None and json.loads(cached.public_json)["cause"] == "newer"
    assert cached.customer_id == "alice"
    views.projects_forgotten()
    assert views.get("p1") is None


def test_the_cache_is_bounded() -> None:
    views = ProjectViews(max_entries=2)
    for index in range(3):
        views.remember(Project(id=f"p{index}", customer_id="alice", sla=sla()))
    assert views.get("p0") is None and views.get("p2") is not None
