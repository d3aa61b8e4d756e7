"""Environment variables the FL actors read, in one place.

The aggregator process sets the ``FLOPS_*`` bus variables and MLflow's own variables for the
ServerApp it starts (the ServerApp inherits the aggregator's environment through the SuperLink).
Secrets (``FLOPS_MQTT_PASSWORD``, ``MLFLOW_TRACKING_PASSWORD``) only ever come from the environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flops_common.jobs import BusConfig

DATA_DIR = "FLOPS_DATA_DIR"  # learner: directory holding this node's *.npz partitions
BUS_HOST = "FLOPS_BUS_HOST"  # ServerApp: MQTT broker host
BUS_PORT = "FLOPS_BUS_PORT"  # ServerApp: MQTT broker port
BUS_USERNAME = "FLOPS_BUS_USERNAME"  # ServerApp: MQTT user (password: FLOPS_MQTT_PASSWORD)
MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"  # ServerApp: MLflow tracking server
MLFLOW_EXPERIMENT_NAME = "MLFLOW_EXPERIMENT_NAME"  # ServerApp: MLflow experiment of the project
REGISTERED_MODEL = "FLOPS_REGISTERED_MODEL"  # ServerApp: register the final model under this name
MODEL_TAGS = "FLOPS_MODEL_TAGS"  # ServerApp: JSON object of tags of the registered version
RUN_CONFIG_OVERRIDES = "FLOPS_RUN_CONFIG_OVERRIDES"  # aggregator: JSON object of extra run config
FLWR_HOME = "FLWR_HOME"  # Flower's state directory (private per actor)
SUPEREXEC_POLL = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"  # Flower: SuperExec task poll interval (s)
TELEMETRY = "FLWR_TELEMETRY_ENABLED"  # Flower: anonymous telemetry (disabled by the actors)
UPDATE_CHECK = "FLWR_DISABLE_UPDATE_CHECK"  # Flower: online update check (disabled by the actors)

DEFAULT_SUPEREXEC_POLL_S = "0.5"  # FLOps' SuperExecs: the longest wait between polls (paced shorter in rounds)
SECRETS = frozenset({"FLOPS_MQTT_PASSWORD", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"})


def bus_to_env(bus: BusConfig) -> dict[str, str]:
    """The variables that tell a child process where the broker is (never the password)."""
    env = {BUS_HOST: bus.host, BUS_PORT: str(bus.port)}
    if bus.username:
        env[BUS_USERNAME] = bus.username
    return env


def bus_from_env() -> BusConfig | None:
    """The broker set by :func:`bus_to_env`, or ``None`` when no broker is configured."""
    host = os.environ.get(BUS_HOST)
    if not host:
        return None
    return BusConfig(
        host=host,
        port=int(os.environ.get(BUS_PORT, "1883")),
        username=os.environ.get(BUS_USERNAME) or None,
    )


def flower_env(flwr_home: str) -> dict[str, str]:
    """Variables every Flower process of an actor gets: private home, fast polling, no telemetry.

    ``PATH`` starts with this environment's ``bin`` directory: Flower starts its helpers
    (``flower-superexec``, ``flwr-serverapp``, ``flwr-clientapp``) by name.
    """
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{path}" if path else bin_dir,
        FLWR_HOME: flwr_home,
        SUPEREXEC_POLL: os.environ.get(SUPEREXEC_POLL, DEFAULT_SUPEREXEC_POLL_S),
        TELEMETRY: "0",
        UPDATE_CHECK: "1",
    }
