"""Unprivileged identities of the ``local`` backend's services, and the file modes that keep them apart.

Every deployed service gets a user id of its own (and a private group of the same number), allocated
from ``[uid_base, uid_base + SERVICE_SPAN)``: no two services share an identity, so neither two projects
nor two learners of one project can read each other's working directories. Ids need no passwd entry.

What a service may read is decided by modes alone (no ACLs: nothing beyond coreutils needed):

- the FLOps home is searchable (``0711``) but not listable; the admin token, credentials, store, MLflow
  and suite files stay ``0700``/``0600`` root's;
- ``services/`` and each project folder in it are ``0711``; a service's own folder is ``0700`` its own;
- the registry is readable (actor environments must run), but its folders list nothing (``0711``) and
  its manifests are root's (``0600``);
- node data: ``nodes/``, each node and its data folder ``0711``; each ``<node>/data/<tag>`` folder belongs
  to a group of its own (``2750``, files ``0640``), which only a learner placed on that node for that tag
  gets as a supplementary group.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVICE_SPAN = 50_000  # service uids: uid_base .. uid_base + SERVICE_SPAN - 1
DATA_GROUP_SPAN = 10_000  # node-data groups right after them
# Folders of the FLOps home a service may search (the rest is root's alone).
_SEARCHABLE = {"services": 0o711, "nodes": 0o711, "registry": 0o755}


@dataclass(frozen=True)
class ServiceIdentity:
    """The user, its private group and supplementary groups a service runs as."""

    uid: int
    gid: int
    extra_groups: tuple[int, ...] = ()


def make_searchable(path: Path, below: Path | None = None) -> list[Path]:
    """Give others search permission (``o+x``, never read) on ``path`` and each ancestor lacking it.

    Services must reach the interpreter and the FLOps home (e.g. under ``/root`` or a test's private
    temporary folder); search alone lists nothing. Ancestors stop short of ``below`` when given.
    Returns the folders changed.
    """
    changed = []
    folders = [path, *path.parents]
    if below is not None:
        folders = [f for f in folders if f.is_relative_to(below) and f != below]
    for folder in folders:
        with contextlib.suppress(OSError):
            mode = folder.stat().st_mode
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                os.chmod(folder, stat.S_IMODE(mode) | stat.S_IXOTH)
                changed.append(folder)
    return changed


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, mode)


class ServiceIdentities:
    """Allocates service identities and sets the modes of the FLOps home that separate them."""

    def __init__(self, home: Path, uid_base: int) -> None:
        self._home = home
        self._uid_base = uid_base
        self._state = home / "services" / ".identities.json"

    def secure_home(self) -> None:
        """Modes of the home as the module docstring says; makes the interpreter reachable."""
        self._home.mkdir(parents=True, exist_ok=True)
        for folder in (self._home, Path(sys.executable), Path(os.path.realpath(sys.executable)), Path(sys.prefix)):
            for changed in make_searchable(folder if folder.is_dir() else folder.parent):
                log.warning("made %s searchable by others (o+x) so unprivileged services reach it", changed)
        _chmod(self._home, 0o711)
        for entry in self._home.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                _chmod(entry, _SEARCHABLE.get(entry.name, 0o700))
            elif entry.is_file():
                _chmod(entry, stat.S_IMODE(entry.stat().st_mode) & 0o700)
        for name in ("services", "nodes"):
            (self._home / name).mkdir(exist_ok=True)
            _chmod(self._home / name, 0o711)
        registry = self._home / "registry"
        for folder in (registry / "images", registry / "envs", registry / "serving"):
            _chmod(folder, 0o711)
        for manifest in registry.glob("*/*/manifest.json"):
            _chmod(manifest, 0o600)

    @contextmanager
    def _locked_state(self) -> Iterator[dict[str, int]]:
        """The allocation state (next service number, data groups), locked against other managers."""
        self._state.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._state, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            text = fh.read()
            state: dict[str, int] = json.loads(text) if text.strip() else {}
            yield state
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(state))

    def allocate(self) -> ServiceIdentity:
        """A fresh identity (the span is long: an id comes back only after 50 000 deployments)."""
        with self._locked_state() as state:
            number = state.get("next_service", 0)
            state["next_service"] = (number + 1) % SERVICE_SPAN
        uid = self._uid_base + number
        return ServiceIdentity(uid=uid, gid=uid)

    def _data_group(self, node_tag: str) -> int:
        with self._locked_state() as state:
            key = f"data:{node_tag}"
            if key not in state:
                taken = sum(1 for k in state if k.startswith("data:"))
                state[key] = self._uid_base + SERVICE_SPAN + taken % DATA_GROUP_SPAN
            return state[key]

    def grant_data(self, identity: ServiceIdentity, node: str, data_dir: Path, tags: list[str]) -> ServiceIdentity:
        """``identity`` with the groups of ``tags`` on ``node``; their folders are (re)set to those groups.

        Files may have arrived since the last learner (mock data, ``flops data add``): each is set again.
        """
        for folder in (data_dir.parent.parent, data_dir.parent, data_dir):
            _chmod(folder, 0o711)
        groups = []
        for tag in tags:
            tag_dir = data_dir / tag
            if not tag_dir.is_dir():
                continue
            gid = self._data_group(f"{node}/{tag}")
            for walked, _dirs, files in os.walk(tag_dir):
                os.chown(walked, 0, gid)
                os.chmod(walked, 0o2750)
                for name in files:
                    path = Path(walked) / name
                    os.chown(path, 0, gid, follow_symlinks=False)
                    if not path.is_symlink():
                        os.chmod(path, 0o640)
            groups.append(gid)
        return ServiceIdentity(identity.uid, identity.gid, tuple(groups))

    def own_workdir(self, identity: ServiceIdentity, service_dir: Path) -> None:
        """The service's folder (and its project's) so only the service can read it."""
        _chmod(service_dir.parent, 0o711)
        os.chown(service_dir, identity.uid, identity.gid)
        os.chmod(service_dir, 0o700)
        tmp = service_dir / "tmp"
        tmp.mkdir(exist_ok=True)
        os.chown(tmp, identity.uid, identity.gid)
