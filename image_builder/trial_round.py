"""Runs INSIDE a runtime: the builder's import probe, then one local round of the repo as a learner
would run it (``flops check``), in one process so the repo's libraries are imported once.

Usage: ``python -I trial_round.py APP_DIR RESULT_JSON`` with ``FLOPS_DATA_DIR`` set. The round loads
the data (``DataManager().get_data()``), then ``ModelManager()``: ``set_model_data``, a parameter round
trip, ``fit_model`` and ``evaluate_model``. Writes ``{"probe": {...}, "trial": {...}}``, each
``{"ok": true, ...}`` or a failure like ``probe.py``'s (no trial when the probe failed).

``FLOPS_BYTECODE_DONORS`` (``site-packages`` dirs, ``os.pathsep``-separated): a module imported without
bytecode takes a donor's ``.pyc`` of the same source instead of being compiled (``bytecode_reuse.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

DONORS_ENV = "FLOPS_BYTECODE_DONORS"


def _probe_module() -> Any:
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # probe.py sits next to this file
    import probe

    return probe


def adopt_donor_bytecode(donors: list[str]) -> None:
    """Before the interpreter compiles a module of this runtime's ``site-packages``, give it a donor's
    bytecode of the same source: only what the round imports, a copy instead of a compile each."""
    import importlib.machinery as machinery
    import importlib.util
    import sysconfig

    sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # bytecode_reuse.py sits next to this file
    import bytecode_reuse

    site = sysconfig.get_paths()["purelib"] + os.sep

    class AdoptingLoader(machinery.SourceFileLoader):
        def get_code(self, fullname: str) -> Any:
            source = self.get_filename(fullname)
            cached = importlib.util.cache_from_source(source)
            if source.startswith(site) and not os.path.exists(cached):
                relative_source, relative_pyc = source[len(site) :], cached[len(site) :]
                for donor in donors:
                    donor_pyc = os.path.join(donor, relative_pyc)
                    if os.path.exists(donor_pyc) and bytecode_reuse.adopt(
                        donor_pyc, os.path.join(donor, relative_source), source, cached
                    ):
                        break
            return super().get_code(fullname)

    # The interpreter's own finder with the source loader swapped (same order: extensions, source, bytecode).
    hook = machinery.FileFinder.path_hook(
        (machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
        (AdoptingLoader, machinery.SOURCE_SUFFIXES),
        (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES),
    )
    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()


def _samples(split: Any) -> int:
    if isinstance(split, tuple) and len(split) == 2 and hasattr(split[0], "__len__"):
        return len(split[0])
    return len(split) if hasattr(split, "__len__") else -1


def trial(app_dir: str) -> dict[str, Any]:
    """Load the data, fit once, evaluate once; the result or the first failure with its place."""
    probe = _probe_module()
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    what = "importing data_manager"
    timings: dict[str, float] = {}
    try:
        import data_manager

        what = "DataManager().get_data()"
        started = time.monotonic()
        train, test = data_manager.DataManager().get_data()
        samples, test_samples = _samples(train), _samples(test)
        del train, test
        timings["load_data_s"] = time.monotonic() - started

        import model_manager

        what = "ModelManager()"
        manager = model_manager.ModelManager()
        what = "ModelManager().set_model_data()"
        manager.set_model_data()
        what = "ModelManager().set_model_parameters(get_model_parameters())"
        manager.set_model_parameters(manager.get_model_parameters())
        what = "fit_model"
        started = time.monotonic()
        fitted = manager.fit_model()
        timings["fit_s"] = time.monotonic() - started
        fit_samples = int(fitted[0] if isinstance(fitted, tuple | list) else fitted)
        what = "evaluate_model"
        started = time.monotonic()
        loss, accuracy, evaluated = manager.evaluate_model()
        timings["evaluate_s"] = time.monotonic() - started
        return {
            "ok": True,
            "data_samples": samples,
            "data_test_samples": test_samples,
            "fit_samples": fit_samples,
            "loss": float(loss),
            "accuracy": float(accuracy),
            "evaluated": int(evaluated),
            **{k: round(v, 3) for k, v in timings.items()},
        }
    except BaseException as exc:  # SystemExit from user code is a failure too
        result: dict[str, Any] = probe._failure(what, exc, app_dir)
        return result


def main() -> None:
    """Entry point: run the trial in APP_DIR, write the result to RESULT_JSON."""
    app_dir, result_path = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.chdir(app_dir)
    donors = [d for d in os.environ.get(DONORS_ENV, "").split(os.pathsep) if os.path.isdir(d)]
    if donors:
        adopt_donor_bytecode(donors)
    started = time.monotonic()
    result: dict[str, Any] = {"probe": _probe_module().probe(app_dir)}
    result["probe"]["seconds"] = round(time.monotonic() - started, 3)
    if result["probe"].get("ok"):
        started = time.monotonic()
        result["trial"] = trial(app_dir)
        result["trial"]["seconds"] = round(time.monotonic() - started, 3)
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
