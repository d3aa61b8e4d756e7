"""The cluster aggregator actor of hierarchical mode (``python -m fl_actors.cluster_aggregator``).

One process tree per cluster, started once per project (no process starts per cycle):

* the cluster's own SuperLink on ``job.superlink_port`` (its learners connect here) with FLOps' warm
  ServerApp runner, and one Flower run on it that lasts the whole project: the cluster ServerApp
  (:mod:`fl_actors.cluster_app`), which waits for its learners and then serves the root's cycles;
* a SuperNode of the root's federation (``job.root_superlink_address``) with FLOps' warm ClientApp runner:
  each root message becomes one ClientApp process that hands the cycle to the cluster ServerApp through
  a directory both share (:mod:`fl_actors.cluster_channel`) and replies with the cluster's aggregate.

It carries no MLflow (only the root tracks) and reports LOG events and, when its cluster run or one of
its processes ends, a LOG event with the cause and exit code 1: the manager decides whether the project
can go on without this cluster (``min_clusters``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from fl_actors import clientapp_executor, env, learner, processes, run_config, supernode_launcher
from fl_actors.cluster_channel import CHANNEL_ENV, CLUSTER_ENV
from fl_actors.cluster_client import CYCLE_TIMEOUT_ENV
from fl_actors.control_api import ControlApiError, ControlClient
from fl_actors.entrypoint import run_actor
from fl_actors.reporting import EventReporter
from fl_actors.run_config import RunSettings
from fl_actors.superlink import SuperLinkError, start_serverapp_runner, start_superlink
from flops_common.events import EventKind, Source
from flops_common.hierarchy import cycle_timeout_s
from flops_common.jobs import ClusterAggregatorJob
from flops_common.stages import Stage

log = logging.getLogger("fl_actors.cluster_aggregator")

STATUS_POLL_S = 30.0  # `flwr list` is heavy; a process that ends is seen at once


def connect_timeout_s(job: ClusterAggregatorJob) -> float:
    """How long the cluster ServerApp waits for ``min_available_clients`` learners of the cluster."""
    return max(120.0, job.training.round_timeout_s)


def workdir_name(job: ClusterAggregatorJob) -> str:
    """The cluster aggregator's working directory (in its current directory)."""
    return f"flops-cluster-aggregator-{job.project_id}-{job.cluster}"


def actor_env(job: ClusterAggregatorJob, workdir: Path) -> dict[str, str]:
    """The environment of both Flower sides: the bus, the shared channel, no MLflow and no secrets of it."""
    child = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    child.update(env.flower_env(str(workdir / "flwr-home")))
    child.update(env.bus_to_env(job.bus))
    child[CLUSTER_ENV] = job.cluster
    child[CHANNEL_ENV] = str(workdir / "channel")
    child[CYCLE_TIMEOUT_ENV] = str(cycle_timeout_s(job.training, connect_timeout_s(job)))
    return child


def root_supernode_argv(job: ClusterAggregatorJob) -> list[str]:
    """The SuperNode that makes this cluster one participant of the root's federation."""
    return supernode_launcher.argv(
        [
            "--insecure",
            "--superlink",
            job.root_superlink_address,
            "--host",
            "127.0.0.1",
            "--port",
            str(job.supernode_port),
            "--node-config",
            f'cluster="{job.cluster}"',
            "--isolation",
            "process",
        ]
    )


def _ended(procs: dict[str, subprocess.Popen[bytes] | None]) -> str | None:
    for name, proc in procs.items():
        if proc is not None and proc.poll() is not None:
            return f"the {name} exited with code {proc.returncode}"
    return None


def run(job: ClusterAggregatorJob, workdir: Path, reporter: EventReporter) -> int:
    """Start both sides, then watch them; return 1 (with a LOG event naming the cause) when one ends."""
    child_env = actor_env(job, workdir)
    control = ControlClient(f"{job.superlink_host}:{job.superlink_port}")
    procs: dict[str, subprocess.Popen[bytes] | None] = {}
    try:
        procs["cluster ServerApp runner"], _ = start_serverapp_runner(
            job.superlink_port, job.app_dir, job.flavor.value, child_env, workdir, host=job.superlink_host
        )
        procs["cluster SuperLink"], _ = start_superlink(
            job.superlink_port, child_env, workdir, host=job.superlink_host, warm_serverapp=True
        )
        settings = RunSettings(
            training=job.training,
            flavor=job.flavor,
            project_id=job.project_id,
            connect_timeout_s=connect_timeout_s(job),
        )
        overrides = workdir / "run-config.toml"
        values = settings.to_run_config()
        values.update(json.loads(os.environ.get(env.RUN_CONFIG_OVERRIDES) or "{}"))
        overrides.write_text(run_config.to_toml(values), encoding="utf-8")
        run_id = control.run(Path(job.app_dir), overrides)
        supernode_env = {k: v for k, v in child_env.items() if k not in env.SECRETS}
        learner.wait_for_superlink(job.root_superlink_address)
        supernode, _ = processes.spawn_logged(
            root_supernode_argv(job), supernode_env, workdir, prefix="[root-supernode] "
        )
        procs["root-facing SuperNode"] = supernode
        if learner.wait_until_listening(job.supernode_port, supernode):
            procs["root-facing ClientApp runner"], _ = processes.spawn_logged(
                clientapp_executor.argv(f"127.0.0.1:{job.supernode_port}", job.app_dir),
                supernode_env,
                workdir,
                prefix="[superexec] ",
            )
        reporter.publish(
            EventKind.LOG,
            f"cluster aggregator {job.cluster} serves its learners (Flower run {run_id}) and joined the root",
            {"cluster": job.cluster, "run_id": str(run_id)},
        )
        next_status = time.monotonic() + STATUS_POLL_S
        while (cause := _ended(procs)) is None:
            if time.monotonic() >= next_status:
                status = control.status(run_id)
                if status.finished:
                    cause = f"its Flower run {run_id} ended as {status.status}: {status.details or 'no details'}"
                    break
                next_status = time.monotonic() + STATUS_POLL_S
            time.sleep(0.5)
    except (ControlApiError, SuperLinkError, OSError, subprocess.SubprocessError) as exc:
        cause = str(exc)
    finally:
        control.close()
        processes.stop_trees(*procs.values())
    reporter.publish(EventKind.LOG, f"cluster aggregator {job.cluster} stopped: {cause}", {"cluster": job.cluster})
    return 1


def main() -> int:
    """Entry point: run the job from ``FLOPS_JOB``."""
    return run_actor(ClusterAggregatorJob, Source.AGGREGATOR, Stage.TRAINING, workdir_name, run)


if __name__ == "__main__":
    sys.exit(main())
