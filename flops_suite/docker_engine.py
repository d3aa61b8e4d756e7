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

``python -m flops_suite.docker_engine start|stop|status|registry-start|registry-stop|base-image|build-image``
is what ``deploy/start-docker.sh``, ``deploy/stop-docker.sh``, ``deploy/make-base-image.sh`` and
``deploy/build-images.sh`` run. The state dir is ``--state-dir``, else ``FLOPS_DOCKER_STATE``, else
``$FLOPS_HOME/docker``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from flops_common.oci_images import DEFAULT_BASE_IMAGE
from flops_suite.processes import ManagedProcess, ProcessService, terminate

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
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
PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


class DockerEngine(ProcessService):
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
        """SIGTERM our dockerd alone (it stops its containers and containerd), SIGKILL its group if it hangs.

        A swarm made on it is left first: its ``docker_gwbridge`` would outlive the engine.
        """
        pid = self.pid
        if pid is not None and self.ping():
            self._leave_swarm()
        if pid is not None:
            terminate(pid, grace_s, poll_s=0.2, group=False)
        # Reaps it and ends whatever is left of its process group (containerd) by that group's id.
        self._process.stop(grace_s=5.0)
        self._unmount_leftovers()

    def _leave_swarm(self) -> None:
        from docker import DockerClient
        from docker.errors import DockerException

        from flops_suite import swarm

        client = DockerClient(base_url=self.host, timeout=60)
        try:
            swarm.leave(client)
        except DockerException as exc:
            print(f"leaving the swarm failed: {exc}", file=sys.stderr)
        finally:
            client.close()

    def _unmount_leftovers(self) -> None:
        """Unmount what the stopped engine left mounted under its own directories (e.g. ``exec/netns/default``)."""
        roots = (str(self.exec_root) + "/", str(self.data_root) + "/")
        try:
            lines = Path("/proc/self/mountinfo").read_text().splitlines()
        except OSError:
            return
        points = [line.split()[4] for line in lines if len(line.split()) > 4]
        for point in sorted((p for p in points if p.startswith(roots)), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def client(self, timeout: int = 120) -> object:
        """A docker SDK client of this engine."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)


class RegistryServer(ProcessService):
    """``docker-registry serve CONFIG`` on HOST:PORT (127.0.0.1 by default) with deletes enabled.

    Beyond loopback it serves TLS with a certificate from the suite's CA (``flops_suite.tls``).
    """

    def __init__(
        self, state_dir: Path | None = None, port: int = 5000, host: str = "127.0.0.1", tls: bool | None = None
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.port = port
        self.host = host
        self.tls = (not host.startswith("127.")) if tls is None else tls
        self.config = self.state_dir / "registry.yml"
        self.storage = self.state_dir / "registry-data"
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self._process = ManagedProcess("registry", self.state_dir, [binary, "serve", str(self.config)])

    @property
    def address(self) -> str:
        """``host:port`` of the registry (what image references start with)."""
        return f"{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients trust the registry with (TLS only)."""
        return self.state_dir / "tls" / "ca.crt" if self.tls else None

    def config_text(self) -> str:
        """The registry's configuration (distribution 2.x format)."""
        tls = ""
        if self.tls:
            from flops_suite.tls import server_certificate

            cert = server_certificate(self.state_dir / "tls", "registry", self.host)
            tls = f"  tls:\n    certificate: {cert.certificate}\n    key: {cert.key}\n"
        return (
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            "http:\n"
            f"  addr: {self.address}\n"
            f"{tls}"
            "  headers:\n    X-Content-Type-Options: [nosniff]\n"
        )

    def ping(self) -> bool:
        """Whether the registry answers the distribution API."""
        try:
            if not self.tls:
                return httpx.get(f"http://{self.address}/v2/", timeout=1).status_code == 200
            verify = ssl.create_default_context(cafile=str(self.ca_file))
            return httpx.get(f"https://{self.address}/v2/", timeout=1, verify=verify).status_code == 200
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


def base_recipe(packages: tuple[str, ...], ca_bundle: Path | None, suite: str = DEBIAN_SUITE) -> str:
    """What a base image is made of (its ``org.flops.base-recipe`` label): packages, suite, CA bundle."""
    digest = hashlib.sha256(f"{suite}\n{','.join(packages)}\n".encode())
    if ca_bundle is not None:
        digest.update(ca_bundle.read_bytes())
    return digest.hexdigest()[:24]


def make_base_image(
    docker_host: str,
    image: str = DEFAULT_BASE_IMAGE,
    extra_packages: tuple[str, ...] = (),
    ca_bundle: Path | None = HOST_CA_BUNDLE,
    suite: str = DEBIAN_SUITE,
    force: bool = False,
) -> tuple[str, bool]:
    """Make a Debian image without any registry: ``mmdebstrap --variant=extract`` piped into ``docker import``.

    The host's CA bundle is copied in at build time (a TLS-intercepting proxy's CA lives there and is
    regenerated at boot); it is never part of the repository. An image of the same recipe (packages,
    suite, CA bundle) is kept unless ``force``. Returns the image id and whether it was made now.
    """
    import docker
    from docker.errors import ImageNotFound

    ca = ca_bundle if ca_bundle is not None and ca_bundle.is_file() else None
    packages = (*BASE_PACKAGES, *extra_packages)
    recipe = base_recipe(packages, ca, suite)
    client = docker.DockerClient(base_url=docker_host, timeout=300)
    try:
        if not force:
            try:
                existing = client.images.get(image)
            except ImageNotFound:
                existing = None
            if existing is not None and (existing.labels or {}).get("org.flops.base-recipe") == recipe:
                return str(existing.id), False
        if shutil.which("mmdebstrap") is None:
            raise RuntimeError("mmdebstrap is not installed: run deploy/install-docker.sh")
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            "ENV PYTHONUNBUFFERED=1",
            "WORKDIR /work",
            f"LABEL org.flops.base-recipe={recipe}",
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
                    f"--include={','.join(packages)}",
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
            client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
        return str(client.images.get(image).id), True
    finally:
        client.close()


BASE_KINDS = {
    # kind: (default image, extra packages, environment variable naming the image)
    "actor": (DEFAULT_BASE_IMAGE, (), "FLOPS_BASE_IMAGE"),
    "platform": (DEFAULT_PLATFORM_BASE_IMAGE, PLATFORM_EXTRA_PACKAGES, "FLOPS_PLATFORM_BASE_IMAGE"),
    "services": (DEFAULT_SERVICES_BASE_IMAGE, SERVICES_EXTRA_PACKAGES, "FLOPS_SERVICES_BASE_IMAGE"),
}
PLATFORM_IMAGES = {"builder": "flops-builder:latest", "platform": "flops-platform:latest"}


def build_platform_image(
    docker_host: str, target: str = "builder", tag: str | None = None, base_image: str | None = None
) -> str:
    """Build FLOps' own image (``deploy/platform/Dockerfile``, target ``builder`` or ``platform``) from this checkout.

    Host networking (the engine has no bridge); the legacy builder's layer cache makes a rebuild with
    unchanged dependencies take seconds. Returns the image id.
    """
    import docker

    tag = tag or PLATFORM_IMAGES[target]
    base_image = base_image or os.environ.get("FLOPS_PLATFORM_BASE_IMAGE", DEFAULT_PLATFORM_BASE_IMAGE)
    client = docker.DockerClient(base_url=docker_host, timeout=900)
    try:
        error = None
        tail: list[str] = []
        for chunk in client.api.build(
            path=str(PROJECT_ROOT),
            dockerfile="deploy/platform/Dockerfile",
            target=target,
            tag=tag,
            network_mode="host",
            buildargs={"BASE_IMAGE": base_image},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "stream" in chunk:
                tail = [*tail, *str(chunk["stream"]).splitlines()][-12:]
            if "error" in chunk:
                error = str(chunk["error"]).strip()
        if error is not None:
            raise RuntimeError(f"building {tag} failed: {error} | " + " | ".join(t for t in tail if t.strip()))
        return str(client.images.get(tag).id)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """The command line behind the deploy/ scripts."""
    parser = argparse.ArgumentParser(prog="python -m flops_suite.docker_engine")
    parser.add_argument(
        "action",
        choices=["start", "stop", "status", "registry-start", "registry-stop", "base-image", "build-image"],
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $FLOPS_HOME/docker")
    parser.add_argument("--registry-port", type=int, default=int(os.environ.get("FLOPS_REGISTRY_PORT", "5000")))
    parser.add_argument(
        "--registry-host",
        default=os.environ.get("FLOPS_REGISTRY_HOST", "127.0.0.1"),
        help="address the registry listens on; beyond loopback it serves TLS (CA in STATE/tls/ca.crt)",
    )
    parser.add_argument("--kind", choices=sorted(BASE_KINDS), default="actor", help="base-image: which base")
    parser.add_argument("--image", default=None, help="base-image/build-image: the image name")
    parser.add_argument("--force", action="store_true", help="base-image: make it even if it is up to date")
    parser.add_argument("--target", choices=sorted(PLATFORM_IMAGES), default="builder", help="build-image target")
    parser.add_argument("--docker-host", default=None, help="default: DOCKER_HOST, else this state dir's engine")
    args = parser.parse_args(argv)
    state_dir = args.state_dir or (
        Path(os.environ["FLOPS_DOCKER_STATE"]) if os.environ.get("FLOPS_DOCKER_STATE") else None
    )
    engine = DockerEngine(state_dir)
    registry = RegistryServer(state_dir, args.registry_port, args.registry_host)
    host = args.docker_host or (engine.host if engine.pid else None) or os.environ.get("DOCKER_HOST") or engine.host
    started = time.monotonic()
    if args.action == "start":
        pid = engine.start()
        print(f"dockerd running, pid {pid}; export DOCKER_HOST={engine.host}")
    elif args.action == "stop":
        registry.stop()
        engine.stop()
        print("registry and dockerd stopped")
    elif args.action == "status":
        print(f"dockerd  {'pid ' + str(engine.pid) if engine.pid else 'stopped'}  {engine.host}")
        print(f"registry {'pid ' + str(registry.pid) if registry.pid else 'stopped'}  {registry.address}")
    elif args.action == "registry-start":
        print(f"registry running on {registry.address}, pid {registry.start()}")
    elif args.action == "registry-stop":
        registry.stop()
        print("registry stopped")
    elif args.action == "base-image":
        default, extra, variable = BASE_KINDS[args.kind]
        image = args.image or os.environ.get(variable) or default
        image_id, made = make_base_image(host, image, extra, force=args.force)
        state = f"made in {time.monotonic() - started:.1f} s" if made else "up to date"
        print(f"{image} {image_id[7:19]} {state}")
    else:
        image_id = build_platform_image(host, args.target, args.image)
        print(
            f"{args.image or PLATFORM_IMAGES[args.target]} {image_id[7:19]} built in {time.monotonic() - started:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
