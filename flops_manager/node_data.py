"""User data on learner nodes, the Oakestra FLOps addon's way: ``<data_tag>.<anything>.parquet`` files.

A node's data for tag ``T`` lives in ``<node data dir>/T/`` (the folder the learner gets as
``FLOPS_DATA_DIR``), next to the mock provider's ``part.npz``. Files are checked before they land:
a name and tag FLOps can read back, a size limit, a readable parquet file whose columns agree with
the tag's other parquet files on that node. The write is atomic (temp file, then rename).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from flops_manager.orchestrator.base import CAP_LEARNER, Node

# No dots in a tag: file names are <tag>.<anything>.parquet and must say which tag they belong to.
TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}\.parquet$")
PARQUET_SUFFIX = ".parquet"
NPZ_SUFFIX = ".npz"


class DataError(ValueError):
    """The upload breaks a rule; ``field`` names what (``node``, ``tag``, ``file``, ``body``)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


class DataFile(BaseModel):
    """One file of a node's data for a tag."""

    name: str
    format: str  # "parquet" or "npz"
    bytes: int
    rows: int | None = None  # parquet only
    columns: list[str] | None = None  # parquet only


class TagData(BaseModel):
    """What one node holds for one data tag."""

    node: str
    tag: str
    files: list[DataFile]
    rows: int  # parquet rows


class DataAdded(BaseModel):
    """The answer to an upload."""

    node: str
    tag: str
    file: DataFile
    path: str


def check_tag(tag: str) -> None:
    """Raise DataError unless ``tag`` is a valid data tag for parquet data."""
    if not TAG_PATTERN.match(tag):
        raise DataError(
            "tag", f"data tag {tag!r} must be 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )


def stored_name(tag: str, file_name: str) -> str:
    """The name a file gets on the node: ``<tag>.<name>.parquet`` (the tag prefix is added if missing)."""
    base = Path(file_name).name
    if base != file_name or not FILE_PATTERN.match(base):
        raise DataError("file", f"file name {file_name!r} must be a plain name like part-1.parquet")
    return base if base.startswith(f"{tag}.") and base != f"{tag}{PARQUET_SUFFIX}" else f"{tag}.{base}"


def learner_node(nodes: Iterable[Node], name: str) -> Node:
    """The learner node called ``name`` with a data directory; DataError (404) otherwise."""
    learners = {n.name: n for n in nodes if CAP_LEARNER in n.capabilities and n.data_dir}
    if name not in learners:
        known = ", ".join(sorted(learners)) or "none"
        raise DataError("node", f"no learner node {name!r} with a data directory (learner nodes: {known})", 404)
    return learners[name]


def describe_parquet(path: Path) -> DataFile:
    """Rows and columns of a parquet file, reading every row group; DataError if it is not readable."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        rows = 0
        for index in range(parquet.num_row_groups):  # one group at a time: memory stays bounded
            rows += parquet.read_row_group(index).num_rows
        columns = list(parquet.schema_arrow.names)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError("body", f"not a readable parquet file: {type(exc).__name__}: {exc}") from None
    return DataFile(name=path.name, format="parquet", bytes=path.stat().st_size, rows=rows, columns=columns)


def too_large(max_bytes: int) -> DataError:
    """The error of a file over the size limit."""
    return DataError("body", f"the file is larger than the limit of {max_bytes / (1 << 20):g} MB", 413)


def add_file(node: Node, tag: str, file_name: str, staged: Path) -> DataAdded:
    """Check the uploaded file ``staged`` and store it as ``<node data dir>/<tag>/<tag>.<name>.parquet``."""
    check_tag(tag)
    name = stored_name(tag, file_name)
    tag_dir = Path(node.data_dir or "") / tag
    final = tag_dir / name
    if final.exists():
        raise DataError("file", f"{name} already exists for tag {tag!r} on {node.name}", 409)
    if staged.stat().st_size == 0:
        raise DataError("body", "the file is empty")
    described = describe_parquet(staged)
    if described.rows == 0:
        raise DataError("body", "the parquet file holds no rows")
    others = [f for f in list_tag(tag_dir, tag) if f.format == "parquet" and f.columns is not None]
    if others and set(others[0].columns or []) != set(described.columns or []):
        raise DataError(
            "body",
            f"columns {described.columns} differ from those of {others[0].name} ({others[0].columns}); "
            f"the files of tag {tag!r} are read as one table",
        )
    tag_dir.mkdir(parents=True, exist_ok=True)
    partial = tag_dir / f".{name}.partial"
    shutil.copyfile(staged, partial)
    os.replace(partial, final)
    return DataAdded(node=node.name, tag=tag, file=described.model_copy(update={"name": name}), path=str(final))


def list_tag(tag_dir: Path, tag: str) -> list[DataFile]:
    """The files of one tag folder: ``<tag>.*.parquet`` (with rows and columns) and ``*.npz``."""
    if not tag_dir.is_dir():
        return []
    files: list[DataFile] = []
    for path in sorted(tag_dir.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.name.startswith(f"{tag}.") and path.suffix == PARQUET_SUFFIX:
            try:
                files.append(describe_parquet(path))
            except DataError:
                files.append(DataFile(name=path.name, format="parquet", bytes=path.stat().st_size))
        elif path.suffix == NPZ_SUFFIX:
            files.append(DataFile(name=path.name, format="npz", bytes=path.stat().st_size))
    return files


def list_data(nodes: Iterable[Node]) -> list[TagData]:
    """Per learner node and tag: its files and parquet rows."""
    listing: list[TagData] = []
    for node in sorted(nodes, key=lambda n: n.name):
        if CAP_LEARNER not in node.capabilities or not node.data_dir:
            continue
        root = Path(node.data_dir)
        tags = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for tag in tags:
            files = list_tag(root / tag, tag)
            if files:
                rows = sum(f.rows or 0 for f in files)
                listing.append(TagData(node=node.name, tag=tag, files=files, rows=rows))
    return listing
