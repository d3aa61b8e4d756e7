"""This node's parquet data, the addon's way: files ``<data_tag>.<anything>.parquet``.

The learner's data directory (``FLOPS_DATA_DIR``) is the node's folder for the project's data tag
(``<node data dir>/<tag>/``), or, for a project with several tags, the node's data dir with one such
folder per tag. ``FLOPS_DATA_TAGS`` (comma-separated), when set, names the project's tags.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "FLOPS_DATA_DIR"
DATA_TAGS_ENV = "FLOPS_DATA_TAGS"
PARQUET_SUFFIX = ".parquet"


class NodeDataError(RuntimeError):
    """This node holds no usable parquet data for the project's tags."""


def data_dir() -> Path:
    """The learner's data directory (``FLOPS_DATA_DIR``)."""
    value = os.environ.get(DATA_DIR_ENV, "")
    if not value:
        raise NodeDataError(f"{DATA_DIR_ENV} is not set: this process has no node data directory")
    return Path(value)


def tag_files(folder: Path, tag: str) -> list[Path]:
    """The ``<tag>.<anything>.parquet`` files directly in ``folder``, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.name.startswith(f"{tag}.")
        and p.name.endswith(PARQUET_SUFFIX)
        and len(p.name) > len(tag) + 1 + len(PARQUET_SUFFIX)
    )


def project_tags(directory: Path) -> list[str]:
    """The project's data tags: ``FLOPS_DATA_TAGS`` if set, else the tag folder ``directory`` is."""
    listed = [t.strip() for t in os.environ.get(DATA_TAGS_ENV, "").split(",") if t.strip()]
    if listed:
        return listed
    if tag_files(directory, directory.name):
        return [directory.name]
    raise NodeDataError(
        f"no <data_tag>.*.parquet files in {directory}; set {DATA_TAGS_ENV} when a project has several data tags"
    )


def parquet_files(directory: Path, tags: Sequence[str]) -> list[Path]:
    """Every parquet file of ``tags`` under ``directory`` (the tag folder itself, or one folder per tag)."""
    files: list[Path] = []
    for tag in tags:
        found = tag_files(directory, tag) or tag_files(directory / tag, tag)
        if not found:
            raise NodeDataError(f"no {tag}.*.parquet file for data tag {tag!r} in {directory}")
        files.extend(found)
    return files


def read_table(files: Sequence[Path]) -> Any:
    """One ``pyarrow.Table`` of all ``files``; their columns must agree."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(path) for path in files]
    try:
        return pa.concat_tables(tables, promote_options="none")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        names = ", ".join(p.name for p in files)
        raise NodeDataError(f"the parquet files {names} do not share their columns: {exc}") from None
