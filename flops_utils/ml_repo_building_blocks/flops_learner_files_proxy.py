"""``load_dataset()``: this node's parquet data for the project's data tags as one Hugging Face dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flops_utils.logging import logger
from flops_utils.node_data import data_dir, parquet_files, project_tags, read_table


def load_dataset(data_tags: Sequence[str] | None = None) -> Any:
    """A ``datasets.Dataset`` (arrow format, like the addon's) of every ``<tag>.*.parquet`` file of this
    node for the project's data tags (or ``data_tags``), rows in file-name order.

    Raises ``flops_utils.node_data.NodeDataError`` when the node holds no such data.
    """
    import datasets

    directory = data_dir()
    tags = list(data_tags) if data_tags else project_tags(directory)
    files = parquet_files(directory, tags)
    table = read_table(files)
    logger.info("loaded %d rows from %d parquet file(s) for data tag(s) %s", table.num_rows, len(files), tags)
    # Straight from the arrow table: no copy to the Hugging Face cache.
    return datasets.Dataset(datasets.table.InMemoryTable(table)).with_format("arrow")
