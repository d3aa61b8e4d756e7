"""FLOps' warm ServerApp runner: what it preloads, how the aggregator starts it next to its SuperLink."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fl_actors import serverapp_executor
from fl_actors.superlink import superlink_argv


def test_the_task_type_is_flowers_serverapp() -> None:
    from flwr.supercore.constant import TaskType

    assert TaskType.SERVER_APP.value == serverapp_executor.SERVER_APP_TASK


def test_preload_imports_the_serverapp_mlflow_and_the_flavor_and_forgets_the_repo(tmp_path: Path) -> None:
    (tmp_path / "model_manager.py").write_text("import json\n")
    code = (
        "import sys\n"
        "from fl_actors import clientapp_executor, serverapp_executor\n"
        f"gone = clientapp_executor.preload({str(tmp_path)!r}, serverapp_executor.modules_for('sklearn'))\n"
        "assert gone == ['model_manager'], gone\n"
        "for name in ('mlflow', 'mlflow.sklearn', 'fl_actors.server_app', 'flwr.superlink.runtime.run_serverapp'):\n"
        "    assert name in sys.modules, name\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_superlink_leaves_the_serverapp_to_the_runner_only_when_asked() -> None:
    warm = superlink_argv(9000, warm_serverapp=True)
    assert warm[warm.index("--isolation") + 1] == "process"
    assert "--isolation" not in superlink_argv(9000)
    assert "--disable-runtime-dependency-installation" in warm


def test_runner_command_line(tmp_path: Path) -> None:
    argv = serverapp_executor.argv("127.0.0.1:9000", str(tmp_path), "pytorch", parent_pid=42)
    assert argv[:3] == [sys.executable, "-m", "fl_actors.serverapp_executor"]
    assert argv[argv.index("--runtime-api-address") + 1] == "127.0.0.1:9000"
    assert argv[argv.index("--flavor") + 1] == "pytorch"
    assert argv[argv.index("--parent-pid") + 1] == "42"
    assert argv[argv.index("--preload-app-dir") + 1] == str(tmp_path)
    assert serverapp_executor.modules_for("pytorch")[-1] == "mlflow.pytorch"


def test_poll_interval_follows_flowers_superexec_variable() -> None:
    assert serverapp_executor.poll_interval({}) == 0.2
    assert serverapp_executor.poll_interval({"FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.05"}) == 0.05
