"""Per-project broker accounts: Mosquitto users and ACLs made when a project starts, removed when it ends.

Every project gets two broker users, both with passwords derived from the manager's own broker
password (HMAC), so a restarted manager finds them again without storing anything:

- ``flops-p-<id>`` for the builder, aggregator, learners and inference service: may only publish on
  the project's events topic (reads nothing);
- ``flops-o-<id>`` for the observer: reads the project's events topic and publishes its "ready" there;
  reads the project's replay topic, where the manager hands it the events from before it listened.

Only the manager's user subscribes to every project. Mosquitto reads its ``password_file`` and
``acl_file`` again on SIGHUP; the manager rewrites both (atomically, mode 0600), signals the broker
whose PID file it was given and, on a grant, waits until the broker accepts the new user, so a service
deployed right after never meets a broker that does not know it yet.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import signal
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from pydantic import SecretStr

from flops_common.jobs import BusConfig
from flops_common.topics import PREFIX, project_events, project_replay
from flops_manager.settings import Settings

log = logging.getLogger(__name__)

USER_PREFIX = "flops-"
# Mosquitto's own password hash ("$7$": PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt).
_HASH_ITERATIONS = 101
_SALT_BYTES = 12
GRANT_CONFIRM_TIMEOUT_S = 5.0


class BrokerRole(StrEnum):
    """Which of a project's two broker users a service connects as."""

    SERVICE = "p"  # builder, aggregator, learners, inference: publish own project only
    OBSERVER = "o"  # the observer: read (and announce itself on) its own project


def project_username(project_id: str, role: BrokerRole) -> str:
    """The broker user of ``role`` in ``project_id``."""
    return f"{USER_PREFIX}{role.value}-{project_id}"


def project_password(manager_password: SecretStr, project_id: str, role: BrokerRole) -> SecretStr:
    """The password of a project's broker user: an HMAC of its name under the manager's password."""
    key = manager_password.get_secret_value().encode()
    digest = hmac.new(key, project_username(project_id, role).encode(), hashlib.sha256).digest()
    return SecretStr(base64.urlsafe_b64encode(digest).decode().rstrip("="))


def mosquitto_hash(password: str) -> str:
    """``password`` hashed the way ``mosquitto_passwd`` does (Mosquitto 2: ``$7$``)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _HASH_ITERATIONS)
    return f"$7${_HASH_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def acl_text(manager_users: list[str], project_ids: list[str]) -> str:
    """Mosquitto ACLs: the manager reads and writes every project; each project user only its own topic."""
    lines = ["# written by the FLOps manager (flops_manager/bus/broker_acl.py)"]
    for user in manager_users:
        lines += ["", f"user {user}", f"topic readwrite {PREFIX}/#"]
    for project_id in project_ids:
        topic = project_events(project_id)
        lines += ["", f"user {project_username(project_id, BrokerRole.SERVICE)}", f"topic write {topic}"]
        lines += [f"user {project_username(project_id, BrokerRole.OBSERVER)}", f"topic readwrite {topic}"]
        lines += [f"topic read {project_replay(project_id)}"]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class ProjectAccounts(Protocol):
    """Makes and removes a project's broker users."""

    def login(self, project_id: str, role: BrokerRole) -> tuple[str, SecretStr] | None:
        """The username and password a service of ``project_id`` connects with (None: the manager's)."""

    def grant(self, project_id: str) -> None:
        """Create the project's users (idempotent)."""

    def revoke(self, project_id: str) -> None:
        """Remove the project's users (idempotent)."""


class SharedAccount:
    """No per-project users: every service connects as the manager's user (or anonymously)."""

    def login(self, project_id: str, role: BrokerRole) -> tuple[str, SecretStr] | None:
        """Always None: the services use the manager's broker login."""
        return None

    def grant(self, project_id: str) -> None:
        """Nothing to create."""

    def revoke(self, project_id: str) -> None:
        """Nothing to remove."""


