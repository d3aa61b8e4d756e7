"""digits_sklearn on a real three-host Swarm: each host its own engine and network, data where it lives.

One cluster for the session (this module is its only user): ``deploy/start-swarm-cluster.sh 3`` makes
three network-namespace hosts on the link-local bridge ``flc-br`` (169.254.100.1, where the suite listens):
``flc-h0`` the Swarm manager with ``flops.image-builder``, ``flc-h1`` and ``flc-h2`` learners with their own
data directories. The registry listens on the bridge address with TLS from the suite's CA, which every
engine trusts through its own ``certs.d``; the broker and MLflow require credentials. Run alone with
``pytest -m multihost``. ``deploy/stop-swarm-cluster.sh`` removes it all and ``ip -br addr`` is as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from mlflow.tracking import MlflowClient

from flops_manager.orchestrator.docker_base import LABEL_PROJECT
from flops_manager.orchestrator.swarm import CLUSTER_LABEL, update_node_labels
from flops_suite import cluster
from tests.e2e.clusters import Cluster, running_cluster, timed_pull
from tests.e2e.conftest import example_sla, wait_final, wait_stage
from tests.e2e.containers import DockerEngine
from tests.helpers.parquet_digits import write_digits_parquet
from tests.helpers.suites import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.multihost]

MANAGER, LEARNER_1, LEARNER_2 = "flc-h0", "flc-h1", "flc-h2"


@pytest.fixture(scope="module")
def three_hosts(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three hosts, a TLS registry and an authenticated suite on the bridge address (``tests/e2e/clusters.py``)."""
    with running_cluster(docker_engine, tmp_path_factory.mktemp("mh").resolve()) as setup:
        yield setup


def _host(setup: Cluster, name: str) -> cluster.ClusterHost:
    return next(h for h in setup.state.hosts if h.name == name)


def _node_name(setup: Cluster, node_id: str) -> str:
    return str(setup.engines[MANAGER].nodes.get(node_id).attrs["Description"]["Hostname"])


def _project_containers(setup: Cluster, project_id: str) -> dict[str, list[Any]]:
    """Per host, the containers of a project on its engine."""
    found: dict[str, list[Any]] = {}
    for name, client in setup.engines.items():
        if name in setup.lost:
            continue
        try:
            found[name] = client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project_id}"})
        except docker.errors.NotFound:  # removed while being listed
            found[name] = client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project_id}"})
    return found


def _pulls(client: Any, since: float) -> list[str]:
    """Images this engine pulled since ``since`` (from its event log)."""
    events = client.events(since=int(since), until=int(time.time()) + 1, decode=True, filters={"event": "pull"})
    return [str(e.get("id") or e.get("Actor", {}).get("ID")) for e in events]


def test_cluster_nodes_labels_and_data_per_host(three_hosts: Cluster) -> None:
    setup = three_hosts
    nodes = {n["name"]: n for n in setup.admin.nodes()}
    assert set(nodes) == {MANAGER, LEARNER_1, LEARNER_2}
    assert nodes[MANAGER]["capabilities"] == ["image-builder"]
    assert nodes[LEARNER_1]["capabilities"] == nodes[LEARNER_2]["capabilities"] == ["learner"]
    # Mock data goes to the chosen hosts' own directories only (h0 holds none), and differs per host.
    setup.admin.mock_data("digits", "digits", nodes=[LEARNER_1, LEARNER_2])
    parts = {name: sorted(_host(setup, name).data_dir.rglob("*.npz")) for name in (MANAGER, LEARNER_1, LEARNER_2)}
    assert parts[MANAGER] == []
    assert len(parts[LEARNER_1]) == len(parts[LEARNER_2]) == 1
    assert parts[LEARNER_1][0].read_bytes() != parts[LEARNER_2][0].read_bytes()
    listed = run_cli(setup.suite, "nodes")
    assert LEARNER_1 in listed and LEARNER_2 in listed and "digits" in listed
    # `flops data add` writes to the chosen host's directory only.
    upload = Path(setup.state.state_dir) / "upload" / "part-1.parquet"
    write_digits_parquet(upload, slice(0, 50))
    added = setup.admin.add_data(LEARNER_1, "uploaded", upload)
    assert Path(added["path"]).parent == _host(setup, LEARNER_1).data_dir / "uploaded"
    assert [h for h in setup.state.hosts if (h.data_dir / "uploaded").exists()] == [_host(setup, LEARNER_1)]


