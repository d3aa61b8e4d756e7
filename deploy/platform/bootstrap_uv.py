"""Installs the uv binary pinned in uv.lock, from the wheel the lock names, checked against its sha256.

    python3 bootstrap_uv.py uv.lock /usr/local/bin/uv

Standard library only: the base images have Python but no pip (a venv with pip costs ~20 s to create).
"""

from __future__ import annotations

import hashlib
import io
import platform
import sys
import tomllib
import urllib.request
import zipfile
from pathlib import Path


def wheel_for_this_machine(lock: Path) -> tuple[str, str]:
    """URL and sha256 of the manylinux wheel of the locked uv for this machine's architecture."""
    packages = tomllib.loads(lock.read_text(encoding="utf-8"))["package"]
    uv = next(p for p in packages if p["name"] == "uv")
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]
    for wheel in uv["wheels"]:
        name = wheel["url"].rsplit("/", 1)[1]
        if "manylinux" in name and name.endswith(f"_{arch}.whl") and "musllinux" not in name:
            return wheel["url"], wheel["hash"].removeprefix("sha256:")
    raise SystemExit(f"uv.lock names no manylinux {arch} wheel of uv {uv['version']}")


def main() -> None:
    """Download, verify, extract."""
    lock, dest = Path(sys.argv[1]), Path(sys.argv[2])
    url, sha256 = wheel_for_this_machine(lock)
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SystemExit(f"sha256 mismatch for {url}")
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(".data/scripts/uv"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(wheel.read(member))
    dest.chmod(0o755)
    print(f"uv installed at {dest} from {url.rsplit('/', 1)[1]}")


if __name__ == "__main__":
    main()