class MosquittoProjectAccounts:
    """Project users in Mosquitto's password and ACL files, reloaded by SIGHUP."""

    def __init__(
        self, bus: BusConfig, manager_password: SecretStr, password_file: Path, acl_file: Path, pid_file: Path
    ) -> None:
        assert bus.username, "per-project broker users need the manager's own broker user"
        self._bus = bus
        self._manager_password = manager_password
        self._password_file = password_file
        self._acl_file = acl_file
        self._pid_file = pid_file
        self._lock = threading.Lock()

    def login(self, project_id: str, role: BrokerRole) -> tuple[str, SecretStr]:
        """The user and password of ``role`` in ``project_id``."""
        return project_username(project_id, role), project_password(self._manager_password, project_id, role)

    def _entries(self) -> dict[str, str]:
        """user -> hashed password, as the password file holds them now."""
        entries: dict[str, str] = {}
        with contextlib.suppress(FileNotFoundError):
            for line in self._password_file.read_text().splitlines():
                user, sep, hashed = line.partition(":")
                if sep and user:
                    entries[user] = hashed
        return entries

    def _project_ids(self, entries: dict[str, str]) -> list[str]:
        prefix = project_username("", BrokerRole.SERVICE)
        return sorted(user[len(prefix) :] for user in entries if user.startswith(prefix))

    def _write(self, entries: dict[str, str]) -> None:
        """Both files from ``entries``, then SIGHUP the broker."""
        managers = [u for u in entries if not u.startswith(USER_PREFIX + BrokerRole.SERVICE.value + "-")]
        managers = [u for u in managers if not u.startswith(USER_PREFIX + BrokerRole.OBSERVER.value + "-")]
        # ACLs first: a user the broker knows always has its rules.
        _write_private(self._acl_file, acl_text(managers, self._project_ids(entries)))
        _write_private(self._password_file, "".join(f"{u}:{h}\n" for u, h in entries.items()))
        pid = int(self._pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)

    def grant(self, project_id: str) -> None:
        """Add both users of the project, reload the broker and wait until it accepts them."""
        with self._lock:
            entries = self._entries()
            fresh = {
                user: mosquitto_hash(password.get_secret_value())
                for user, password in (self.login(project_id, role) for role in BrokerRole)
                if user not in entries
            }
            if fresh:
                self._write(entries | fresh)
        if fresh:
            self._confirm(project_id)

    def revoke(self, project_id: str) -> None:
        """Remove both users of the project and reload the broker."""
        with self._lock:
            entries = self._entries()
            gone = {project_username(project_id, role) for role in BrokerRole}
            if gone & set(entries):
                self._write({u: h for u, h in entries.items() if u not in gone})

    def _confirm(self, project_id: str) -> None:
        """Wait until the broker accepts the project's service user (the reload is asynchronous)."""
        user, password = self.login(project_id, BrokerRole.SERVICE)
        deadline = time.monotonic() + GRANT_CONFIRM_TIMEOUT_S
        while not _accepted(self._bus, user, password.get_secret_value()):
            if time.monotonic() > deadline:
                log.warning("broker did not accept project user %s within %.0f s", user, GRANT_CONFIRM_TIMEOUT_S)
                return
            time.sleep(0.02)


def _accepted(bus: BusConfig, username: str, password: str) -> bool:
    """Whether the broker accepts ``username``/``password`` (one MQTT connect, no network loop thread)."""
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    result: dict[str, Any] = {}
    client.on_connect = lambda _c, _u, _f, reason, _p: result.setdefault("ok", not reason.is_failure)
    try:
        client.connect(bus.host, bus.port, keepalive=5)
        deadline = time.monotonic() + 2.0
        while "ok" not in result and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        client.disconnect()
    except OSError:
        return False
    return bool(result.get("ok"))


def project_accounts(settings: Settings) -> ProjectAccounts:
    """Per-project users when the manager manages the broker's password and ACL files, else the shared login."""
    files = (settings.mqtt_password_file, settings.mqtt_acl_file, settings.mqtt_broker_pid_file)
    if settings.mqtt_password is None or settings.mqtt_username is None or None in files:
        return SharedAccount()
    password_file, acl_file, pid_file = (Path(p) for p in files if p is not None)
    return MosquittoProjectAccounts(settings.bus, settings.mqtt_password, password_file, acl_file, pid_file)
