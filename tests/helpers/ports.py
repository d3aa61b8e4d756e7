"""Free TCP ports on 127.0.0.1 for the services a test (or a benchmark) starts."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that nothing listens on right now (all bound at once, so they differ)."""
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in socks]
    for sock in socks:
        sock.close()
    return ports


def free_port() -> int:
    """One port nothing listens on right now (also a port that refuses connections)."""
    return free_ports(1)[0]