@pytest.mark.timeout(900)
def test_digits_runs_across_three_hosts_with_data_where_it_lives(three_hosts: Cluster) -> None:
    setup = three_hosts
    since = time.time()
    started = time.monotonic()
    accepted = setup.admin.submit(example_sla(setup.suite, "digits_sklearn", training_rounds=2))
    project_id = accepted["project_id"]
    training = wait_stage(setup.admin, project_id, 5, timeout_s=600)
    assert training["stage"] == 5, training.get("cause")

    # Each learner runs on its own labelled host, mounting that host's data directory and nothing else.
    services = {
        s.attrs["Spec"]["Labels"]["org.flops.service"]: s
        for s in setup.engines[MANAGER].services.list(filters={"label": f"{LABEL_PROJECT}={project_id}"})
    }
    learner_hosts = set()
    for name in ("learner-0", "learner-1"):
        tasks = services[name].tasks()
        (host_name,) = {_node_name(setup, t["NodeID"]) for t in tasks}
        learner_hosts.add(host_name)
        data_dir = str(_host(setup, host_name).data_dir)
        mounts = services[name].attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts", [])
        # Bind mounts: only the project's tag folder of its host, read-only (the rest are private tmpfs).
        binds = [(m["Source"], m.get("ReadOnly")) for m in mounts if m.get("Type") == "bind"]
        assert binds == [(f"{data_dir}/digits", True)], mounts
        assert all(m.get("Type") in {"bind", "tmpfs"} for m in mounts), mounts
        job = next(e for e in services[name].attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] if "FLOPS_JOB" in e)
        assert data_dir in job  # its host's data, and the aggregator's host's address for its SuperLink:
        assert f'"superlink_address":"{_host(setup, MANAGER).address}:' in job
    assert learner_hosts == {LEARNER_1, LEARNER_2}
    (aggregator_host,) = {_node_name(setup, t["NodeID"]) for t in services["aggregator"].tasks()}
    assert aggregator_host == MANAGER

    # No password in any service spec or in any container's configuration on any host.
    creds = setup.suite.credentials()
    passwords = [creds.mqtt_password.get_secret_value(), creds.mlflow_password.get_secret_value()]
    # Training starts once the run is submitted; a learner host may still be pulling its image then.
    deadline = time.monotonic() + 180
    containers = _project_containers(setup, project_id)
    while not all(containers[h] for h in (LEARNER_1, LEARNER_2, MANAGER)) and time.monotonic() < deadline:
        time.sleep(1)
        containers = _project_containers(setup, project_id)
    assert containers[LEARNER_1] and containers[LEARNER_2] and containers[MANAGER]
    inspected = json.dumps([s.attrs for s in services.values()])
    inspected += json.dumps([c.attrs for found in containers.values() for c in found])
    assert not [p for p in passwords if p in inspected]

    project = wait_final(setup.admin, project_id, timeout_s=600)
    elapsed = time.monotonic() - started
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 2
    assert project["final_metrics"]["accuracy"] >= 0.8
    services_dir = setup.suite.home / "services" / project_id
    builder = json.loads((services_dir / "builder" / "swarm-service.json").read_text())
    assert builder["node"] == MANAGER  # the builder ran on the image-builder host
    for index in (0, 1):
        assert "loaded" in (services_dir / f"learner-{index}" / "output.log").read_text()

    # Each learner host pulled the learner image over the network from the registry.
    for name in (LEARNER_1, LEARNER_2):
        pulled = _pulls(setup.engines[name], since)
        assert any(setup.registry in image and "learner" in image for image in pulled), (name, pulled)
    _assert_nothing_left(setup, project_id)
    stages = ", ".join(
        f"{s['stage']}: {s['ended_at'] - s['started_at']:.1f} s" for s in project["stages"] if s["ended_at"]
    )
    print(
        f"\n[multihost] cluster start {setup.started_in_s:.1f} s; digits 2 rounds on 3 hosts {elapsed:.1f} s ({stages})"
    )


