"""Loads this node's digits partition from the directory in ``FLOPS_DATA_DIR``.

The data provider writes one or more ``*.npz`` files there, each holding the arrays
``x_train``, ``y_train``, ``x_test`` and ``y_test``; all of them are concatenated.
"""

import glob
import os

import numpy as np

DATA_DIR_ENV = "FLOPS_DATA_DIR"


class DataManager:
    """Reads the node-local partitions; needs nothing but ``FLOPS_DATA_DIR``."""

    def __init__(self):
        self.data_dir = os.environ.get(DATA_DIR_ENV, "")

    def get_data(self):
        """Return ``((x_train, y_train), (x_test, y_test))`` from every ``*.npz`` file."""
        if not self.data_dir:
            raise RuntimeError(f"{DATA_DIR_ENV} is not set: this node has no data directory")
        files = sorted(glob.glob(os.path.join(self.data_dir, "*.npz")))
        if not files:
            raise FileNotFoundError(f"no .npz partition found in {self.data_dir}")
        parts = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
        for path in files:
            with np.load(path) as npz:
                missing = [key for key in parts if key not in npz.files]
                if missing:
                    raise KeyError(f"{path} lacks the arrays {missing}")
                for key, chunks in parts.items():
                    chunks.append(npz[key])
        x_train, y_train, x_test, y_test = (np.concatenate(parts[key]) for key in parts)
        x_train = x_train.reshape(len(x_train), -1).astype(np.float64)
        x_test = x_test.reshape(len(x_test), -1).astype(np.float64)
        return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))
