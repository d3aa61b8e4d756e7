"""The addon's shared loggers: ``logger`` and ``colorful_logger`` (plain messages to stderr)."""

from __future__ import annotations

import logging as _logging


def configure_logger(name: str, level: int) -> _logging.Logger:
    """A logger writing bare messages to stderr (one handler, however often it is configured)."""
    configured = _logging.getLogger(name)
    configured.setLevel(level)
    if not configured.handlers:
        handler = _logging.StreamHandler()
        handler.setFormatter(_logging.Formatter("%(message)s"))
        configured.addHandler(handler)
    configured.propagate = False
    return configured


logger = configure_logger("flops_utils", _logging.INFO)
colorful_logger = logger  # FLOps logs are read as text: no colour codes
