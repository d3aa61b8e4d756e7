"""Access to the user's ML repo through its contract (``model_manager.py``, ``data_manager.py``).

The repo's directory must be on ``sys.path``: Flower puts the installed app there for the
ServerApp and ClientApp; the learner adds ``job.app_dir`` itself before it loads data.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MODEL_MODULE = "model_manager"
DATA_MODULE = "data_manager"


class ModelManagerLike(Protocol):
    """What FLOps calls on a user's ``ModelManager``."""

    def set_model_data(self) -> None: ...
    def get_model(self) -> Any: ...
    def get_model_parameters(self) -> list[np.ndarray]: ...
    def set_model_parameters(self, params: list[np.ndarray]) -> None: ...
    def fit_model(self) -> Any: ...
    def evaluate_model(self) -> tuple[float, float, int]: ...


def add_to_path(app_dir: str | Path) -> None:
    """Make the repo's modules importable (first on ``sys.path``)."""
    path = str(Path(app_dir).resolve())
    if path not in sys.path:
        sys.path.insert(0, path)


def new_model_manager() -> ModelManagerLike:
    """A fresh ``ModelManager()`` from the repo's ``model_manager.py``."""
    module = importlib.import_module(MODEL_MODULE)
    manager: ModelManagerLike = module.ModelManager()
    return manager


def repo_dir_of_model() -> Path:
    """The directory the repo's ``model_manager.py`` was imported from."""
    module = importlib.import_module(MODEL_MODULE)
    return Path(str(module.__file__)).resolve().parent


def load_local_data() -> tuple[Any, Any]:
    """``DataManager().get_data()`` of the repo: ``(train, test)`` of this node."""
    module = importlib.import_module(DATA_MODULE)
    train, test = module.DataManager().get_data()
    return train, test


def count_samples(split: Any) -> int:
    """How many samples a split holds: an ``(x, y)`` tuple, a data loader (its dataset, not its batches),
    or anything with ``len`` (arrays, datasets)."""
    if isinstance(split, tuple) and len(split) == 2 and hasattr(split[0], "__len__"):
        return len(split[0])
    if hasattr(getattr(split, "dataset", None), "__len__"):  # e.g. torch.utils.data.DataLoader
        return len(split.dataset)
    if hasattr(split, "__len__"):
        return len(split)
    raise TypeError(f"cannot count the samples of a {type(split).__name__}")


def parse_fit_result(result: Any) -> tuple[int, float | None]:
    """``fit_model()``'s result as ``(samples, train_loss)``: an int, or ``(int, loss)``."""
    if isinstance(result, tuple | list):
        samples = int(result[0])
        loss = float(result[1]) if len(result) > 1 and result[1] is not None else None
        return samples, loss
    return int(result), None


def input_example(manager: Any) -> Any:
    """The optional ``ModelManager.get_input_example()`` (a model input, no data needed), else ``None``."""
    getter = getattr(manager, "get_input_example", None)
    return getter() if callable(getter) else None
