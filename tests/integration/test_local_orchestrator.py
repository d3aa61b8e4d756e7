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
from flops_manager.orchestrator.local import ROLE_NICENESS, LocalOrchestrator, service_processes


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


def _nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _autogroup_nice(pid: int) -> int | None:
    """The niceness of ``pid``'s autogroup, None where the kernel schedules without autogroups."""
    try:
        if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() != "1":
            return None
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def test_an_observer_runs_at_lower_cpu_priority_than_the_manager(orch: LocalOrchestrator) -> None:
    # Its start is a burst of imports; at the manager's priority a few of them stall every API request.
    niceness = ROLE_NICENESS[ServiceRole.OBSERVER]
    assert niceness > 0
    code = "import time; print('up', flush=True); time.sleep(600)"
    observer = orch.deploy(_spec("observer", code).model_copy(update={"role": ServiceRole.OBSERVER}))
    learner = orch.deploy(_spec("learner", code))
    try:
        for handle in (observer, learner):
            deadline = time.monotonic() + 10
            while "up" not in orch.logs(handle) and time.monotonic() < deadline:
                time.sleep(0.05)
        own = os.getpriority(os.PRIO_PROCESS, 0)
        observer_pids = [p for p in service_processes(observer.info["marker"]) if p != observer.info["pid"]]
        learner_pids = [p for p in service_processes(learner.info["marker"]) if p != learner.info["pid"]]
        assert observer_pids and learner_pids
        assert {_nice_of(p) for p in observer_pids} == {min(19, own + niceness)}
        assert {_nice_of(p) for p in learner_pids} == {own}
        if _autogroup_nice(os.getpid()) is not None:  # the session's weight against other sessions
            assert _autogroup_nice(int(observer.info["pid"])) == niceness
            assert _autogroup_nice(int(learner.info["pid"])) == 0
        assert orch.status(observer).state == ServiceState.RUNNING
    finally:
        orch.undeploy(observer)
        orch.undeploy(learner)
    assert service_processes(observer.info["marker"]) == []
