"""A private CA of the suite and a server certificate for an address, made with the ``openssl`` CLI.

A registry beyond loopback serves TLS: Docker engines trust its CA through ``certs.d/<host:port>/ca.crt``
(never ``--insecure-registry``), the manager and builders through ``FLOPS_OCI_REGISTRY_CA`` /
``FLOPS_REGISTRY_CA``. Keys are written 0600 and never leave the suite's directory.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

VALID_DAYS = 30
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class ServerCertificate(NamedTuple):
    """The files of a TLS server and the CA that signed it."""

    ca: Path
    certificate: Path
    key: Path


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl") or "/usr/bin/openssl"
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")


def ensure_ca(directory: Path) -> tuple[Path, Path]:
    """The suite's CA (certificate, key) in ``directory``, made on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, key = directory / "ca.crt", directory / "ca.key"
    if not (ca.is_file() and key.is_file()):
        _openssl(
            "req", "-x509", *_KEY, "-keyout", str(key), "-out", str(ca), "-days", str(VALID_DAYS),
            "-subj", "/CN=FLOps suite CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        os.chmod(key, 0o600)
    return ca, key


def server_certificate(directory: Path, name: str, host: str) -> ServerCertificate:
    """A certificate for ``host`` (an IP address or a DNS name) signed by the suite's CA, made on first use."""
    ca, ca_key = ensure_ca(directory)
    certificate, key = directory / f"{name}.crt", directory / f"{name}.key"
    if certificate.is_file() and key.is_file():
        return ServerCertificate(ca, certificate, key)
    try:
        ipaddress.ip_address(host)
        alt_name = f"IP:{host}"
    except ValueError:
        alt_name = f"DNS:{host}"
    request = directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={alt_name}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl("req", *_KEY, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={host}")
    os.chmod(key, 0o600)
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(certificate), "-days", str(VALID_DAYS), "-extfile", str(extensions),
    )  # fmt: skip
    request.unlink()
    extensions.unlink()
    return ServerCertificate(ca, certificate, key)