def _assert_nothing_left(setup: Cluster, project_id: str) -> None:
    deadline = time.monotonic() + 90
    left: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        services = setup.engines[MANAGER].services.list(filters={"label": f"{LABEL_PROJECT}={project_id}"})
        left = {h: [c.name for c in found] for h, found in _project_containers(setup, project_id).items() if found}
        if services:
            left["services"] = [s.name for s in services]
        if not left:
            return
        time.sleep(0.5)
    assert left == {}


def test_cluster_uses_only_link_local_addresses(three_hosts: Cluster) -> None:
    for line in cluster.ip_brief_addr():
        for word in line.split()[2:]:
            if "." in word:
                assert word.startswith(("127.", "169.254.", "192.0.2.")), line
    assert Path("/var/run/netns", LEARNER_1).exists() and not Path("/var/run/netns", MANAGER).exists()


def _job(service: Any) -> dict[str, Any]:
    env = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    return dict(json.loads(next(e for e in env if e.startswith("FLOPS_JOB=")).removeprefix("FLOPS_JOB=")))


@pytest.mark.timeout(600)
def test_hierarchical_clusters_on_their_own_hosts(three_hosts: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two clusters (one learner host each): each cluster aggregator and its learner run on a host of their
    cluster, reached at that host's address; the cluster aggregators reach the root on the manager host."""
    setup = three_hosts
    manager = setup.engines[MANAGER]
    clusters = {LEARNER_1: "edge-a", LEARNER_2: "edge-b"}
    setup.admin.mock_data("digits", "digits", nodes=list(clusters))  # (again: this test may run alone)
    for host, name in clusters.items():
        update_node_labels(manager, host, add={CLUSTER_LABEL: name})
    try:
        assert {n["name"]: n["cluster"] for n in setup.admin.nodes() if n["name"] in clusters} == clusters
        started = time.monotonic()
        sla = example_sla(
            setup.suite, "digits_sklearn", mode="hierarchical", training_cycles=2, training_rounds=1,
            min_available_clients=1, min_fit_clients=1, min_evaluate_clients=1,
        )  # fmt: skip
        project_id = setup.admin.submit(sla)["project_id"]
        training = wait_stage(setup.admin, project_id, 5, timeout_s=400)
        assert training["stage"] == 5, training.get("cause")
        services = {
            s.attrs["Spec"]["Labels"]["org.flops.service"]: s
            for s in manager.services.list(filters={"label": f"{LABEL_PROJECT}={project_id}"})
        }
        ran_on = {name: _node_name(setup, t["NodeID"]) for name, s in services.items() for t in s.tasks()}
        assert ran_on["aggregator"] == MANAGER
        root_address = f"{_host(setup, MANAGER).address}:{_job(services['aggregator'])['superlink_port']}"
        for host, cluster_name in clusters.items():
            aggregator = f"cluster-aggregator-{cluster_name}"
            assert ran_on[aggregator] == host, ran_on
            job = _job(services[aggregator])
            assert job["root_superlink_address"] == root_address  # the root's reachable address, not loopback
            assert job["superlink_host"] == _host(setup, host).address
            learners = [
                n for n, s in services.items()
                if n.startswith("learner-") and _job(s)["superlink_address"].startswith(f"{job['superlink_host']}:")
            ]  # fmt: skip
            assert len(learners) == 1 and ran_on[learners[0]] == host, (cluster_name, learners, ran_on)
            constraints = services[learners[0]].attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
            assert f"node.labels.{CLUSTER_LABEL}=={cluster_name}" in constraints
        # Learners never on the other cluster's host: each learner's node carries its own cluster's label.
        for name in (n for n in services if n.startswith("learner-")):
            (task,) = services[name].tasks()
            node_cluster = manager.nodes.get(task["NodeID"]).attrs["Spec"]["Labels"][CLUSTER_LABEL]
            wanted = services[name].attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
            assert f"node.labels.{CLUSTER_LABEL}=={node_cluster}" in wanted, (name, node_cluster, wanted)

        project = wait_final(setup.admin, project_id, timeout_s=400)
        elapsed = time.monotonic() - started
        assert project["status"] == "succeeded", project.get("cause")
        assert project["cycles_completed"] == 2
        assert sorted((c["name"], c["node"], c["rounds_completed"]) for c in project["clusters"]) == [
            ("edge-a", LEARNER_1, 2), ("edge-b", LEARNER_2, 2),
        ]  # fmt: skip
        creds = setup.suite.credentials()
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", creds.mlflow_username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds.mlflow_password.get_secret_value())
        mlflow = MlflowClient(setup.suite.mlflow_url)
        run_id = project["mlflow"]["run_id"]
        assert [m.step for m in mlflow.get_metric_history(run_id, "eval_accuracy")] == [1, 2]  # per cycle
        for cluster_name in clusters.values():
            steps = sorted(m.step for m in mlflow.get_metric_history(run_id, f"{cluster_name}/eval_accuracy"))
            assert steps == [1, 2], (cluster_name, steps)
        _assert_nothing_left(setup, project_id)
        print(f"\n[multihost] hierarchical 2 clusters x 1 learner, 2 cycles x 1 round on 3 hosts {elapsed:.1f} s")
    finally:
        for host in clusters:  # the later tests run classic projects; leave the nodes as they were
            update_node_labels(manager, host, remove=[CLUSTER_LABEL])


@pytest.mark.timeout(900)
def test_late_host_gets_a_learner_and_known_hosts_do_not_pull_again(three_hosts: Cluster) -> None:
    setup = three_hosts
    added = subprocess.run(
        [sys.executable, "-m", "flops_suite.cluster", "--state-dir", setup.state.state_dir, "add"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    state = cluster.ClusterState.load(Path(setup.state.state_dir))
    assert state is not None
    late = state.hosts[-1]
    setup.engines[late.name] = docker.DockerClient(base_url=late.docker_host, timeout=120)
    assert late.name in {n["name"] for n in setup.admin.nodes()}  # joined with the learner labels
    setup.admin.mock_data("digits", "digits", nodes=[late.name])
    # Hosts that ran the first project already hold the learner image (same repo, commit, key).
    holders = [n for n in (LEARNER_1, LEARNER_2) if _learner_images(setup.engines[n])]
    since = time.time()
    sla = example_sla(
        setup.suite, "digits_sklearn", training_rounds=1, min_available_clients=3, min_fit_clients=3,
        min_evaluate_clients=3,
    )  # fmt: skip
    project = wait_final(setup.admin, setup.admin.submit(sla)["project_id"], timeout_s=600)
    assert project["status"] == "succeeded", project.get("cause")
    services_dir = setup.suite.home / "services" / project["id"]
    nodes = {json.loads((services_dir / f"learner-{i}" / "swarm-service.json").read_text())["node"] for i in range(3)}
    assert nodes == {LEARNER_1, LEARNER_2, late.name}
    assert any("learner" in image for image in _pulls(setup.engines[late.name], since))  # the new host pulled
    for name in holders:  # a host holding the image (pinned by digest) starts its learner without pulling
        assert not [i for i in _pulls(setup.engines[name], since) if "learner" in i], name
    _assert_nothing_left(setup, project["id"])
    pull = timed_pull(setup.engines[late.name], "/flops/learner")
    sizes = f"first {pull['first_s']} s ({pull['size_mb']} MB), cached {pull['cached_s']} s"
    print(f"\n[multihost] image pull on {late.name}: {sizes}")


def _learner_images(client: Any) -> list[str]:
    """The FL learner images an engine holds, by digest (Swarm pulls them pinned: no tag is kept)."""
    return [d for i in client.images.list() for d in i.attrs.get("RepoDigests") or [] if "/flops/learner@" in d]


def _kill_mid_training(setup: Cluster, sla: dict[str, Any], victim: str) -> tuple[dict[str, Any], float]:
    """Submit, wait for the first round, SIGKILL ``victim``'s engine; return the final project and the
    seconds from the kill to the end."""
    project_id = setup.admin.submit(sla)["project_id"]
    deadline = time.monotonic() + 600
    project = setup.admin.project(project_id)
    while project["rounds_completed"] < 1 and project["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        project = setup.admin.project(project_id)
    assert project["rounds_completed"] >= 1 and project["status"] == "running", project.get("cause")
    services_dir = setup.suite.home / "services" / project_id
    learner_nodes = [json.loads(p.read_text())["node"] for p in services_dir.glob("learner-*/swarm-service.json")]
    assert victim in learner_nodes, learner_nodes
    killed = subprocess.run(
        [sys.executable, "-m", "flops_suite.cluster", "--state-dir", setup.state.state_dir, "kill-engine", victim],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == 0, killed.stderr
    setup.lost.add(victim)
    killed_at = time.monotonic()
    project = wait_final(setup.admin, project_id, timeout_s=400)
    return project, time.monotonic() - killed_at


@pytest.mark.timeout(900)
def test_lost_learner_host_with_k_of_n_still_finishes(three_hosts: Cluster) -> None:
    setup = three_hosts
    sla = example_sla(
        setup.suite, "digits_sklearn", training_rounds=4, learners=2, min_available_clients=1, min_fit_clients=1,
        min_evaluate_clients=1, round_timeout_s=30,
    )  # fmt: skip
    project, _ = _kill_mid_training(setup, sla, LEARNER_2)
    assert project["status"] == "succeeded", project.get("cause")
    assert project["rounds_completed"] == 4
    messages = " | ".join(str(e["message"]) for e in setup.admin.events(project["id"]))
    assert f"on {LEARNER_2} lost: host {LEARNER_2} is down" in messages
    nodes = {n["name"]: n for n in setup.admin.nodes()}
    assert nodes[LEARNER_2]["state"] == "down" and nodes[LEARNER_1]["state"] == "ready"
    assert f"{LEARNER_2} down" in run_cli(setup.suite, "nodes")
    _assert_nothing_left(setup, project["id"])


@pytest.mark.timeout(900)
def test_lost_learner_host_with_k_equal_n_fails_naming_it(three_hosts: Cluster) -> None:
    setup = three_hosts
    nodes = setup.admin.nodes()
    remaining = sorted(n["name"] for n in nodes if n["state"] == "ready" and "learner" in n["capabilities"])
    assert len(remaining) == 2, remaining  # flc-h1 and the host that joined late
    round_timeout_s = 30
    sla = example_sla(
        setup.suite, "digits_sklearn", training_rounds=5, min_available_clients=2, min_fit_clients=2,
        min_evaluate_clients=2, round_timeout_s=round_timeout_s,
    )  # fmt: skip
    project, after_kill_s = _kill_mid_training(setup, sla, remaining[-1])
    assert project["status"] == "failed"
    assert f"on {remaining[-1]} lost: host {remaining[-1]} is down" in project["cause"], project["cause"]
    assert after_kill_s < round_timeout_s, f"{after_kill_s:.1f} s from the kill to the failure"
    print(f"\n[multihost] k = n project failed {after_kill_s:.1f} s after its learner host was killed")
    _assert_nothing_left(setup, project["id"])
