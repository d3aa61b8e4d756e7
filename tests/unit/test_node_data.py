"""flops data add/ls rules: tag and file names, size, readable parquet, matching columns, atomic write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flops_manager.node_data import DataError, add_file, learner_node, list_data, stored_name
from flops_manager.orchestrator.base import Node
from tests.helpers.parquet_digits import write_digits_parquet


def _node(tmp_path: Path) -> Node:
    return Node(name="learner-0", capabilities=["learner"], data_dir=str(tmp_path / "node"))


def test_file_is_stored_under_its_tag_with_the_tag_prefix(tmp_path: Path) -> None:
    node = _node(tmp_path)
    upload = tmp_path / "up.parquet"
    write_digits_parquet(upload, slice(0, 40))
    added = add_file(node, "addon-digits", "part-1.parquet", upload)
    assert added.file.name == "addon-digits.part-1.parquet" and added.file.rows == 40
    assert added.file.columns == ["image", "label"]
    assert Path(added.path) == tmp_path / "node" / "addon-digits" / "addon-digits.part-1.parquet"
    assert sorted(p.name for p in (tmp_path / "node" / "addon-digits").iterdir()) == ["addon-digits.part-1.parquet"]
    (tmp_path / "node" / "addon-digits" / "part.npz").write_bytes(b"npz")
    listing = list_data([node, Node(name="builder-0", capabilities=["image-builder"], data_dir=str(tmp_path))])
    assert [(e.node, e.tag, e.rows) for e in listing] == [("learner-0", "addon-digits", 40)]
    assert [(f.name, f.format) for f in listing[0].files] == [
        ("addon-digits.part-1.parquet", "parquet"),
        ("part.npz", "npz"),
    ]


@pytest.mark.parametrize(
    ("tag", "name", "field"),
    [
        ("a.b", "x.parquet", "tag"),
        ("-a", "x.parquet", "tag"),
        ("", "x.parquet", "tag"),
        ("t", "../x.parquet", "file"),
        ("t", "x.csv", "file"),
        ("t", ".x.parquet", "file"),
    ],
)
def test_bad_tags_and_names_are_refused(tmp_path: Path, tag: str, name: str, field: str) -> None:
    upload = tmp_path / "up.parquet"
    write_digits_parquet(upload, slice(0, 5))
    with pytest.raises(DataError) as info:
        add_file(_node(tmp_path), tag, name, upload)
    assert info.value.field == field and info.value.status == 422


def test_name_that_already_has_the_tag_keeps_it() -> None:
    assert stored_name("t", "t.a.parquet") == "t.a.parquet"
    assert stored_name("t", "t.parquet") == "t.t.parquet"


def test_unreadable_empty_and_duplicate_files_are_refused(tmp_path: Path) -> None:
    node = _node(tmp_path)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        add_file(node, "t", "a.parquet", junk)
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        add_file(node, "t", "a.parquet", empty)
    assert not (tmp_path / "node" / "t").exists()  # nothing of a refused file lands
    good = tmp_path / "good.parquet"
    write_digits_parquet(good, slice(0, 5))
    add_file(node, "t", "a.parquet", good)
    with pytest.raises(DataError) as info:
        add_file(node, "t", "a.parquet", good)
    assert info.value.status == 409


def test_columns_must_match_the_tags_other_files(tmp_path: Path) -> None:
    node = _node(tmp_path)
    good = tmp_path / "good.parquet"
    write_digits_parquet(good, slice(0, 5))
    add_file(node, "t", "a.parquet", good)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": np.arange(4)}), other)
    with pytest.raises(DataError, match=r"differ from those of t\.a\.parquet"):
        add_file(node, "t", "b.parquet", other)


def test_only_learner_nodes_with_a_data_dir(tmp_path: Path) -> None:
    nodes = [_node(tmp_path), Node(name="builder-0", capabilities=["image-builder"], data_dir=str(tmp_path))]
    assert learner_node(nodes, "learner-0").name == "learner-0"
    with pytest.raises(DataError) as info:
        learner_node(nodes, "builder-0")
    assert info.value.status == 404 and "learner-0" in str(info.value)
