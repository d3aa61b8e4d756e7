"""The docker engine launcher's pure parts: its command line, paths, and base-image recipes."""

from __future__ import annotations

from pathlib import Path

from flops_suite.docker_engine import (
    BASE_PACKAGES,
    DockerEngine,
    RegistryServer,
    base_recipe,
)


def test_dockerd_runs_without_bridge_iptables_or_private_pools(tmp_path: Path) -> None:
    engine = DockerEngine(tmp_path / "docker")
    command = engine.command()
    for flag in ("--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false"):
        assert flag in command
    pool = next(arg for arg in command if arg.startswith("--default-address-pool="))
    assert "169.254." in pool  # a network made by mistake gets link-local addresses, never 10/172/192.168
    assert f"--data-root={tmp_path / 'docker' / 'data'}" in command
    assert engine.host == f"unix://{tmp_path / 'docker' / 'docker.sock'}"
    assert engine.pid is None


def test_a_long_state_dir_keeps_the_exec_root_short(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * max(1, 80 - len(str(tmp_path)) - 1))  # its socket fits, containerd's would not
    engine = DockerEngine(deep)
    assert len(str(engine.socket)) <= 100
    assert engine.exec_root != deep / "exec"
    assert len(str(engine.exec_root / "containerd" / "containerd-debug.sock")) <= 100


def test_registry_config_listens_on_loopback_with_deletes(tmp_path: Path) -> None:
    text = RegistryServer(tmp_path, 5123).config_text()
    assert "addr: 127.0.0.1:5123" in text and "enabled: true" in text


def test_base_recipe_changes_with_packages_and_ca_bundle(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("one")
    first = base_recipe(BASE_PACKAGES, ca)
    assert base_recipe(BASE_PACKAGES, ca) == first
    assert base_recipe((*BASE_PACKAGES, "git"), ca) != first
    ca.write_text("two")  # the proxy's CA is regenerated at boot: the base image must follow
    assert base_recipe(BASE_PACKAGES, ca) != first
