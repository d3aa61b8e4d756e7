"""Flower's object pulls, retrying sooner: the seconds that a message's race with its objects costs.

Since Flower 1.2x a message travels as a head plus objects (its arrays), pushed one after the other,
and the receiver pulls each object, retrying while the sender has not pushed it yet. In 1.41 the
first retry waits **1 s** and each next one twice as long (``flwr.supercore.inflatable``:
``PULL_INITIAL_BACKOFF = 1``, cap 10 s), and the race is lost on nearly every exchange of a small
model: the SuperLink hands a SuperNode the message before the ServerApp pushed its arrays, and the
SuperNode makes the ClientApp's task before it stored them, so the ClientApp's pull misses too. The
observed result: rounds of 0.05 s of compute taking 1 to 3.6 s, the SuperNode's "Receiving" →
"Received" taking 1.3 s and its task waiting 2 s more.

:func:`retry_sooner` makes the first retry come after ``FIRST_RETRY_S`` and caps the backoff at
``LONGEST_WAIT_S``; the time bound stays Flower's (``max_time``, 2 h), so a slow upload of a big
model is still waited for, only polled more often. It changes the defaults of the two pull
functions every Flower caller uses (the SuperNode, the ClientApp runtime, the ServerApp's grid)
and nothing else; each FLOps process that runs one of them calls it once, before it forks. ``flwr``
is pinned and ``tests/integration/test_object_pulls.py`` fails when the patched source changes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PATCHED_MODULE = "flwr.supercore.inflatable.inflatable_utils"
PULL_FUNCTIONS = ("pull_objects", "pull_and_inflate_object_from_tree")
FIRST_RETRY_S = 0.02  # the race is a few ms wide on one machine, tens across hosts
LONGEST_WAIT_S = 0.5


def retry_sooner(first_retry_s: float = FIRST_RETRY_S, longest_wait_s: float = LONGEST_WAIT_S) -> ModuleType:
    """Make Flower's object pulls retry after ``first_retry_s``, doubling up to ``longest_wait_s``, bounded
    by time only (Flower's ``max_time``) rather than by a count that assumed long waits; return the module."""
    module = importlib.import_module(PATCHED_MODULE)
    for name in PULL_FUNCTIONS:
        defaults = getattr(module, name).__kwdefaults__
        defaults["initial_backoff"] = first_retry_s
        defaults["backoff_cap"] = longest_wait_s
        defaults["max_tries_per_object"] = None
    return module
