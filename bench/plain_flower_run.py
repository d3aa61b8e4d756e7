"""P3 baseline: the same ML repo trained by a plain Flower app started by hand, same engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.helpers.ports import free_port

HERE = Path(__file__).resolve().parent


def run_plain_flower(
    env_dir: Path,
    repo_dir: Path,
    data_dirs: list[Path],
    rounds: int,
    work: Path,
    warm: bool = False,
    fast_poll: bool = False,
) -> dict[str, Any]:
    """SuperLink + one SuperNode per data dir + ``flwr run``; wall time from submit to finished.

    ``warm``: each SuperNode in ``--isolation process`` mode with FLOps' warm SuperExec
    (:mod:`fl_actors.clientapp_executor`) instead of Flower's, all else equal. ``fast_poll``
    (experiment): SuperNodes started as FLOps starts them, through
    :mod:`fl_actors.supernode_launcher` (their waits capped at 0.2 s).
    """
    app = work / "app"
    shutil.copytree(HERE / "plain_flower", app, dirs_exist_ok=True)
    for name in ("model_manager.py", "data_manager.py"):
        shutil.copy(repo_dir / name, app / name)
    bin_dir = env_dir / "bin"
    base_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FLWR_TELEMETRY_ENABLED": "0"}
    link_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    log = open(work / "plain.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        home = work / "flwr-link"
        procs.append(
            subprocess.Popen(
                [
                    str(bin_dir / "flower-superlink"),
                    "--insecure",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(link_port),
                    "--disable-runtime-dependency-installation",
                ],
                env={**base_env, "FLWR_HOME": str(home)},
                cwd=work,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        for i, data_dir in enumerate(data_dirs):
            runtime_port = free_port()
            node_env = {**base_env, "FLWR_HOME": str(work / f"flwr-node{i}"), "FLOPS_DATA_DIR": str(data_dir)}
            procs.append(
                subprocess.Popen(
                    [
                        *(
                            [str(bin_dir / "python"), "-m", "fl_actors.supernode_launcher"]
                            if fast_poll
                            else [str(bin_dir / "flower-supernode")]
                        ),
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{link_port}",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(runtime_port),
                        "--node-config",
                        f"idx={i}",
                        *(["--isolation", "process"] if warm else []),
                    ],
                    env=node_env,
                    cwd=work,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
            if warm:
                procs.append(
                    subprocess.Popen(
                        [
                            str(bin_dir / "python"),
                            "-m",
                            "fl_actors.clientapp_executor",
                            "--runtime-api-address",
                            f"127.0.0.1:{runtime_port}",
                            "--preload-app-dir",
                            str(app),
                        ],
                        env=node_env,
                        cwd=work,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                )
        cli_home = work / "flwr-cli"
        cli_home.mkdir(parents=True, exist_ok=True)
        (cli_home / "config.toml").write_text(
            f'[superlink]\ndefault = "b"\n\n[superlink.b]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n'
        )
        cli_env = {**base_env, "FLWR_HOME": str(cli_home)}
        deadline = time.monotonic() + 60
        started = time.perf_counter()
        while True:
            out = subprocess.run(
                [
                    str(bin_dir / "flwr"),
                    "run",
                    str(app),
                    "b",
                    "--run-config",
                    f"num-server-rounds={rounds}",
                    "--format",
                    "json",
                ],
                env=cli_env,
                cwd=work,
                capture_output=True,
                text=True,
            )
            if out.returncode == 0 and '"success": true' in out.stdout:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"flwr run failed: {out.stdout[-500:]} {out.stderr[-500:]}")
            time.sleep(0.5)
        run_id = json.loads(out.stdout)["run-id"]
        status = ""
        while not status.startswith("finished"):
            time.sleep(0.5)
            listed = subprocess.run(
                [str(bin_dir / "flwr"), "list", "b", "--run-id", str(run_id), "--format", "json"],
                env=cli_env,
                cwd=work,
                capture_output=True,
                text=True,
            )
            runs = json.loads(listed.stdout).get("runs", []) if listed.returncode == 0 else []
            status = runs[0]["status"] if runs else ""
        wall = time.perf_counter() - started
        return {
            "status": status,
            "wall_s": round(wall, 2),
            "rounds": rounds,
            "learners": len(data_dirs),
            "clientapps": "warm (FLOps SuperExec)" if warm else "Flower SuperExec",
            "supernode_idle_poll_s": 0.2 if fast_poll else 3.0,
        }
    finally:
        for proc in procs:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
        for proc in procs:
            proc.wait(timeout=20)
        log.close()
