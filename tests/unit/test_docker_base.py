"""What the docker and swarm backends share: mounts, labels, listing by labels and the saved output."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flops_manager.orchestrator.base import Node, Placement, ServiceHandle, ServiceRole, ServiceSpec
from flops_manager.orchestrator.container_hardening import CONTAINER_UID, PIDS_LIMIT, container_options
from flops_manager.orchestrator.docker import DockerOrchestrator
from flops_manager.orchestrator.docker_base import (
    CA_BUNDLE_IN_CONTAINER,
    DOCKER_SOCKET_IN_CONTAINER,
    Bind,
    DockerBackedOrchestrator,
)
from flops_manager.orchestrator.swarm import SwarmOrchestrator


def _docker(tmp_path: Path, **options: Any) -> DockerOrchestrator:
    return DockerOrchestrator(tmp_path / "nodes", tmp_path / "services", 2, 1, "img", instance="i1", **options)


def _swarm(tmp_path: Path) -> SwarmOrchestrator:
    return SwarmOrchestrator(tmp_path / "nodes", tmp_path / "services", "img", instance="i1")


def test_a_learner_gets_only_its_projects_tags_of_its_node_read_only(tmp_path: Path) -> None:
    orchestrator = _docker(tmp_path)
    node = orchestrator.nodes()[1]
    placement = Placement(capability="learner", data_tags=["digits"])
    spec = ServiceSpec(name="learner-0", project_id="p", role=ServiceRole.LEARNER, command=["x"], placement=placement)
    assert node.name == "learner-0" and node.data_dir is not None
    (Path(node.data_dir) / "other-tag").mkdir(parents=True)
    binds, env = orchestrator._binds(spec, node)
    tag_dir = str(Path(node.data_dir) / "digits")
    assert binds == [Bind(tag_dir, tag_dir, read_only=True)] and env == {}
    assert Path(tag_dir).is_dir()


def test_containers_but_the_builders_run_confined() -> None:
    learner = ServiceSpec(name="learner-0", project_id="p", role=ServiceRole.LEARNER, command=["x"])
    options = container_options(learner)
    assert options["user"] == f"{CONTAINER_UID}:{CONTAINER_UID}" and options["cap_drop"] == ["ALL"]
    assert options["read_only"] is True and "/tmp" in options["tmpfs"]
    assert options["security_opt"] == ["no-new-privileges:true"] and options["pids_limit"] > 0
    builder = learner.model_copy(update={"role": ServiceRole.BUILDER, "name": "builder"})
    assert container_options(builder) == {"security_opt": ["no-new-privileges:true"], "pids_limit": PIDS_LIMIT}


def test_the_builder_gets_the_engine_socket_and_the_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("ca")
    orchestrator = _docker(tmp_path, docker_host="unix:///run/e.sock", ca_bundle=str(bundle))
    spec = ServiceSpec(name="builder", project_id="p", role=ServiceRole.BUILDER, command=["x"])
    binds, env = orchestrator._binds(spec, Node(name="builder-0", capabilities=[]))
    assert binds == [
        Bind("/run/e.sock", DOCKER_SOCKET_IN_CONTAINER, read_only=False),
        Bind(str(bundle), CA_BUNDLE_IN_CONTAINER, read_only=True),
    ]
    assert env == {
        "DOCKER_HOST": f"unix://{DOCKER_SOCKET_IN_CONTAINER}",
        "FLOPS_BUILD_CA_BUNDLE": CA_BUNDLE_IN_CONTAINER,
    }
    tcp = _docker(tmp_path, docker_host="tcp://127.0.0.1:2375")
    assert tcp._binds(spec, None) == ([], {"DOCKER_HOST": "tcp://127.0.0.1:2375"})


def test_read_only_paths_are_bound_in_place_when_they_exist(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    spec = ServiceSpec(
        name="serving-builder",
        project_id="p",
        role=ServiceRole.BUILDER,
        command=["x"],
        read_only_paths=[str(wheels), str(tmp_path / "missing")],
    )
    binds, _ = _docker(tmp_path)._binds(spec, None)
    assert binds[0] == Bind(str(wheels), str(wheels), read_only=True)
    assert all(b.source != str(tmp_path / "missing") for b in binds)


def _labels(orchestrator: DockerBackedOrchestrator) -> dict[str, str]:
    spec = ServiceSpec(name="learner-1", project_id="p1", role=ServiceRole.LEARNER, command=["x"])
    return orchestrator._labels(spec, "learner-1")


def test_both_backends_list_their_services_from_labels(tmp_path: Path) -> None:
    docker_backend, swarm_backend = _docker(tmp_path), _swarm(tmp_path)
    calls: list[dict[str, Any]] = []

    def listed(**kwargs: Any) -> list[Any]:
        calls.append(kwargs)
        return [
            SimpleNamespace(id="c1", attrs={"Labels": _labels(docker_backend), "Names": ["/flops-i1-p1-learner-1"]})
        ]

    docker_backend._client_ = SimpleNamespace(containers=SimpleNamespace(list=listed))
    swarm_backend._client_ = SimpleNamespace(
        services=SimpleNamespace(
            list=lambda **kw: [SimpleNamespace(id="s1", name="svc", attrs={"Spec": {"Labels": _labels(swarm_backend)}})]
        )
    )
    [container] = docker_backend.list_services("p1")
    [service] = swarm_backend.list_services("p1")
    assert calls[0]["filters"] == {"label": ["org.flops.managed=true", "org.flops.instance=i1", "org.flops.project=p1"]}
    for handle, backend, info in (
        (container, "docker", {"container": "c1", "container_name": "flops-i1-p1-learner-1"}),
        (service, "swarm", {"service": "s1", "service_name": "svc"}),
    ):
        assert handle == ServiceHandle(
            backend=backend,
            service_id="p1/learner-1",
            name="learner-1",
            role=ServiceRole.LEARNER,
            node="learner-1",
            info=info,
        )


@pytest.mark.parametrize("tail", [None, 2])
def test_a_removed_service_answers_with_its_saved_output(tmp_path: Path, tail: int | None) -> None:
    orchestrator = _docker(tmp_path)
    handle = ServiceHandle(backend="docker", service_id="p/s", name="s", role=ServiceRole.LEARNER, node="n")
    assert orchestrator._saved_logs(handle, tail) == ""
    orchestrator._save_output(handle, b"one\ntwo\nthree\n")
    assert orchestrator._saved_logs(handle, tail) == ("one\ntwo\nthree\n" if tail is None else "two\nthree")


def test_logs_of_a_container_and_of_a_swarm_service_with_its_task_error(tmp_path: Path) -> None:
    docker_backend, swarm_backend = _docker(tmp_path), _swarm(tmp_path)
    container = SimpleNamespace(logs=lambda **kw: b"trained\n")
    task = {"Version": {"Index": 1}, "Status": {"State": "rejected", "Err": "no such image"}}
    service = SimpleNamespace(logs=lambda **kw: iter([b"start", b"ed\n"]), tasks=lambda: [task])
    docker_backend._client_ = SimpleNamespace(containers=SimpleNamespace(get=lambda ref: container))
    swarm_backend._client_ = SimpleNamespace(services=SimpleNamespace(get=lambda ref: service))
    role = ServiceRole.LEARNER
    assert (
        docker_backend.logs(
            ServiceHandle(backend="docker", service_id="p/s", name="s", role=role, node="n", info={"container": "c1"})
        )
        == "trained\n"
    )
    handle = ServiceHandle(backend="swarm", service_id="p/s", name="s", role=role, node="n", info={"service": "s1"})
    assert swarm_backend.logs(handle) == "started\n\nswarm: task rejected: no such image"
