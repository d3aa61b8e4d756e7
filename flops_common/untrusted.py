"""The identity a trusted service runs a repo's code as (the local builder's import check).

The local orchestrator runs the builder itself with the privileges it needs to publish into the registry
and share uv's cache, and names an unprivileged user in ``FLOPS_UNTRUSTED_UID``/``FLOPS_UNTRUSTED_GID``:
every process that executes the customer's code is started as that user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

UNTRUSTED_UID_ENV = "FLOPS_UNTRUSTED_UID"
UNTRUSTED_GID_ENV = "FLOPS_UNTRUSTED_GID"


def untrusted_identity() -> tuple[int, int] | None:
    """The (uid, gid) to run a repo's code as, if this service was given one."""
    uid, gid = os.environ.get(UNTRUSTED_UID_ENV), os.environ.get(UNTRUSTED_GID_ENV)
    if not uid or not gid:
        return None
    return int(uid), int(gid)


def untrusted_popen_options() -> dict[str, Any]:
    """``subprocess.Popen`` keywords that start the child as the untrusted identity (none if not given)."""
    identity = untrusted_identity()
    if identity is None:
        return {}
    return {"user": identity[0], "group": identity[1], "extra_groups": []}


def hand_over(path: Path) -> None:
    """Make ``path`` (a scratch folder the untrusted child writes to) the untrusted identity's."""
    identity = untrusted_identity()
    if identity is not None:
        os.chown(path, *identity)
