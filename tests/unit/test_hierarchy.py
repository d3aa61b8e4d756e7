"""Hierarchical mode on the engine fakes: SLA fields, clusters placed at stage 4, cycles and cluster rounds
counted, a lost learner or cluster handled by k-of-n and ``min_clusters``, nothing left at the end."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flops_common.events import EventKind, Source
from flops_common.hierarchy import cycle_timeout_s, root_training
from flops_common.jobs import AggregatorJob, ClusterAggregatorJob, LearnerJob
from flops_common.stages import ProjectStatus, Stage
from flops_manager.orchestrator.base import Node, Placement
from flops_manager.orchestrator.swarm import constraints, node_from_swarm, swarm_node_address
from flops_manager.orchestrator.virtual_nodes import VirtualNodes, cluster_of_learner
from flops_manager.projects.health import EXIT_GRACE_S
from tests.unit.conftest import HarnessFactory
from tests.unit.engine_fakes import FakeOrchestrator, Harness, manifest_for, sla

HIER: dict[str, Any] = {"mode": "hierarchical", "training_cycles": 2, "training_rounds": 2}
TWO_BY_TWO = ["cluster-a", "cluster-a", "cluster-b", "cluster-b"]


def four_learners(clusters: list[str] = TWO_BY_TWO) -> FakeOrchestrator:
    return FakeOrchestrator(learner_tags=[["digits"]] * len(clusters), clusters=clusters)


def deployed(h: Harness, **training: Any) -> str:
    """A hierarchical project past its build, at stage 4 (or failed there)."""
    project = h.engine.submit(sla(**(HIER | training)), "alice")
    h.drain()
    pid = project.id
    h.send(pid, Source.OBSERVER, EventKind.LOG, "observer ready", observer_ready=True)
    h.send(pid, Source.BUILDER, EventKind.BUILD_SUCCEEDED, "built", manifest=manifest_for(h.key(pid)).model_dump())
    return pid


def stopped_for_good(h: Harness) -> None:
    """A tick sees the exit, another one after the grace acts on it."""
    h.drain()
    h.advance(EXIT_GRACE_S + 1)


def job_of(h: Harness, pid: str, name: str) -> dict[str, Any]:
    import json

    return dict(json.loads(h.orchestrator.named(pid, name).spec.env["FLOPS_JOB"]))


# the SLA
def test_hierarchical_sla_needs_training_cycles_and_classic_refuses_them() -> None:
    assert sla(**HIER).training_configuration.hierarchical
    with pytest.raises(ValidationError, match="training_cycles is required"):
        sla(mode="hierarchical")
    with pytest.raises(ValidationError, match="training_cycles applies to mode 'hierarchical' only"):
        sla(training_cycles=2)
    with pytest.raises(ValidationError, match="min_clusters applies to mode 'hierarchical' only"):
        sla(min_clusters=1)
    with pytest.raises(ValidationError) as info:
        sla(**(HIER | {"training_cycles": 1001}))
    assert info.value.errors()[0]["loc"] == ("training_configuration", "training_cycles")
    with pytest.raises(ValidationError) as info:
        sla(**(HIER | {"min_clusters": 0}))
    assert info.value.errors()[0]["loc"] == ("training_configuration", "min_clusters")


def test_root_training_counts_cycles_over_clusters() -> None:
    tc = sla(**HIER, round_timeout_s=10).training_configuration
    root = root_training(tc, 2, 100.0)
    assert (root.training_rounds, root.min_available_clients, root.min_fit_clients) == (2, 2, 2)
    assert root.round_timeout_s == cycle_timeout_s(tc, 100.0) == 100 + 3 * 10 + 30


# clusters as node groups
def test_virtual_nodes_split_learners_in_order_into_clusters(tmp_path: Any) -> None:
    assert [cluster_of_learner(i, 4, 2) for i in range(4)] == ["cluster-0", "cluster-0", "cluster-1", "cluster-1"]
    assert [cluster_of_learner(i, 3, 2) for i in range(3)] == ["cluster-0", "cluster-0", "cluster-1"]
    nodes = {n.name: n.cluster for n in VirtualNodes(tmp_path, 4, 1, clusters=2).nodes()}
    assert nodes == {
        "builder-0": "cluster-0",
        "learner-0": "cluster-0",
        "learner-1": "cluster-0",
        "learner-2": "cluster-1",
        "learner-3": "cluster-1",
    }
    assert {n.cluster for n in VirtualNodes(tmp_path, 4, 1).nodes()} == {"cluster-0"}


def test_swarm_nodes_take_their_cluster_from_a_label_and_constraints_keep_services_in_it(tmp_path: Any) -> None:
    labels = {"flops.learner": "true", "flops.data-tag.digits": "true", "flops.cluster": "edge-a"}
    attrs = {"Description": {"Hostname": "h1"}, "Spec": {"Labels": labels}}
    assert node_from_swarm(attrs, tmp_path).cluster == "edge-a"
    assert node_from_swarm({"Description": {"Hostname": "h2"}, "Spec": {}}, tmp_path).cluster == "cluster-0"
    learner = Placement(capability="learner", data_tags=["digits"], cluster="edge-a")
    assert constraints(learner, Node(name="h1", capabilities=["learner"])) == [
        "node.labels.flops.learner==true",
        "node.labels.flops.data-tag.digits==true",
        "node.labels.flops.cluster==edge-a",
        "node.hostname==h1",
    ]
    assert constraints(Placement(cluster="edge-b"), None) == ["node.labels.flops.cluster==edge-b"]


# stage 4
def test_stage_4_deploys_a_root_one_aggregator_per_cluster_and_learners_inside_their_cluster(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(orchestrator=four_learners())
    pid = deployed(h)
    project = h.project(pid)
    assert project.stage == Stage.ACTOR_DEPLOYMENT and project.min_clusters == 2
    assert [(c.name, c.learners) for c in project.clusters] == [
        ("cluster-a", ["learner-0", "learner-1"]),
        ("cluster-b", ["learner-2", "learner-3"]),
    ]
    root = AggregatorJob.model_validate(job_of(h, pid, "aggregator"))
    assert root.training.min_clusters == 2 and root.training.hierarchical
    for cluster, learners in (("cluster-a", (0, 1)), ("cluster-b", (2, 3))):
        service = h.orchestrator.named(pid, f"cluster-aggregator-{cluster}")
        job = ClusterAggregatorJob.model_validate(job_of(h, pid, f"cluster-aggregator-{cluster}"))
        assert job.root_superlink_address == f"127.0.0.1:{root.superlink_port}"
        assert service.handle.node == f"learner-{learners[0]}" and service.spec.placement.cluster == cluster
        assert "MLFLOW" not in " ".join([*service.spec.env, *service.spec.secret_env])  # no MLflow below the root
        assert service.spec.image == manifest_for(h.key(pid)).learner
        for index in learners:
            learner = h.orchestrator.named(pid, f"learner-{index}")
            assert LearnerJob.model_validate(job_of(h, pid, f"learner-{index}")).superlink_address == (
                f"127.0.0.1:{job.superlink_port}"
            )
            assert learner.spec.placement.cluster == cluster


def test_across_hosts_each_superlink_listens_on_its_node_and_is_reached_there(make_harness: HarnessFactory) -> None:
    orchestrator = four_learners()
    orchestrator.platform_address = "169.254.100.1"
    orchestrator.addresses = {f"learner-{i}": f"169.254.100.{11 + i}" for i in range(4)}
    h = make_harness(orchestrator=orchestrator)
    pid = deployed(h)
    root = AggregatorJob.model_validate(job_of(h, pid, "aggregator"))
    assert root.superlink_host == "169.254.100.1"
    for cluster, first in (("cluster-a", 0), ("cluster-b", 2)):
        job = ClusterAggregatorJob.model_validate(job_of(h, pid, f"cluster-aggregator-{cluster}"))
        assert job.root_superlink_address == f"169.254.100.1:{root.superlink_port}"
        assert job.superlink_host == f"169.254.100.{11 + first}"  # the node it runs on: learner-<first>
        for index in (first, first + 1):  # both learners of the cluster reach it there, wherever they run
            learner = LearnerJob.model_validate(job_of(h, pid, f"learner-{index}"))
            assert learner.superlink_address == f"{job.superlink_host}:{job.superlink_port}"


def test_swarm_node_address_is_its_status_address_or_its_advertised_manager_address() -> None:
    assert swarm_node_address({"Status": {"Addr": "169.254.100.11"}}) == "169.254.100.11"
    manager = {"Status": {"Addr": "0.0.0.0"}, "ManagerStatus": {"Addr": "169.254.100.1:2377"}}
    assert swarm_node_address(manager) == "169.254.100.1"
    assert swarm_node_address({}) == "127.0.0.1"


def test_stage_4_fails_naming_each_cluster_and_what_it_lacks(make_harness: HarnessFactory) -> None:
    orchestrator = FakeOrchestrator(learner_tags=[["digits"], ["digits"], ["digits"], ["other"]], clusters=TWO_BY_TWO)
    h = make_harness(orchestrator=orchestrator)
    pid = deployed(h, min_clusters=2)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED and project.failed_stage == Stage.ACTOR_DEPLOYMENT
    assert project.cause is not None
    assert "1 cluster(s) qualify (cluster-a), min_clusters is 2" in project.cause
    assert "cluster cluster-b: 2 learner services need 2 nodes with data tag(s) ['digits'], only 1" in project.cause
    h.nothing_left_after_grace(pid)


def test_default_min_clusters_is_every_cluster_that_qualifies(make_harness: HarnessFactory) -> None:
    orchestrator = FakeOrchestrator(learner_tags=[["digits"], ["digits"], ["digits"], ["x"]], clusters=TWO_BY_TWO)
    h = make_harness(orchestrator=orchestrator)
    pid = deployed(h)
    project = h.project(pid)
    assert project.min_clusters == 1 and [c.name for c in project.clusters] == ["cluster-a"]
    assert "cluster-aggregator-cluster-b" not in h.orchestrator.running(pid)


# stage 5
def test_cycles_and_cluster_rounds_are_counted_and_success_leaves_nothing(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=four_learners())
    pid = deployed(h)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    project = h.project(pid)
    assert project.stage == Stage.TRAINING
    tc = project.sla.training_configuration
    assert project.stage_deadline is not None
    assert project.stage_deadline - h.clock() >= 2 * cycle_timeout_s(tc, 120.0)
    for cluster in ("cluster-a", "cluster-b"):
        for rnd in (1, 2, 3):
            h.send(pid, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, "r", cluster=cluster, cycle=1, round=rnd)
    h.send(pid, Source.AGGREGATOR, EventKind.ROUND_COMPLETED, "late", cluster="cluster-a", cycle=1, round=1)
    h.send(pid, Source.AGGREGATOR, EventKind.CYCLE_COMPLETED, "cycle 1", cycle=1)
    project = h.project(pid)
    assert project.cycles_completed == 1 and [c.rounds_completed for c in project.clusters] == [3, 3]
    h.training_succeeded(pid)
    assert h.project(pid).status == ProjectStatus.SUCCEEDED
    h.nothing_left_after_grace(pid)


def test_a_learner_lost_inside_a_cluster_follows_its_k_of_n(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=four_learners(["cluster-a"] * 3 + ["cluster-b"] * 3))
    pid = deployed(h, learners=3, min_available_clients=2, min_fit_clients=2, min_evaluate_clients=2)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    h.orchestrator.exit(pid, "learner-0", 137)
    stopped_for_good(h)
    project = h.project(pid)
    assert project.status == ProjectStatus.RUNNING and [c.state for c in project.clusters] == ["running", "running"]
    assert "learner-0" not in h.orchestrator.running(pid)
    h.orchestrator.exit(pid, "learner-1", 137)
    stopped_for_good(h)
    project = h.project(pid)  # cluster-a has 1 learner, needs 2: lost; min_clusters 2 -> the project fails
    assert project.status == ProjectStatus.FAILED
    assert project.cause is not None and project.cause.startswith("cluster cluster-a lost: learner-1")
    assert "1 of its learners left, 2 needed" in project.cause
    h.nothing_left_after_grace(pid)


def test_a_lost_cluster_lets_the_root_go_on_with_min_clusters_left(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=four_learners())
    pid = deployed(h, min_clusters=1)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    h.orchestrator.exit(pid, "cluster-aggregator-cluster-b", 137, output="killed")
    stopped_for_good(h)
    project = h.project(pid)
    assert project.status == ProjectStatus.RUNNING
    assert [(c.name, c.state) for c in project.clusters] == [("cluster-a", "running"), ("cluster-b", "lost")]
    assert h.orchestrator.running(pid) == [
        "aggregator",
        "cluster-aggregator-cluster-a",
        "learner-0",
        "learner-1",
        "observer",
    ]
    h.training_succeeded(pid)
    assert h.project(pid).status == ProjectStatus.SUCCEEDED
    h.nothing_left_after_grace(pid)


def test_a_lost_cluster_below_min_clusters_fails_the_project_naming_it(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=four_learners())
    pid = deployed(h)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    h.orchestrator.exit(pid, "cluster-aggregator-cluster-a", 137, output="killed")
    stopped_for_good(h)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED and project.failed_stage == Stage.TRAINING
    assert project.cause is not None and project.cause.startswith("cluster cluster-a lost: cluster-aggregator-")
    assert "1 cluster(s) left, min_clusters is 2" in project.cause
    h.nothing_left_after_grace(pid)


def test_a_cluster_whose_host_went_down_is_lost_naming_the_host(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=four_learners())
    pid = deployed(h)
    h.send(pid, Source.AGGREGATOR, EventKind.TRAINING_STARTED, "run 7", run_id=7)
    h.orchestrator.lose_host(pid, "cluster-aggregator-cluster-b")
    stopped_for_good(h)
    project = h.project(pid)
    assert project.status == ProjectStatus.FAILED
    assert project.cause is not None
    assert project.cause.startswith("cluster cluster-b lost: cluster-aggregator-cluster-b on learner-2 lost: host")
    assert "host learner-2 is down" in project.cause
    h.nothing_left_after_grace(pid)


def test_cancel_in_training_undeploys_every_cluster(make_harness: HarnessFactory) -> None:
    h = make_harness(orchestrator=four_learners())
    pid = deployed(h)
    assert len(h.orchestrator.running(pid)) == 8
    h.engine.cancel(pid)
    h.drain()
    assert h.project(pid).status == ProjectStatus.CANCELLED
    h.nothing_left_after_grace(pid)
