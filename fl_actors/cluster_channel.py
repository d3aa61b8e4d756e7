"""The hand-over inside a cluster aggregator: its root-facing ClientApp asks, its cluster ServerApp answers.

A cluster aggregator runs two Flower roles in one place: a SuperNode of the root's federation (whose
ClientApp process gets one message per cycle) and the long-lived ServerApp run of its cluster's own
SuperLink. Neither can start the other per cycle without a process start on the critical path, so the
ClientApp drops each request into a directory both share and waits for the reply the ServerApp writes.

A message is a ``.npz`` of its arrays plus a ``.json`` of the rest, written to temporary names and
renamed, JSON last, so a reader never sees half a message. Only plain arrays are stored
(``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

CHANNEL_ENV = "FLOPS_CLUSTER_CHANNEL"  # the directory both sides of one cluster aggregator share
CLUSTER_ENV = "FLOPS_CLUSTER"  # the cluster's name; set, it makes the ServerApp a cluster ServerApp

RequestKind = Literal["train", "evaluate"]


class ChannelTimeout(TimeoutError):
    """No reply (or no request) within the time allowed."""


@dataclass
class CycleRequest:
    """What the root asked the cluster for: train from these arrays, or evaluate them."""

    kind: RequestKind
    arrays: list[np.ndarray]
    cycle: int = 0
    eval_global: bool = False  # learners evaluate the received (global) model before they train
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class CycleReply:
    """The cluster's answer: its aggregate (train), its metrics, its rounds, or why it failed."""

    request_id: str
    metrics: dict[str, float]
    arrays: list[np.ndarray] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _write(directory: Path, stem: str, arrays: list[np.ndarray], meta: dict[str, Any]) -> None:
    tmp = directory / f".{stem}.{uuid.uuid4().hex}"
    with open(f"{tmp}.npz", "wb") as handle:
        np.savez(handle, *arrays)
    os.replace(f"{tmp}.npz", directory / f"{stem}.npz")
    Path(f"{tmp}.json").write_text(json.dumps(meta), encoding="utf-8")
    os.replace(f"{tmp}.json", directory / f"{stem}.json")


def _read(directory: Path, stem: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    meta = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    with np.load(directory / f"{stem}.npz", allow_pickle=False) as loaded:
        arrays = [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
    for suffix in (".json", ".npz"):
        (directory / f"{stem}{suffix}").unlink(missing_ok=True)
    return arrays, meta


class Channel:
    """One cluster aggregator's request/reply directory."""

    def __init__(self, directory: Path, poll_s: float = 0.05) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.poll_s = poll_s

    def _wait_for(self, pattern: str, timeout_s: float) -> Path:
        deadline = time.monotonic() + timeout_s
        while True:
            found = sorted(self.directory.glob(pattern), key=lambda p: p.stat().st_mtime)
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise ChannelTimeout(f"nothing arrived in {self.directory} within {timeout_s:.0f} s")
            time.sleep(self.poll_s)

    # the ClientApp's side
    def ask(self, request: CycleRequest, timeout_s: float) -> CycleReply:
        """Hand ``request`` to the cluster ServerApp and wait for its reply."""
        meta = {"kind": request.kind, "cycle": request.cycle, "eval_global": request.eval_global}
        _write(self.directory, f"req-{request.request_id}", request.arrays, meta)
        self._wait_for(f"rep-{request.request_id}.json", timeout_s)
        arrays, reply = _read(self.directory, f"rep-{request.request_id}")
        return CycleReply(
            request_id=request.request_id,
            metrics={k: float(v) for k, v in reply["metrics"].items()},
            arrays=arrays,
            rounds=list(reply["rounds"]),
            error=reply["error"],
        )

    # the ServerApp's side
    def next_request(self, timeout_s: float) -> CycleRequest:
        """The oldest request waiting (blocks up to ``timeout_s``)."""
        path = self._wait_for("req-*.json", timeout_s)
        stem = path.name.removesuffix(".json")
        arrays, meta = _read(self.directory, stem)
        return CycleRequest(
            kind=meta["kind"],
            arrays=arrays,
            cycle=int(meta["cycle"]),
            eval_global=bool(meta["eval_global"]),
            request_id=stem.removeprefix("req-"),
        )

    def answer(self, reply: CycleReply) -> None:
        """Write the reply the asking ClientApp waits for."""
        meta = {"metrics": reply.metrics, "rounds": reply.rounds, "error": reply.error}
        _write(self.directory, f"rep-{reply.request_id}", reply.arrays, meta)
