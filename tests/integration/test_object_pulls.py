"""Flower's object pulls retry sooner: the patched source is the one it was written for, and a pull
that loses the race with its sender by a few milliseconds waits milliseconds, not Flower's 1 s."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fl_actors import object_pulls

# flwr 1.41.0's module. When this changes, re-read it: the patch assumes every caller relies on the
# defaults of these two functions, and that ``max_time`` still bounds a pull when the count does not.
PATCHED_SHA256 = "077b26d921aa86389f0a9e16bab761bd10525ec66d6f175b56fdf4bac7872d40"


@pytest.fixture
def patched() -> Iterator[object]:
    module = importlib.import_module(object_pulls.PATCHED_MODULE)
    saved = {name: dict(getattr(module, name).__kwdefaults__) for name in object_pulls.PULL_FUNCTIONS}
    yield object_pulls.retry_sooner()
    for name, defaults in saved.items():
        getattr(module, name).__kwdefaults__.update(defaults)


def test_patched_module_source_is_unchanged() -> None:
    spec = importlib.util.find_spec(object_pulls.PATCHED_MODULE)
    assert spec is not None and spec.origin is not None
    digest = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()
    assert digest == PATCHED_SHA256, "flwr's object pulls changed: re-check fl_actors/object_pulls.py"


def test_flower_waits_a_second_before_the_first_retry() -> None:
    module = importlib.import_module(object_pulls.PATCHED_MODULE)
    for name in object_pulls.PULL_FUNCTIONS:
        defaults = inspect.signature(getattr(module, name)).parameters
        assert defaults["initial_backoff"].default == 1
        assert defaults["max_time"].default == 7200


def test_a_pull_that_lost_the_race_by_milliseconds_ends_in_milliseconds(patched: object) -> None:
    module = importlib.import_module(object_pulls.PATCHED_MODULE)
    available_at = time.monotonic() + 0.05  # the sender pushes the object 50 ms after the head

    def pull(object_id: str) -> bytes:
        if time.monotonic() < available_at:
            raise module.ObjectUnavailableError(object_id)
        return b"content"

    started = time.monotonic()
    contents = module.pull_objects(["a", "b"], pull)
    took = time.monotonic() - started
    assert contents == {"a": b"content", "b": b"content"}
    assert took < 0.3, f"{took:.2f} s (Flower's own first retry: 0.8-1.2 s)"
    defaults = module.pull_and_inflate_object_from_tree.__kwdefaults__
    assert defaults["initial_backoff"] == object_pulls.FIRST_RETRY_S
    assert defaults["backoff_cap"] == object_pulls.LONGEST_WAIT_S
    assert defaults["max_tries_per_object"] is None and defaults["max_time"] == 7200
