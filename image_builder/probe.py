"""Runs INSIDE a built runtime (stdlib and numpy only): imports the repo's modules and probes ModelManager.

Usage: ``python -I -B probe.py APP_DIR RESULT_JSON``. Writes ``{"ok": true, ...}`` or
``{"ok": false, "what": ..., "error": ..., "file": ..., "line": ...}`` to RESULT_JSON.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

REQUIRED_METHODS = (
    "set_model_data",
    "get_model",
    "get_model_parameters",
    "set_model_parameters",
    "fit_model",
    "evaluate_model",
)


class ProbeFailure(Exception):
    """The repo does not behave as the contract says."""


def _location(exc: BaseException, app_dir: str) -> tuple[str | None, int | None]:
    """The deepest place inside the app (relative file, line) where ``exc`` happened."""
    if isinstance(exc, SyntaxError) and exc.filename:
        path = os.path.abspath(exc.filename)
        if path.startswith(app_dir + os.sep):
            return os.path.relpath(path, app_dir), exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if path.startswith(app_dir + os.sep):
            found = (os.path.relpath(path, app_dir), frame.lineno)
    return found


def _failure(what: str, exc: BaseException, app_dir: str) -> dict[str, Any]:
    file, line = _location(exc, app_dir)
    error = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return {"ok": False, "what": what, "error": error, "file": file, "line": line}


def probe(app_dir: str) -> dict[str, Any]:
    """Import the runtime and the repo modules, construct ModelManager() and read its parameters."""
    sys.path.insert(0, app_dir)
    what = "importing the FLOps runtime (flops_common, fl_actors)"
    try:
        import numpy as np

        import fl_actors  # noqa: F401
        import flops_common  # noqa: F401

        what = "importing model_manager"
        import model_manager

        what = "importing data_manager"
        import data_manager  # noqa: F401

        what = "ModelManager()"
        cls = getattr(model_manager, "ModelManager", None)
        if cls is None:
            raise ProbeFailure("model_manager has no attribute ModelManager")
        instance = cls()
        missing = [m for m in REQUIRED_METHODS if not callable(getattr(instance, m, None))]
        if missing:
            raise ProbeFailure(f"ModelManager() lacks callable method(s): {', '.join(missing)}")
        what = "ModelManager().get_model_parameters()"
        params = instance.get_model_parameters()
        if not isinstance(params, list):
            raise ProbeFailure(f"returned {type(params).__name__}, expected a list of numpy arrays")
        if not params:
            raise ProbeFailure("returned an empty list: the model needs initial parameters")
        for index, array in enumerate(params):
            if not isinstance(array, np.ndarray):
                raise ProbeFailure(f"element {index} is {type(array).__name__}, expected numpy.ndarray")
        return {
            "ok": True,
            "parameters": len(params),
            "shapes": [list(a.shape) for a in params[:16]],
            "bytes": int(sum(a.nbytes for a in params)),
        }
    except ProbeFailure as exc:
        return {"ok": False, "what": what, "error": str(exc), "file": None, "line": None}
    except BaseException as exc:  # SystemExit from user code is a failure too
        return _failure(what, exc, app_dir)


def main() -> None:
    """Entry point: probe APP_DIR, write the result to RESULT_JSON."""
    app_dir, result_path = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.chdir(app_dir)
    result = probe(app_dir)
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
