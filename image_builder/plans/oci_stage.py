"""Runs INSIDE the Docker builds of the ``oci`` plan (standard library only; Python of the base image).

    python3 oci_stage.py deps URL         the shared dependency venv (learner set) and the pins
    python3 oci_stage.py aggregator URL   the aggregator's extra packages (mlflow-skinny, ...)
    python3 oci_stage.py serving URL      a serving image's venv: its serving requirements only (stage 6)
    python3 oci_stage.py check APP_DIR    bytecode of the FLOps packages, then the repo probe
    python3 oci_stage.py compile APP_DIR  bytecode of the FLOps packages only

URL is where the builder serves this build's inputs on 127.0.0.1 for the duration of the build (the
legacy builder has no ``RUN --mount``): ``uv`` (the builder's binary), ``ca.crt`` when the host has one
(a TLS-intercepting proxy may sit between the build and the index), ``requirements.txt`` (the repo's),
``learner.in``, ``aggregator.in`` (what FLOps adds), ``wheels.txt`` (local wheels offered at ``URL/wheels/``,
deps and serving) and ``warm.txt`` (serving: modules to import once).
They are fetched into a temporary directory that is removed before the RUN step ends, so none of them is in any layer.
Failures print one ``FLOPS_STAGE_FAILED`` line (JSON) and exit non-zero; ``check`` prints one
``FLOPS_PROBE_RESULT`` line (JSON) either way.

Layout (``flops_common.oci_images``)::

    /opt/flops/venv/                 the venv of both actors (learner set)
    /opt/flops/lock.txt              the aggregator set, resolved once: both images use these versions
    /opt/flops/aggregator-extra.txt  what the aggregator adds, pinned
    /opt/flops/extra/                (aggregator only) those packages, on sys.path through flops.pth
    /opt/flops/lib/                  (code layer) fl_actors and flops_common, on sys.path through flops.pth
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path("/opt/flops")
VENV = ROOT / "venv"
PYTHON = VENV / "bin" / "python"
LOCK = ROOT / "lock.txt"
EXTRA_PINS = ROOT / "aggregator-extra.txt"
EXTRA = ROOT / "extra"
LIB = ROOT / "lib"
PROBE = ROOT / "tools" / "probe.py"
MLFLOW_DISTRIBUTIONS = {"mlflow", "mlflow-skinny", "mlflow-tracing"}
# Test suites shipped inside these packages are never imported by an actor (tens of MB).
PRUNE_TESTS_OF = ("numpy", "scipy", "sklearn", "pandas", "matplotlib", "networkx", "sympy", "statsmodels", "skimage")
PROBE_TIMEOUT_S = 300
_INPUTS = ("uv", "ca.crt", "requirements.txt", "learner.in", "aggregator.in", "opt.tar", "wheels.txt", "warm.txt")


def _fail(phase: str, message: str, output: str = "") -> None:
    print("FLOPS_STAGE_FAILED " + json.dumps({"phase": phase, "message": message, "output": output[-6000:]}))
    sys.exit(3)


def _name(line: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s=<>!~;\[@]", line.strip(), maxsplit=1)[0]).lower()


def _fetch(url: str, build: Path) -> None:
    for name in _INPUTS:
        try:
            with urllib.request.urlopen(f"{url}/{name}", timeout=60) as response:
                (build / name).write_bytes(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                _fail("fetch", f"fetching {name} from the builder failed: {exc}")
        except OSError as exc:
            _fail("fetch", f"fetching {name} from the builder failed: {exc}")
    (build / "uv").chmod(0o755)


def _uv(build: Path, *args: str, phase: str) -> str:
    env = dict(os.environ)
    env.update(
        {
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_CACHE_DIR": str(build / "cache"),
            "UV_NO_PROGRESS": "1",
            "NO_COLOR": "1",
        }
    )
    ca = build / "ca.crt"
    if ca.is_file():
        env["SSL_CERT_FILE"] = str(ca)
    proc = subprocess.run([str(build / "uv"), *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        _fail(phase, f"uv {' '.join(args[:2])} failed", proc.stderr + proc.stdout)
    for line in proc.stderr.splitlines():
        if line.strip() and not line.startswith((" + ", " - ")):
            print(f"uv: {line.strip()}", flush=True)
    return proc.stdout


def _pip_install(build: Path, *args: str) -> None:
    """``uv pip install`` into the venv's Python (phase ``install``)."""
    _uv(build, "pip", "install", "--python", str(PYTHON), *args, phase="install")


