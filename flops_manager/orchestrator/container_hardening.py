"""How the docker and swarm backends confine a service's container.

Every container but the builder's runs as an unprivileged user (``CONTAINER_UID``, defined in no image
and owning nothing on the host but the service's own secret file), with every Linux capability dropped
(FL actors, the observer and the inference server bind ports above 1024 and need none), without the
right to gain privileges (``no-new-privileges``: setuid binaries do nothing), under a PID limit, on a
read-only root filesystem with a private ``/tmp`` (tmpfs), which is also its working directory (an actor
keeps its Flower state there) and ``HOME``. Only the builder gets
the engine's socket (it builds and pushes images) and stays root; it is still held to the PID limit and
``no-new-privileges``. A learner gets its own node's data folder read-only and nothing else of the host.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flops_manager.orchestrator.base import ServiceRole, ServiceSpec

CONTAINER_UID = 10001
PIDS_LIMIT = 1024  # Flower forks one process per message; a fork bomb stops here
TMPFS_OPTIONS = "rw,nosuid,nodev,size=1g,mode=1777"
WRITABLE_DIRS = ("/tmp",)  # tmpfs in a confined container (a tmpfs over an image's root-owned dir stays root's)


def unprivileged(spec: ServiceSpec) -> bool:
    """Whether the service runs as ``CONTAINER_UID`` (all but the builder, which drives the engine)."""
    return spec.role is not ServiceRole.BUILDER


def container_env(spec: ServiceSpec) -> dict[str, str]:
    """Environment the confinement needs: a writable ``HOME`` on the private ``/tmp``."""
    return {"HOME": "/tmp"} if unprivileged(spec) else {}


def container_workdir(spec: ServiceSpec) -> str | None:
    """The working directory: the spec's, else the private ``/tmp`` of a confined container (else the image's)."""
    return spec.workdir or ("/tmp" if unprivileged(spec) else None)


def container_options(spec: ServiceSpec) -> dict[str, Any]:
    """Keywords of ``containers.run`` (docker SDK 7) that confine the service's container."""
    options: dict[str, Any] = {"security_opt": ["no-new-privileges:true"], "pids_limit": PIDS_LIMIT}
    if unprivileged(spec):
        options |= {
            "user": f"{CONTAINER_UID}:{CONTAINER_UID}",
            "cap_drop": ["ALL"],
            "read_only": True,
            "tmpfs": dict.fromkeys(WRITABLE_DIRS, TMPFS_OPTIONS),
        }
    return options


def share_with_container_user(folder: Path) -> None:
    """Let the containers' user read ``folder`` (a learner's data tag) through its group, nobody else.

    Data lands root's and private (mock data, ``flops data add``); each learner deployment sets it again.
    """
    for walked, _dirs, files in os.walk(folder):
        os.chown(walked, 0, CONTAINER_UID)
        os.chmod(walked, 0o2750)
        for name in files:
            path = Path(walked) / name
            if not path.is_symlink():
                os.chown(path, 0, CONTAINER_UID)
                os.chmod(path, 0o640)
