"""Scratch space and locks of builders under the registry root.

    ROOT/tmp/build-<digest>-<random>/   one build's scratch (clone, staged runtimes and image); removed at exit
    ROOT/locks/<name>.lock              flock files serializing builders of the same runtimes or image

Scratch lives under ROOT so staged runtimes and images reach their place with an atomic rename.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STALE_AFTER_S = 6 * 3600


def scratch_root(root: Path) -> Path:
    """Where builders keep their scratch directories."""
    return root / "tmp"


def new_scratch(root: Path, digest: str) -> Path:
    """A fresh scratch directory for one build."""
    base = scratch_root(root)
    base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"build-{digest[:12]}-", dir=base))
    # Searchable, never listable or writable by others: the repo's import check runs as an unprivileged
    # user (``flops_common.untrusted``) and must reach the staged runtimes and app by their names.
    os.chmod(base, 0o711)
    os.chmod(scratch, 0o711)
    return scratch


def sweep_stale(root: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove scratch left by builders that were killed; return what was removed."""
    base = scratch_root(root)
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    limit = time.time() - older_than_s
    for entry in base.iterdir():
        try:
            if entry.stat().st_mtime < limit:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        except FileNotFoundError:
            continue
    return removed


@contextmanager
def exclusive(root: Path, name: str) -> Iterator[None]:
    """Hold the lock ``name`` (released by the OS if the builder dies)."""
    locks = root / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def move_into_place(staged: Path, final: Path, scratch: Path) -> bool:
    """Rename ``staged`` to ``final`` atomically; an incomplete ``final`` is moved to ``scratch`` first.

    Call with the lock of ``final`` held and only after checking that ``final`` is not complete.
    Returns False if ``final`` appeared meanwhile (then ``staged`` is left where it is).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        final.rename(scratch / f"stale-{final.name}-{time.time_ns()}")
    try:
        staged.rename(final)
    except OSError:
        return False
    return True
