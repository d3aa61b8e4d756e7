"""scikit-learn's bundled digits as addon-style parquet files (columns ``image`` 8x8, ``label``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits


def write_digits_parquet(path: Path, rows: slice | np.ndarray) -> int:
    """Write the selected digits (values 0..16, as shipped) to ``path``; return the row count."""
    digits = load_digits()
    images, labels = digits.images[rows], digits.target[rows]
    table = pa.table({"image": [im.astype(np.int64).tolist() for im in images], "label": labels.astype(np.int64)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return len(labels)
