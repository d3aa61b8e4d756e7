"""Swarm backend: node labels become FLOps nodes, FLOps placements become Swarm constraints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flops_common.secret_env import SECRET_ENV_PATH, load_secret_env
from flops_manager.orchestrator.base import Node, Placement
from flops_manager.orchestrator.swarm import constraints, node_from_swarm


def _attrs(hostname: str, labels: dict[str, str], state: str = "ready") -> dict[str, object]:
    return {"Description": {"Hostname": hostname}, "Spec": {"Labels": labels}, "Status": {"State": state}}


def test_labels_give_capabilities_tags_and_data_dir(tmp_path: Path) -> None:
    node = node_from_swarm(
        _attrs(
            "edge-1",
            {
                "flops.learner": "true",
                "flops.image-builder": "false",
                "flops.data-tag.digits": "true",
                "flops.data-tag.old": "false",
                "other": "x",
            },
        ),
        tmp_path,
    )
    assert node == Node(
        name="edge-1", capabilities=["learner"], data_tags=["digits"], data_dir=str(tmp_path / "edge-1" / "data")
    )
    labelled = node_from_swarm(_attrs("edge-2", {"flops.data-dir": "/srv/flops"}), tmp_path)
    assert labelled.data_dir == "/srv/flops" and labelled.capabilities == []
    assert node_from_swarm(_attrs("edge-3", {"flops.inference": "true"}), tmp_path).capabilities == ["inference"]


def test_a_node_swarm_does_not_see_as_ready_is_down_and_gets_nothing(tmp_path: Path) -> None:
    down = node_from_swarm(_attrs("edge-3", {"flops.learner": "true"}, state="down"), tmp_path)
    assert down.state == "down" and down.capabilities == ["learner"]
    assert node_from_swarm(_attrs("edge-4", {}, state="unknown"), tmp_path).state == "down"


def test_placement_becomes_label_constraints_pinned_to_the_chosen_node() -> None:
    placement = Placement(capability="learner", data_tags=["digits", "eu"])
    assert constraints(placement, None) == [
        "node.labels.flops.learner==true",
        "node.labels.flops.data-tag.digits==true",
        "node.labels.flops.data-tag.eu==true",
    ]
    pinned = constraints(placement, Node(name="edge-1", capabilities=["learner"]))
    assert pinned[-1] == "node.hostname==edge-1"
    assert constraints(Placement(), None) == []


def test_secret_env_file_is_loaded_into_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "flops-secret-env"
    secret.write_text(json.dumps({"FLOPS_MQTT_PASSWORD": "s3cret"}))
    monkeypatch.delenv("FLOPS_MQTT_PASSWORD", raising=False)
    monkeypatch.setenv(SECRET_ENV_PATH, str(secret))
    load_secret_env()
    assert os.environ["FLOPS_MQTT_PASSWORD"] == "s3cret"
    secret.write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        load_secret_env()


def test_placement_skips_nodes_that_are_down() -> None:
    from flops_manager.orchestrator.base import PlacementError
    from tests.unit.engine_fakes import FakeOrchestrator

    orchestrator = FakeOrchestrator([["digits"], ["digits"]])
    orchestrator._nodes[-1] = orchestrator._nodes[-1].model_copy(update={"state": "down"})
    placement = Placement(capability="learner", data_tags=["digits"], exclusive=True)
    assert [n.name for n in orchestrator.place(placement, 1)] == ["learner-0"]
    with pytest.raises(PlacementError, match="only 1 have them"):
        orchestrator.place(placement, 2)
