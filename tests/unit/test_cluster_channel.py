"""The hand-over inside a cluster aggregator: requests and replies through the shared directory,
whole, and without pickle."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from fl_actors.cluster_channel import Channel, ChannelTimeout, CycleReply, CycleRequest


def test_a_request_is_answered_with_arrays_metrics_and_rounds(tmp_path: Path) -> None:
    client, server = Channel(tmp_path, poll_s=0.01), Channel(tmp_path, poll_s=0.01)
    weights: list[np.ndarray] = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3)]

    def serve() -> None:
        request = server.next_request(timeout_s=5)
        assert (request.kind, request.cycle, request.eval_global) == ("train", 2, True)
        doubled = [a * 2 for a in request.arrays]
        rounds = [{"round": 3, "cycle": 2, "metrics": {"eval_accuracy": 0.9}}]
        server.answer(CycleReply(request.request_id, {"num-examples": 700.0}, doubled, rounds))

    thread = threading.Thread(target=serve)
    thread.start()
    reply = client.ask(CycleRequest("train", weights, cycle=2, eval_global=True), timeout_s=5)
    thread.join()
    assert reply.error is None and reply.metrics == {"num-examples": 700.0}
    assert [a.tolist() for a in reply.arrays] == [(a * 2).tolist() for a in weights]
    assert reply.arrays[0].dtype == np.float32
    assert reply.rounds[0]["metrics"]["eval_accuracy"] == 0.9
    assert list(tmp_path.iterdir()) == []  # every message is consumed


def test_waiting_ends_in_a_timeout_and_an_unanswered_request_stays_for_the_server(tmp_path: Path) -> None:
    channel = Channel(tmp_path, poll_s=0.01)
    with pytest.raises(ChannelTimeout):
        channel.next_request(timeout_s=0.05)
    first = CycleRequest("evaluate", [np.zeros(1)], cycle=1)
    channel.directory.joinpath("x").write_text("")  # unrelated files are ignored
    with pytest.raises(ChannelTimeout):
        channel.ask(first, timeout_s=0.05)  # nobody answers
    assert channel.next_request(timeout_s=1).request_id == first.request_id
