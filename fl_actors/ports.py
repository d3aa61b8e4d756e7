"""Is something listening yet? Waits for a local or remote port without disturbing it."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from pathlib import Path

_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
_LOOPBACK_NAMES = {"localhost", ""}


def is_listening(port: int, tables: tuple[str, ...] = _TABLES) -> bool:
    """Whether a socket of this network namespace listens on ``port``, read from the kernel's tables:
    no connection is made.

    Probing a port nobody listens on yet by connecting to it can, on loopback, connect the socket
    to itself (its ephemeral source port drawn equal to the target) and so occupy the very port
    the server is about to bind.
    """
    wanted = f"{port:04X}"
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and fields[1].rsplit(":", 1)[-1] == wanted:
                return True
    return False


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (IPv6 hosts in brackets) -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local(host: str) -> bool:
    """Whether ``host`` is an address of this network namespace (it can be bound to)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
        return True
    except OSError:
        return False


def is_reachable(address: str, timeout_s: float = 1.0) -> bool:
    """Whether a server listens at ``address``: the kernel's tables for an address of this host (no
    connection, see :func:`is_listening`), a TCP connection for another host."""
    host, port = split_address(address)
    if is_loopback(host) or is_local(host):
        return is_listening(port)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool], alive: Callable[[], bool] = lambda: True, timeout_s: float = 300.0, poll_s: float = 0.05
) -> bool:
    """Poll ``ready`` until it holds; ``False`` once ``alive`` fails or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return True
        if not alive():
            return False
        time.sleep(poll_s)
    return False