def _site_packages() -> Path:
    out = subprocess.run(
        [str(PYTHON), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _prune_tests(root: Path) -> None:
    for package in PRUNE_TESTS_OF:
        top = root / package
        if not top.is_dir():
            continue
        for tests in sorted(top.rglob("tests"), reverse=True):
            if tests.is_dir():
                shutil.rmtree(tests, ignore_errors=True)


def _compile(root: Path) -> None:
    """Bytecode of every module under ``root`` in this layer: actor processes (which may not write
    bytecode) then never compile Flower, MLflow or the ML framework again (``-j 0``: every core)."""
    subprocess.run(
        [str(PYTHON), "-m", "compileall", "-q", "-j", "0", "-x", r"[/\\]tests[/\\]", str(root)],
        capture_output=True,
        check=False,
    )


def _warm_with_repo(build: Path) -> None:
    """Import this commit's repo once (probe, best effort) so the bytecode of what it uses is in this layer.

    The repo itself stays in the temporary directory; a later commit with the same dependencies reuses
    this layer and its code layer stays thin. Failures are reported by the code layer's import check.
    """
    bundle = build / "opt.tar"
    if not bundle.is_file():
        return
    with tarfile.open(bundle) as tar:
        try:
            tar.extractall(build, filter="data")
        except TypeError:  # Python < 3.11.4 (Debian 12's 3.11.2); the archive is the builder's own
            tar.extractall(build)
    opt = build / "opt"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSL_CERT_FILE", "TZ")}
    env.update({"PYTHONPATH": str(opt / "lib"), "FLOPS_DATA_DIR": str(build), "MPLBACKEND": "Agg"})
    subprocess.run(
        [str(PYTHON), str(opt / "tools" / "probe.py"), str(opt / "app"), str(build / "warm.json")],
        cwd=opt / "app",
        env=env,
        capture_output=True,
        check=False,
        timeout=PROBE_TIMEOUT_S,
    )


def _in_build(url: str, work: Callable[[Path], None]) -> None:
    build = Path(tempfile.mkdtemp(prefix="flops-build-"))
    try:
        _fetch(url, build)
        work(build)
    finally:
        shutil.rmtree(build, ignore_errors=True)  # uv, the CA bundle and uv's cache never reach the layer


def _find_links(build: Path, url: str) -> list[str]:
    """``--find-links URL/wheels/`` when the builder offers local wheels (``wheels.txt``): uv prefers them
    as the local plan does (e.g. a CPU-only torch, which PyPI does not have)."""
    return ["--find-links", f"{url}/wheels/"] if (build / "wheels.txt").is_file() else []


def deps(build: Path, url: str) -> None:
    """Resolve the aggregator set once, install the learner set from those pins, note the difference."""
    links = _find_links(build, url)
    _uv(build, "venv", "--quiet", "--python", sys.executable, str(VENV), phase="venv")
    _uv(
        build,
        "pip",
        "compile",
        "--quiet",
        "--no-header",
        "--no-annotate",
        "--python",
        str(PYTHON),
        str(build / "requirements.txt"),
        str(build / "aggregator.in"),
        *links,
        "--output-file",
        str(LOCK),
        phase="resolve",
    )
    _pip_install(
        build,
        "--requirement",
        str(build / "requirements.txt"),
        "--requirement",
        str(build / "learner.in"),
        "--constraint",
        str(LOCK),
        *links,
    )
    installed = _uv(build, "pip", "freeze", "--python", str(PYTHON), phase="freeze").splitlines()
    pulled = [line for line in installed if _name(line) in MLFLOW_DISTRIBUTIONS]
    if pulled:
        _fail("mlflow", f"the repo's dependencies pull {', '.join(pulled)} into the learner; learners carry no MLflow")
    have = {_name(line) for line in installed if line.strip()}
    pins = [line.strip() for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    extra = [p for p in pins if _name(p) not in have]
    EXTRA_PINS.write_text("".join(f"{p}\n" for p in extra))
    site = _site_packages()
    (site / "flops.pth").write_text(f"{LIB}\n{EXTRA}\n")
    _prune_tests(site)
    _compile(site)
    _warm_with_repo(build)
    print(f"learner venv: {len(have)} packages; the aggregator adds {len(extra)}", flush=True)


def aggregator(build: Path) -> None:
    """Install the aggregator's extra pins (no dependencies: the lock already closed them) into EXTRA."""
    EXTRA.mkdir(parents=True, exist_ok=True)
    pins = [line for line in EXTRA_PINS.read_text().splitlines() if line.strip()]
    if pins:
        _pip_install(build, "--target", str(EXTRA), "--no-deps", "--requirement", str(EXTRA_PINS))
        shutil.rmtree(EXTRA / "bin", ignore_errors=True)
        _prune_tests(EXTRA)
        _compile(EXTRA)
    print(f"aggregator adds {len(pins)} packages", flush=True)


def _warm_imports(build: Path) -> None:
    """Import the modules ``warm.txt`` names once (``-I``: bytecode is written whatever the environment says).

    Only what the inference service imports gets compiled, in seconds, where compiling the whole venv
    (scipy, pandas, ...) takes minutes on a small machine.
    """
    warm = build / "warm.txt"
    if not warm.is_file():
        return
    for module in warm.read_text().split():
        subprocess.run([str(PYTHON), "-I", "-c", f"import {module}"], capture_output=True, check=False)


def serving(build: Path, url: str) -> None:
    """The venv of a serving image: exactly its serving requirements (``requirements.txt``), no Flower.

    ``wheels.txt``, when served, names local wheels the builder offers at ``URL/wheels/`` (its find-links:
    e.g. a CPU-only torch, which PyPI does not have) for uv to prefer.
    """
    _uv(build, "venv", "--quiet", "--python", sys.executable, str(VENV), phase="venv")
    _pip_install(build, "--requirement", str(build / "requirements.txt"), *_find_links(build, url))
    site = _site_packages()
    (site / "flops.pth").write_text(f"{LIB}\n")
    _prune_tests(site)
    _warm_imports(build)
    installed = _uv(build, "pip", "freeze", "--python", str(PYTHON), phase="freeze").splitlines()
    print(f"serving venv: {len([line for line in installed if line.strip()])} packages", flush=True)


def compile_lib(app_dir: Path) -> None:
    """Only compile the FLOps packages (the image's repo was probed in an image of the same versions)."""
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(LIB)], check=False)


def check(app_dir: Path) -> None:
    """Compile the FLOps packages, import the repo and probe ModelManager(); no bytecode stays in the app.

    The probe writes the bytecode of what the repo imports (e.g. sklearn.linear_model) into this layer,
    so actor processes start without compiling it.
    """
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(LIB)], check=False)
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSL_CERT_FILE", "TZ")}
        env.update({"FLOPS_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"})
        try:
            probe = [str(PYTHON), "-I", str(PROBE), str(app_dir), str(result_file)]
            proc = subprocess.run(probe, cwd=app_dir, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            result = {"ok": False, "what": "import check", "error": f"took longer than {PROBE_TIMEOUT_S} s"}
        else:
            if result_file.is_file():
                result = json.loads(result_file.read_text())
            else:
                tail = " | ".join(line.strip() for line in proc.stderr.strip().splitlines()[-3:])
                result = {
                    "ok": False,
                    "what": "import check",
                    "error": f"exited with code {proc.returncode} without a result: {tail}",
                }
    for cache in sorted(app_dir.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    print("FLOPS_PROBE_RESULT " + json.dumps(result), flush=True)
    if not result.get("ok"):
        sys.exit(4)


def main() -> None:
    """Dispatch."""
    command, target = sys.argv[1], sys.argv[2]
    if command in ("check", "compile"):
        {"check": check, "compile": compile_lib}[command](Path(target))
    else:
        work = {
            "deps": lambda build: deps(build, target),
            "aggregator": aggregator,
            "serving": lambda build: serving(build, target),
        }[command]
        _in_build(target, work)


if __name__ == "__main__":
    main()
