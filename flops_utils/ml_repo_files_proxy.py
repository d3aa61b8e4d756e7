"""The addon's accessor for the repo's ``ModelManager`` (the repo root must be on ``sys.path``)."""

from __future__ import annotations

import importlib
from typing import Any


def get_model_manager() -> Any:
    """A new ``ModelManager()`` from the repo's ``model_manager.py``."""
    return importlib.import_module("model_manager").ModelManager()
