"""Hierarchical mode through the session's embedded suite: four learner nodes in two clusters
(``FLOPS_LOCAL_CLUSTERS=2``).

A root aggregator, one cluster aggregator per cluster and two learners per cluster train digits, are
compared with classic mode on the same learners and rounds, run the addon's hierarchical SLA as published,
and lose a cluster aggregator mid-cycle with ``min_clusters`` 1 (goes on) and 2 (fails naming the cluster).
The session suite built the digits example and the addon repo already: these projects hit the cache.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from flops_manager.cli.client import FlopsClient
from flops_suite.embedded import EmbeddedSuite
from tests.e2e.conftest import assert_nothing_left, example_sla, wait_final, wait_stage
from tests.e2e.learning import central_baseline, eval_losses
from tests.helpers.parquet_digits import write_digits_parquet
from tests.helpers.suites import run_cli

pytestmark = pytest.mark.e2e

LEARNERS = [f"learner-{i}" for i in range(4)]
CLUSTERS = {"cluster-0": ["learner-0", "learner-1"], "cluster-1": ["learner-2", "learner-3"]}
ADDON_SLA = (
    Path(__file__).resolve().parents[1] / "data" / "addon_slas" / "projects" / "hierarchical_mnist_sklearn_small.json"
)
DIGITS = 1797
TAG = "digits4"
ACCURACY_SLACK = 0.02  # hierarchical may trail classic on the same learners and total rounds by this much


@pytest.fixture(scope="module")
def digits4(admin: FlopsClient) -> dict[str, Any]:
    """Digits in four disjoint shares, one per learner node, under tag ``digits4``: each cluster holds its half."""
    return admin.mock_data(TAG, "digits", nodes=LEARNERS)


def hier_sla(suite: EmbeddedSuite, **training: Any) -> dict[str, Any]:
    """The digits example in hierarchical mode: 2 cycles x 2 rounds, 2 learners per cluster."""
    return example_sla(
        suite, "digits_sklearn", mode="hierarchical", training_cycles=2, training_rounds=2, data_tags=[TAG], **training
    )


def run(admin: FlopsClient, sla: dict[str, Any], timeout_s: float = 400) -> dict[str, Any]:
    started = time.monotonic()
    project = wait_final(admin, admin.submit(sla)["project_id"], timeout_s=timeout_s)
    project["_wall_s"] = time.monotonic() - started
    return project


def test_nodes_show_their_clusters(suite: EmbeddedSuite, admin: FlopsClient) -> None:
    clusters = {n["name"]: n["cluster"] for n in admin.nodes() if n["name"].startswith("learner-")}
    assert clusters == {node: c for c, nodes in CLUSTERS.items() for node in nodes}
    shown = run_cli(suite, "nodes")
    assert "learner-1 ready cluster-0" in shown and "learner-2 ready cluster-1" in shown


def test_two_clusters_learn_as_well_as_classic_and_mlflow_has_every_cycle_and_cluster_round(
    suite: EmbeddedSuite, admin: FlopsClient, digits4: Any
) -> None:
    hier = run(admin, hier_sla(suite))
    assert hier["status"] == "succeeded", hier.get("cause")
    assert hier["cycles_completed"] == 2 and hier["min_clusters"] == 2
    assert [(c["name"], c["learners"], c["state"], c["rounds_completed"]) for c in hier["clusters"]] == [
        ("cluster-0", ["learner-0", "learner-1"], "running", 4),
        ("cluster-1", ["learner-2", "learner-3"], "running", 4),
    ]
    mlflow = MlflowClient(suite.mlflow_url)
    run_id = hier["mlflow"]["run_id"]
    assert [m.step for m in mlflow.get_metric_history(run_id, "eval_accuracy")] == [1, 2]  # per cycle
    for cluster in CLUSTERS:
        for metric in ("eval_accuracy", "round_time_s"):
            steps = sorted(m.step for m in mlflow.get_metric_history(run_id, f"{cluster}/{metric}"))
            assert steps == [1, 2, 3, 4], (cluster, metric, steps)  # every round of both cycles
    losses = eval_losses(suite.mlflow_url, run_id)
    assert losses[-1] < losses[0] < np.log(10), losses
    timeline = admin.timeline(hier["id"])
    assert (
        "cycle 2 done (clusters cluster-0, cluster-1)" in timeline
        or "cycle 2 done (clusters cluster-1, cluster-0)" in timeline
    )
    assert "cluster-1 round 4 (cycle 2) done" in timeline
    status = run_cli(suite, "status", hier["id"])
    assert "cycles 2/2" in status and "cluster cluster-1 running: 2 learner(s), round 4/4" in status
    assert_nothing_left(suite, hier)

    classic_sla = example_sla(suite, "digits_sklearn", training_rounds=4, min_available_clients=4, data_tags=[TAG])
    classic = run(admin, classic_sla)
    assert classic["status"] == "succeeded", classic.get("cause")
    hier_accuracy, classic_accuracy = hier["final_metrics"]["accuracy"], classic["final_metrics"]["accuracy"]
    central = central_baseline(admin, TAG, "logistic")
    print(
        f"accuracy: hierarchical {hier_accuracy:.4f} ({hier['_wall_s']:.1f} s), classic {classic_accuracy:.4f} "
        f"({classic['_wall_s']:.1f} s), central {central.accuracy:.4f}"
    )
    assert hier_accuracy >= classic_accuracy - ACCURACY_SLACK, (hier_accuracy, classic_accuracy)
    assert_nothing_left(suite, classic)


def test_addon_hierarchical_sla_as_published_trains_to_the_end(
    suite: EmbeddedSuite, admin: FlopsClient, tmp_path: Path
) -> None:
    raw = ADDON_SLA.read_bytes()
    published_url = json.loads(raw)["ml_repo_url"]
    sla = json.loads(raw.replace(published_url.encode(), suite.git_url("addon_digits_sklearn").encode()))
    tag = sla["training_configuration"]["data_tags"][0]
    for index, node in enumerate(LEARNERS):  # each node a quarter of the digits under the SLA's tag
        part = tmp_path / f"part-{index}.parquet"
        write_digits_parquet(part, np.arange(DIGITS)[index::4])
        admin.add_data(node, tag, part)
    project = wait_stage(admin, admin.submit(sla)["project_id"], 6, timeout_s=600)
    assert project["stage"] == 6 and project["status"] == "running", project.get("cause")
    tc = sla["training_configuration"]
    assert project["cycles_completed"] == tc["training_cycles"]
    assert [c["rounds_completed"] for c in project["clusters"]] == [tc["training_cycles"] * tc["training_rounds"]] * 2
    assert project["final_metrics"]["accuracy"] >= 0.8
    # Post-training starts on the root's final model, registered as in classic mode; the serving build
    # itself is classic mode's (tests/e2e/test_serving.py), so it is cancelled here to keep this test short.
    assert project["registered_model"] is not None
    admin.cancel(project["id"])
    project = wait_final(admin, project["id"], timeout_s=120)
    assert project["status"] == "cancelled"
    assert_nothing_left(suite, project)


def _kill_cluster_aggregator_mid_cycle(suite: EmbeddedSuite, admin: FlopsClient, project_id: str, cluster: str) -> None:
    """Once the cluster finished a round of cycle 1, SIGKILL its aggregator's main process (its children are
    orphaned and stopped by the manager when it sees the loss)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        project = admin.project(project_id)
        assert project["status"] == "running", project.get("cause")
        if any(c["name"] == cluster and c["rounds_completed"] >= 1 for c in project["clusters"]):
            break
        time.sleep(0.2)
    service = json.loads(
        (suite.home / "services" / project_id / f"cluster-aggregator-{cluster}" / "service.json").read_text()
    )
    wrapper = int(service["info"]["pid"])
    children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
    assert children, "the cluster aggregator has no process to kill"
    os.kill(int(children[0]), signal.SIGKILL)


