"""FLOps' warm SuperExec: what it preloads, what it forgets, how the learner starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fl_actors import clientapp_executor


def test_repo_modules_are_forgotten_and_their_dependencies_kept(tmp_path: Path) -> None:
    (tmp_path / "model_manager.py").write_text("import json\nimport data_manager\n")
    (tmp_path / "data_manager.py").write_text("import csv\n")
    code = (
        "import sys\n"
        "from fl_actors.clientapp_executor import preload\n"
        f"gone = preload({str(tmp_path)!r})\n"
        "assert sorted(gone) == ['data_manager', 'model_manager'], gone\n"
        "assert 'model_manager' not in sys.modules and 'csv' in sys.modules\n"
        "assert 'fl_actors.client_app' in sys.modules and 'flwr.clientapp' in sys.modules\n"
        f"assert {str(tmp_path)!r} not in sys.path\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_repo_that_cannot_be_imported_only_warms_less(tmp_path: Path) -> None:
    (tmp_path / "model_manager.py").write_text("raise RuntimeError('no import-time work please')\n")
    code = f"from fl_actors.clientapp_executor import preload\nprint(preload({str(tmp_path)!r}))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "could not preload" in done.stderr


def test_learner_runs_its_supernode_with_process_isolation_next_to_the_executor(tmp_path: Path) -> None:
    from fl_actors.learner import runtime_api_address, supernode_argv
    from flops_common.jobs import BusConfig, LearnerJob

    job = LearnerJob(
        project_id="p",
        bus=BusConfig(host="127.0.0.1", port=1883),
        learner_index=0,
        app_dir=str(tmp_path),
        superlink_address="127.0.0.1:9000",
        supernode_port=9100,
        data_dir=str(tmp_path),
    )
    argv = supernode_argv(job)
    assert argv[argv.index("--isolation") + 1] == "process"
    assert "--isolation" not in supernode_argv(job, warm=False)
    command = clientapp_executor.argv(runtime_api_address(job), job.app_dir)
    assert command[command.index("--runtime-api-address") + 1] == "127.0.0.1:9100"
    assert command[command.index("--preload-app-dir") + 1] == str(tmp_path)


def test_listening_ports_are_read_from_the_kernel_tables(tmp_path: Path) -> None:
    import socket

    from fl_actors.ports import is_listening

    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue\n"
        "   0: 0100007F:D9EB 00000000:0000 0A 00000000:00000000\n"
        "   1: 0100007F:1F90 0100007F:D9EC 01 00000000:00000000\n"
    )
    assert is_listening(0xD9EB, (str(table),))
    assert not is_listening(0x1F90, (str(table),))  # connected, not listening
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not is_listening(port)
        server.listen()
        assert is_listening(port)


def test_reachability_reads_loopback_from_the_kernel_and_connects_to_other_hosts() -> None:
    import socket

    from fl_actors.ports import is_local, is_loopback, is_reachable, split_address

    assert split_address("[::1]:9092") == ("::1", 9092)
    assert split_address("169.254.100.1:9092") == ("169.254.100.1", 9092)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("169.254.100.1")
    assert is_local("127.0.0.2") and not is_local("169.254.99.99")  # not an address here (bind only: no packet)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not is_reachable(f"127.0.0.1:{port}")  # bound, not listening: and no connection was made
        server.listen()
        assert is_reachable(f"127.0.0.1:{port}")
        assert is_reachable(f"localhost:{port}")


def test_the_executor_wakes_when_its_task_process_ends_not_at_its_poll_interval() -> None:
    # A real forked task process: the wait ends with it (its pidfd), long before the 5 s poll interval.
    pid = os.fork()
    if pid == 0:
        time.sleep(0.2)
        os._exit(0)
    children = {pid: clientapp_executor._pidfd(pid)}
    assert children[pid] is not None
    started = time.monotonic()
    clientapp_executor._wait_for_an_exit(children, 5.0)
    waited = time.monotonic() - started
    for _ in range(100):  # the child is a zombie by now; reaping it closes its descriptor
        if clientapp_executor._reap(children):
            break
        time.sleep(0.01)
    assert 0.1 < waited < 2.0, waited
    assert children == {}
