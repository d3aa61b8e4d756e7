"""Per-project broker users: names, derived passwords, Mosquitto's hash format and the ACL file."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from pydantic import SecretStr

from flops_manager.bus.broker_acl import (
    BrokerRole,
    SharedAccount,
    acl_text,
    mosquitto_hash,
    project_accounts,
    project_password,
    project_username,
)
from flops_manager.settings import Settings


def test_project_users_and_passwords_are_derived_and_distinct() -> None:
    manager = SecretStr("manager-secret")
    service = project_password(manager, "abc", BrokerRole.SERVICE)
    assert project_username("abc", BrokerRole.SERVICE) == "flops-p-abc"
    assert project_username("abc", BrokerRole.OBSERVER) == "flops-o-abc"
    assert service == project_password(manager, "abc", BrokerRole.SERVICE)  # a restarted manager finds it
    others = {
        project_password(manager, "abc", BrokerRole.OBSERVER),
        project_password(manager, "abd", BrokerRole.SERVICE),
        project_password(SecretStr("another"), "abc", BrokerRole.SERVICE),
    }
    assert service.get_secret_value() not in {o.get_secret_value() for o in others}
    assert "manager-secret" not in service.get_secret_value()


def test_mosquitto_hash_is_pbkdf2_sha512_as_mosquitto_passwd_writes_it() -> None:
    hashed = mosquitto_hash("pw")
    _, kind, iterations, salt, digest = hashed.split("$")
    assert (kind, iterations) == ("7", "101")
    expected = hashlib.pbkdf2_hmac("sha512", b"pw", base64.b64decode(salt), 101)
    assert base64.b64decode(digest) == expected
    assert mosquitto_hash("pw") != hashed  # a fresh salt each time


def test_acl_lets_each_project_user_reach_only_its_own_topic() -> None:
    text = acl_text(["flops"], ["p1", "p2"])
    blocks = [block.splitlines() for block in text.split("\n\n")[1:]]
    assert blocks[0] == ["user flops", "topic readwrite flops/projects/#"]
    assert blocks[1] == [
        "user flops-p-p1",
        "topic write flops/projects/p1/events",
        "user flops-o-p1",
        "topic readwrite flops/projects/p1/events",
        "topic read flops/projects/p1/replay",
    ]
    assert "p1" not in "\n".join(blocks[2]) and "#" not in "\n".join(blocks[1] + blocks[2])


def test_shared_login_unless_the_manager_manages_the_broker_files(tmp_path: Path) -> None:
    plain = Settings(mqtt_username="flops", mqtt_password=SecretStr("x"))
    assert isinstance(project_accounts(plain), SharedAccount)
    managed = Settings(
        mqtt_username="flops",
        mqtt_password=SecretStr("x"),
        mqtt_password_file=tmp_path / "passwd",
        mqtt_acl_file=tmp_path / "acl",
        mqtt_broker_pid_file=tmp_path / "pid",
    )
    login = project_accounts(managed).login("p1", BrokerRole.SERVICE)
    assert login is not None and login[0] == "flops-p-p1"