def test_cluster_aggregator_killed_mid_cycle_with_min_clusters_1_finishes_with_the_other(
    suite: EmbeddedSuite, admin: FlopsClient, digits4: Any
) -> None:
    accepted = admin.submit(hier_sla(suite, min_clusters=1))
    _kill_cluster_aggregator_mid_cycle(suite, admin, accepted["project_id"], "cluster-1")
    project = wait_final(admin, accepted["project_id"])
    assert project["status"] == "succeeded", project.get("cause")
    states = {c["name"]: c["state"] for c in project["clusters"]}
    assert states == {"cluster-0": "running", "cluster-1": "lost"}
    assert project["cycles_completed"] == 2
    assert [c["rounds_completed"] for c in project["clusters"] if c["name"] == "cluster-0"] == [4]
    assert_nothing_left(suite, project)


def test_cluster_aggregator_killed_mid_cycle_with_min_clusters_2_fails_naming_the_cluster(
    suite: EmbeddedSuite, admin: FlopsClient, digits4: Any
) -> None:
    sla = hier_sla(suite, min_clusters=2)
    accepted = admin.submit(sla)
    _kill_cluster_aggregator_mid_cycle(suite, admin, accepted["project_id"], "cluster-0")
    killed_at = time.monotonic()
    project = wait_final(admin, accepted["project_id"])
    assert time.monotonic() - killed_at < sla["training_configuration"]["round_timeout_s"]
    assert (project["status"], project["failed_stage"]) == ("failed", 5)
    assert project["cause"].startswith("cluster cluster-0 lost: cluster-aggregator-cluster-0"), project["cause"]
    assert "1 cluster(s) left, min_clusters is 2" in project["cause"]
    assert_nothing_left(suite, project)
