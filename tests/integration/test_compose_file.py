"""docker-compose.yml: valid for Debian's docker-compose 1.29, host networking only, images built from deploy/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SUITE = {"manager", "broker", "store", "mlflow", "registry"}


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_every_service_uses_the_host_network_and_creates_no_network() -> None:
    spec = _compose()
    assert set(spec["services"]) == SUITE
    for name, service in spec["services"].items():
        assert service["network_mode"] == "host", name
        assert "networks" not in service and "ports" not in service, name
        build = service["build"]
        assert build["network"] == "host", name  # dockerd has no bridge: builds need the host network
        assert (ROOT / build["dockerfile"]).is_file() and build["dockerfile"].startswith("deploy/"), name
        assert "BASE_IMAGE" in build["args"], name  # FROM a locally made base image
    # The only network compose may refer to is the existing `host` one.
    assert spec["networks"] == {"default": {"external": True, "name": "host"}}


def test_docker_compose_validates_the_file() -> None:
    if shutil.which("docker-compose") is None:
        subprocess.run([str(ROOT / "deploy" / "install-docker.sh")], check=True, capture_output=True, timeout=600)
    env = {**os.environ, "FLOPS_ADMIN_TOKEN": "validation-only"}
    out = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    manager = resolved["services"]["manager"]["environment"]
    assert manager["FLOPS_ORCHESTRATOR"] == "docker" and manager["FLOPS_REGISTRY"] == "oci"
    assert all(s["network_mode"] == "host" for s in resolved["services"].values())
    missing = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        env={k: v for k, v in os.environ.items() if k != "FLOPS_ADMIN_TOKEN"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0 and "FLOPS_ADMIN_TOKEN" in missing.stderr  # no manager without a token
