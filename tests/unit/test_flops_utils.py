"""FLOps' flops_utils: the addon's import paths, load_dataset over this node's parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flops_utils import flops_learner_files_wrapper
from flops_utils.ml_repo_building_blocks import load_dataset
from flops_utils.ml_repo_templates import DataManagerTemplate, ModelManagerTemplate
from flops_utils.node_data import NodeDataError
from flops_utils.types import MLModelFlavor
from image_builder.probe import REQUIRED_METHODS
from tests.helpers.parquet_digits import write_digits_parquet


def test_single_tag_folder_is_read_as_one_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "digits"
    write_digits_parquet(folder / "digits.a.parquet", slice(0, 30))
    write_digits_parquet(folder / "digits.b.parquet", slice(30, 50))
    write_digits_parquet(folder / "other.c.parquet", slice(50, 60))  # another tag's file: not read
    (folder / "part.npz").write_bytes(b"")  # the npz layout beside it is ignored
    monkeypatch.setenv("FLOPS_DATA_DIR", str(folder))
    monkeypatch.delenv("FLOPS_DATA_TAGS", raising=False)
    dataset = load_dataset()
    assert len(dataset) == 50
    dataset.set_format("numpy")
    assert dataset["image"].shape == (50, 8, 8)  # the addon's repos reshape this column
    assert dataset["image"].max() == 16  # as shipped
    assert list(dataset["label"][:3]) == [0, 1, 2]


def test_several_tags_from_the_node_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_digits_parquet(tmp_path / "a" / "a.x.parquet", slice(0, 10))
    write_digits_parquet(tmp_path / "b" / "b.y.parquet", slice(10, 15))
    write_digits_parquet(tmp_path / "c" / "c.z.parquet", slice(15, 40))
    monkeypatch.setenv("FLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FLOPS_DATA_TAGS", "a,b")
    assert len(load_dataset()) == 15
    assert len(flops_learner_files_wrapper.load_ml_data()) == 15


def test_no_data_for_the_tag_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "digits").mkdir()
    monkeypatch.setenv("FLOPS_DATA_DIR", str(tmp_path / "digits"))
    monkeypatch.delenv("FLOPS_DATA_TAGS", raising=False)
    with pytest.raises(NodeDataError, match=r"no <data_tag>\.\*\.parquet files"):
        load_dataset()
    monkeypatch.setenv("FLOPS_DATA_TAGS", "digits")
    with pytest.raises(NodeDataError, match="for data tag 'digits'"):
        load_dataset()


def test_files_with_different_columns_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "t"
    write_digits_parquet(folder / "t.a.parquet", slice(0, 5))
    pq.write_table(pa.table({"x": np.arange(3)}), folder / "t.b.parquet")
    monkeypatch.setenv("FLOPS_DATA_DIR", str(folder))
    monkeypatch.delenv("FLOPS_DATA_TAGS", raising=False)
    with pytest.raises(NodeDataError, match="do not share their columns"):
        load_dataset()


def test_templates_are_the_contract() -> None:
    with pytest.raises(TypeError):
        ModelManagerTemplate()  # type: ignore[abstract]

    class Data(DataManagerTemplate):
        def _prepare_data(self) -> None:
            return None

        def get_data(self) -> tuple[list[int], list[int]]:
            return [1], [2]

    assert Data().get_data() == ([1], [2])
    assert set(ModelManagerTemplate.__abstractmethods__) == set(REQUIRED_METHODS)
    assert str(MLModelFlavor.PYTORCH) == "pytorch"
