"""LocalOrchestrator with real processes: placement, status, logs, undeploy leaving nothing behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from flops_manager.orchestrator.base import (
    CAP_LEARNER,
    Placement,
    PlacementError,
    ServiceHandle,
    ServiceRole,
    ServiceSpec,
    ServiceState,
)
from flops_manager.orchestrator.local import LocalOrchestrator, service_processes


@pytest.fixture
def orch(tmp_path: Path) -> LocalOrchestrator:
    o = LocalOrchestrator(tmp_path / "nodes", tmp_path / "services", learner_nodes=2, builder_nodes=1)
    (o.node_data_dir("learner-1") / "digits").mkdir(parents=True)
    (o.node_data_dir("learner-1") / "digits" / "part.npz").write_bytes(b"x")
    return o


def _spec(name: str, code: str, placement: Placement | None = None) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        project_id="p1",
        role=ServiceRole.LEARNER,
        command=["python", "-c", code],
        env={"GREETING": "hello"},
        secret_env={"FLOPS_MQTT_PASSWORD": "s3cret"},
        placement=placement or Placement(),
    )


def _wait_state(orch: LocalOrchestrator, handle: ServiceHandle, state: ServiceState, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while orch.status(handle).state != state and time.monotonic() < deadline:
        time.sleep(0.05)
    assert orch.status(handle).state == state


def test_nodes_report_capabilities_and_data_tags(orch: LocalOrchestrator) -> None:
    nodes = {n.name: n for n in orch.nodes()}
    assert nodes["builder-0"].capabilities == ["image-builder"]
    assert nodes["learner-1"].data_tags == ["digits"] and nodes["learner-0"].data_tags == []


def test_placement_by_data_tag_and_clear_failure(orch: LocalOrchestrator) -> None:
    placed = orch.place(Placement(capability=CAP_LEARNER, data_tags=["digits"], exclusive=True))
    assert [n.name for n in placed] == ["learner-1"]
    with pytest.raises(PlacementError, match=r"data tag\(s\) \['cifar'\]"):
        orch.place(Placement(capability=CAP_LEARNER, data_tags=["cifar"]))
    with pytest.raises(PlacementError, match="2 learner services need 2 nodes"):
        orch.place(Placement(capability=CAP_LEARNER, data_tags=["digits"], exclusive=True), count=2)
    with pytest.raises(PlacementError, match="capability 'gpu'"):
        orch.place(Placement(capability="gpu"))


def test_one_shot_service_exit_code_logs_and_env(orch: LocalOrchestrator) -> None:
    code = "import os,sys; print(os.environ['GREETING'], os.environ['FLOPS_NODE'], sys.executable); sys.exit(3)"
    handle = orch.deploy(_spec("once", code))
    _wait_state(orch, handle, ServiceState.EXITED)
    assert orch.status(handle).exit_code == 3
    out = orch.logs(handle)
    assert out.startswith("hello builder-0") and sys.executable in out
    assert "s3cret" not in (Path(handle.info["dir"]) / "service.json").read_text()
    assert "s3cret" not in " ".join(Path(f"/proc/{os.getpid()}/cmdline").read_text().split("\0"))


def test_undeploy_ends_every_process_even_those_that_left_the_group(orch: LocalOrchestrator) -> None:
    # Flower starts its SuperLink in a new session: undeploy must still find and end it.
    code = (
        "import subprocess,sys,time; sleeper=[sys.executable,'-c','import time; time.sleep(600)'];"
        "subprocess.Popen(sleeper); subprocess.Popen(sleeper, start_new_session=True);"
        "print('up', flush=True); time.sleep(600)"
    )
    handle = orch.deploy(_spec("tree", code))
    deadline = time.monotonic() + 10
    while "up" not in orch.logs(handle) and time.monotonic() < deadline:
        time.sleep(0.05)
    marker = handle.info["marker"]
    assert len(service_processes(marker)) >= 4  # sh wrapper, service, two grandchildren
    assert [h.name for h in orch.list_services("p1")] == ["tree"]
    orch.undeploy(handle)
    assert service_processes(marker) == []
    assert orch.status(handle).state == ServiceState.EXITED
    assert orch.list_services("p1") == []
    orch.undeploy(handle)  # idempotent


def test_a_new_orchestrator_instance_finds_running_services(orch: LocalOrchestrator, tmp_path: Path) -> None:
    handle = orch.deploy(_spec("long", "import time; time.sleep(600)"))
    restarted = LocalOrchestrator(tmp_path / "nodes", tmp_path / "services", learner_nodes=2, builder_nodes=1)
    assert restarted.status(handle).state == ServiceState.RUNNING
    restarted.undeploy(handle)
    assert service_processes(handle.info["marker"]) == []
