"""A private Docker engine, a CNCF registry and the locally made base images, started and stopped by PID.

Everything lives under one state directory (``FLOPS_HOME/docker`` unless given)::

    STATE/dockerd.pid, dockerd.log        the engine we started (stopped by that PID only)
    STATE/docker.sock                     its API socket (``DOCKER_HOST=unix://STATE/docker.sock``)
    STATE/data/                           its data root (images, containers)
    STATE/registry.pid, registry.log      the registry we started
    STATE/registry.yml, registry-data/    its config and storage

Networking rule of this platform: dockerd runs with ``--bridge=none --iptables=false --ip-masq=false
--ip6tables=false`` and a link-local default address pool, so no bridge on a private range can appear;
every container and build uses host networking and talks to 127.0.0.1 only.

``python -m flops_manager.suite.docker_engine start|stop|status|registry-start|registry-stop|base-image``
(``deploy/start-docker.sh``, ``deploy/stop-docker.sh`` and ``deploy/make-base-image.sh`` call it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from flops_manager.suite.processes import ManagedProcess, pid_alive

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_BASE_IMAGE = "flops-base:bookworm"
DEFAULT_PLATFORM_BASE_IMAGE = "flops-platform-base:bookworm"
DEBIAN_SUITE = "bookworm"
# What FL-actor images run on: Python with venv, TLS roots, the C++ runtime numpy/grpc need.
BASE_PACKAGES = (
    "python3",
    "python3-venv",
    "ca-certificates",
    "dash",
    "bash",
    "coreutils",
    "base-passwd",
    "libstdc++6",
    "libgcc-s1",
    "zlib1g",
    "tzdata",
    "netbase",
)
# The platform image (manager, builder, observer, store, MLflow) also needs git; the compose suite's
# broker and registry images need Mosquitto and the CNCF registry.
PLATFORM_EXTRA_PACKAGES = ("git", "procps")
SERVICES_EXTRA_PACKAGES = ("mosquitto", "docker-registry")
DEFAULT_SERVICES_BASE_IMAGE = "flops-services-base:bookworm"
# A network created by mistake gets a link-local range, never 10/8, 172.16/12 or 192.168/16.
SAFE_ADDRESS_POOL = "base=169.254.192.0/18,size=24"
_MAX_SOCKET_PATH = 100  # unix socket paths are limited to 108 bytes


def default_state_dir() -> Path:
    """``$FLOPS_HOME/docker`` (``var/docker`` by default)."""
    return Path(os.environ.get("FLOPS_HOME", "var")).resolve() / "docker"


def _exec_root(state_dir: Path) -> Path:
    """The engine's exec root: under the state dir unless its sockets' paths would be too long."""
    candidate = state_dir / "exec"
    if len(str(candidate / "containerd" / "containerd-debug.sock")) <= _MAX_SOCKET_PATH:
        return candidate
    tag = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"flops-docker-{tag}"


class DockerEngine:
    """One dockerd with its own data root, exec root, socket and PID file."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.socket = self.state_dir / "docker.sock"
        if len(str(self.socket)) > _MAX_SOCKET_PATH:
            raise ValueError(f"state dir {self.state_dir} is too long for a unix socket path")
        self.data_root = self.state_dir / "data"
        self.exec_root = _exec_root(self.state_dir)
        self._process = ManagedProcess("dockerd", self.state_dir, self.command())

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` of this engine."""
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        """The PID of the dockerd we started, if it runs."""
        return self._process.pid

    @property
    def log_file(self) -> Path:
        """dockerd's log."""
        return self._process.log_file

    def command(self) -> list[str]:
        """The dockerd command line: no bridge, no iptables, host networking only."""
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        return [
            dockerd,
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
            "--ip-forward=false",
            f"--default-address-pool={SAFE_ADDRESS_POOL}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.state_dir / 'dockerd.daemon.pid'}",
            f"--host={self.host}",
            "--log-driver=json-file",
            "--log-opt=max-size=20m",
            "--shutdown-timeout=10",
        ]

    def ping(self) -> bool:
        """Whether the engine answers on its socket."""
        if not self.socket.exists():
            return False
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), timeout=2) as client:
                return client.get("http://docker/_ping").status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout_s: float = 60.0) -> int:
        """Start dockerd (unless ours runs) and wait until it answers; return its PID."""
        if shutil.which("dockerd") is None and not Path("/usr/sbin/dockerd").exists():
            raise RuntimeError("dockerd is not installed: run deploy/install-docker.sh")
        for path in (self.state_dir, self.data_root, self.exec_root):
            path.mkdir(parents=True, exist_ok=True)
        if self.pid is None:
            # A socket or daemon PID file left by a killed engine would stop dockerd from starting.
            self.socket.unlink(missing_ok=True)
            (self.state_dir / "dockerd.daemon.pid").unlink(missing_ok=True)
        return self._process.start(self.ping, timeout_s)

    def stop(self, grace_s: float = 45.0) -> None:
        """SIGTERM our dockerd alone (it stops its containers and containerd), SIGKILL its group if it hangs."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while pid_alive(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.2)
        # Reaps it and ends whatever is left of its process group (containerd) by that group's id.
        self._process.stop(grace_s=5.0)

    def client(self, timeout: int = 120) -> object:
        """A docker SDK client of this engine."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)


class RegistryServer:
    """``docker-registry serve CONFIG`` on 127.0.0.1:PORT with deletes enabled."""

    def __init__(self, state_dir: Path | None = None, port: int = 5000) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.port = port
        self.config = self.state_dir / "registry.yml"
        self.storage = self.state_dir / "registry-data"
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self._process = ManagedProcess("registry", self.state_dir, [binary, "serve", str(self.config)])

    @property
    def address(self) -> str:
        """``host:port`` of the registry (what image references start with)."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The PID of the registry we started, if it runs."""
        return self._process.pid

    def config_text(self) -> str:
        """The registry's configuration (distribution 2.x format)."""
        return (
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            "http:\n"
            f"  addr: 127.0.0.1:{self.port}\n"
            "  headers:\n    X-Content-Type-Options: [nosniff]\n"
        )

    def ping(self) -> bool:
        """Whether the registry answers the distribution API."""
        try:
            return httpx.get(f"http://{self.address}/v2/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout_s: float = 30.0) -> int:
        """Write the config and start the registry (unless ours runs); return its PID."""
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.config_text())
        return self._process.start(self.ping, timeout_s)

    def stop(self) -> None:
        """Stop the registry we started, by its PID."""
        self._process.stop()


def _hook_script(ca_bundle: Path | None) -> str:
    """mmdebstrap's extract hook: users and groups, tmp, root's home, the CA bundle of this host."""
    lines = [
        'cp "$1/usr/share/base-passwd/passwd.master" "$1/etc/passwd"',
        'cp "$1/usr/share/base-passwd/group.master" "$1/etc/group"',
        'mkdir -p "$1/tmp" "$1/root" "$1/etc/ssl/certs" "$1/work"',
        'chmod 1777 "$1/tmp"',
    ]
    if ca_bundle is not None:
        lines.append(f'cp "{ca_bundle}" "$1/etc/ssl/certs/ca-certificates.crt"')
    return " && ".join(lines)


def make_base_image(
    docker_host: str,
    image: str = DEFAULT_BASE_IMAGE,
    extra_packages: tuple[str, ...] = (),
    ca_bundle: Path | None = HOST_CA_BUNDLE,
    suite: str = DEBIAN_SUITE,
) -> str:
    """Make a Debian image without any registry: ``mmdebstrap --variant=extract`` piped into ``docker import``.

    The host's CA bundle is copied in at build time (a TLS-intercepting proxy's CA lives there); it
    is never part of the repository. Returns the image id.
    """
    import docker

    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed: run deploy/install-docker.sh")
    ca = ca_bundle if ca_bundle is not None and ca_bundle.is_file() else None
    packages = ",".join((*BASE_PACKAGES, *extra_packages))
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        "ENV PYTHONUNBUFFERED=1",
        "WORKDIR /work",
        'CMD ["/bin/bash"]',
    ]
    if ca is not None:
        changes += [
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
            "ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
        ]
    with tempfile.TemporaryDirectory(prefix="flops-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        proc = subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=extract",
                f"--include={packages}",
                f"--extract-hook={_hook_script(ca)}",
                suite,
                str(tarball),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
        client = docker.DockerClient(base_url=docker_host, timeout=300)
        try:
            client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
            return str(client.images.get(image).id)
        finally:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """The command line behind the deploy/ scripts."""
    parser = argparse.ArgumentParser(prog="python -m flops_manager.suite.docker_engine")
    parser.add_argument(
        "action", choices=["start", "stop", "status", "registry-start", "registry-stop", "base-image"]
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $FLOPS_HOME/docker")
    parser.add_argument("--registry-port", type=int, default=int(os.environ.get("FLOPS_REGISTRY_PORT", "5000")))
    parser.add_argument("--image", default=None, help="base image name (base-image)")
    parser.add_argument("--platform", action="store_true", help="base-image: add git and the suite's services")
    parser.add_argument("--docker-host", default=None, help="base-image: default this state dir's engine")
    args = parser.parse_args(argv)
    engine = DockerEngine(args.state_dir)
    registry = RegistryServer(args.state_dir, args.registry_port)
    if args.action == "start":
        pid = engine.start()
        print(f"dockerd running, pid {pid}")
        print(f"export DOCKER_HOST={engine.host}")
    elif args.action == "stop":
        registry.stop()
        engine.stop()
        print("dockerd and registry stopped")
    elif args.action == "status":
        print(f"dockerd  {'pid ' + str(engine.pid) if engine.pid else 'stopped'}  {engine.host}")
        print(f"registry {'pid ' + str(registry.pid) if registry.pid else 'stopped'}  {registry.address}")
    elif args.action == "registry-start":
        print(f"registry running on {registry.address}, pid {registry.start()}")
    elif args.action == "registry-stop":
        registry.stop()
        print("registry stopped")
    else:
        default = DEFAULT_PLATFORM_BASE_IMAGE if args.platform else DEFAULT_BASE_IMAGE
        image = args.image or os.environ.get("FLOPS_BASE_IMAGE" if not args.platform else "_", default)
        host = args.docker_host or os.environ.get("DOCKER_HOST") or engine.host
        started = time.monotonic()
        extra = PLATFORM_EXTRA_PACKAGES if args.platform else ()
        image_id = make_base_image(host, image, extra)
        print(f"{image} {image_id[:19]} made in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
