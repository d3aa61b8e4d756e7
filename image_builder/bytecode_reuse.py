"""Reusing a module's bytecode from another environment (stdlib only: it also runs INSIDE a runtime,
imported by ``trial_round.py`` as ``bytecode_reuse``).

The interpreter accepts a timestamp-based ``.pyc`` (PEP 552) when its header holds the source's mtime and
size. uv hard-links every env to its cache, so two envs usually share the source file itself and can share
its ``.pyc`` as is; another unpack of the same wheel has equal bytes but its own mtime, and takes a copy of
the ``.pyc`` with its own mtime in the header.
"""

from __future__ import annotations

import filecmp
import os
import shutil

PYC_HEADER_BYTES = 16  # magic, flags, then the source's mtime and size


def _timestamp_fields(stat: os.stat_result) -> bytes:
    return (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")


def restamped(pyc: str, source: str, target: str) -> bytes | None:
    """``pyc`` (valid for ``source``) with ``target``'s mtime and size in its header, when ``target`` holds
    the same bytes as ``source``; None when the ``.pyc`` is stale or hash-based, or the sources differ."""
    try:
        with open(pyc, "rb") as handle:
            data = handle.read()
        src, dst = os.stat(source), os.stat(target)
    except OSError:
        return None
    flags = int.from_bytes(data[4:8], "little") if len(data) >= PYC_HEADER_BYTES else -1
    if flags != 0 or data[8:16] != _timestamp_fields(src) or src.st_size != dst.st_size:
        return None
    if not filecmp.cmp(source, target, shallow=False):
        return None
    return data[:8] + _timestamp_fields(dst) + data[16:]


def adopt(pyc: str, source: str, target: str, target_pyc: str) -> bool:
    """Give the module ``target`` the bytecode ``pyc`` of ``source`` at ``target_pyc``; whether it did.

    A hard link when both are one file (or equal bytes with the same mtime), else a restamped copy;
    written atomically, as the interpreter writes its own.
    """
    try:
        same = os.path.samefile(source, target) or (
            int(os.stat(source).st_mtime) == int(os.stat(target).st_mtime)
            and filecmp.cmp(source, target, shallow=False)
        )
    except OSError:
        return False
    data = None if same else restamped(pyc, source, target)
    if not same and data is None:
        return False
    os.makedirs(os.path.dirname(target_pyc), exist_ok=True)
    if data is None:
        try:
            os.link(pyc, target_pyc)
        except FileExistsError:
            return False  # another process wrote it meanwhile
        except OSError:  # another filesystem
            shutil.copy2(pyc, target_pyc)
        return True
    staged = f"{target_pyc}.{os.getpid()}.tmp"
    with open(staged, "wb") as handle:
        handle.write(data)
    os.replace(staged, target_pyc)
    return True
