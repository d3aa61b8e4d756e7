"""The addon's earlier name for the data entry point (``load_ml_data``), kept for old repos."""

from __future__ import annotations

from typing import Any

from flops_utils.ml_repo_building_blocks import load_dataset


def load_ml_data() -> Any:
    """This node's data as :func:`flops_utils.ml_repo_building_blocks.load_dataset` returns it."""
    return load_dataset()


__all__ = ["load_dataset", "load_ml_data"]
