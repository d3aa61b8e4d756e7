"""``flops check``: the builder's checks and one local round of an ML repo, in seconds, before a submit.

The steps and causes are the builder's own (``image_builder``): the static contract check, the
dependency file, a learner runtime installed with uv (reused from the local registry or from an
earlier check when the dependencies are the same), the import probe, then one ``fit_model`` +
``evaluate_model`` on this machine's node data for a data tag, or on a tiny mock (see :func:`mock_data_dir`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from flops_common.image_key import ImageKey
from flops_common.local_layout import env_dir
from flops_common.sla import ModelFlavor
from image_builder import trial_round
from image_builder.actor_runtime import learner_requirements, runtime_source_hash
from image_builder.clone import clone_commit
from image_builder.contract import check_contract
from image_builder.dependencies import Dependencies, dependency_hash, resolve_dependencies
from image_builder.errors import BuildError
from image_builder.import_check import format_failure, remove_bytecode
from image_builder.plans.local import LEARNER, host_platform
from image_builder.steps import BuildStep
from image_builder.uv_tool import UvError, failure_summary
from image_builder.venvs import create_runtime, env_python, is_complete, mark_complete, site_packages

TRIAL = "trial_round"  # the step after the builder's: one local round, as a learner runs it
TRIAL_TIMEOUT_S = 600
MOCK_TAG = "check"
MOCK_SAMPLES = 200
MAX_RUNTIME_DONORS = 3  # bytecode donors besides FLOps' own environment: the newest runtimes
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "TZ")


@dataclass
class CheckReport:
    """Each step with its seconds, the failed step and cause (None when all passed), and what ran."""

    steps: dict[str, float] = field(default_factory=dict)
    failed_step: str | None = None
    cause: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every step passed."""
        return self.failed_step is None


class CheckFailed(Exception):
    """A step failed: its name and the cause the builder (or a learner) would report."""

    def __init__(self, step: str, cause: str) -> None:
        super().__init__(cause)
        self.step = step
        self.cause = cause


@contextmanager
def _step(report: CheckReport, name: str, notify: Callable[[str, float], None]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        report.steps[name] = round(time.monotonic() - started, 3)
    notify(name, report.steps[name])


def fetch_repo(source: str, dest: Path) -> str:
    """Copy a local repo (without ``.git``) or clone a git URL's HEAD into ``dest``; the source's commit."""
    path = Path(source)
    if path.is_dir():
        shutil.copytree(path, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv"))
        return "0" * 40
    try:
        head = str(git.cmd.Git().ls_remote(source, "HEAD")).split()
    except git.GitCommandError as exc:
        raise BuildError(BuildStep.CLONE, f"the repo {source} cannot be read: {exc.stderr.strip()}") from None
    if not head:
        raise BuildError(BuildStep.CLONE, f"the repo {source} has no HEAD")
    return clone_commit(source, head[0], dest)


def learner_hashes(deps: Dependencies, key: ImageKey) -> list[str]:
    """The dependency hashes of ``deps`` under every flavor, ``key``'s own first: a learner runtime holds the
    same packages whatever the flavor (only the aggregator's differ), so any of them serves a check."""
    others = [f for f in ModelFlavor if f != key.flavor]
    source = runtime_source_hash()
    return [deps.hash] + [
        dependency_hash(list(deps.requirements), key.model_copy(update={"flavor": f}), source, deps.packages)
        for f in others
    ]


def check_env(home: Path, registry: Path, deps: Dependencies, key: ImageKey, find_links: list[str]) -> Path:
    """A learner runtime for ``deps``: one the builder made (under any flavor), else one cached under
    ``home/check-envs`` (likewise), else a new one cached there."""
    hashes = learner_hashes(deps, key)
    for found in (
        *(env_dir(registry, h, LEARNER) for h in hashes),
        *(home / "check-envs" / h for h in hashes),
    ):
        if is_complete(found):
            return found
    flavor = key.flavor.value
    cached = home / "check-envs" / deps.hash
    cached.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{deps.hash}-", dir=cached.parent))
    try:
        requirements = staged / "requirements.txt"
        requirements.write_text("".join(f"{r}\n" for r in deps.requirements), encoding="utf-8")
        env = staged / "env"
        try:
            create_runtime(
                env, learner_requirements(flavor), find_links, requirement_files=[requirements], packages=deps.packages
            )
        except UvError as exc:
            raise BuildError(
                BuildStep.ENVIRONMENTS, f"installing the dependencies failed: {failure_summary(exc.output)}"
            ) from None
        mark_complete(env, {"dependency_hash": deps.hash, "role": "check"})
        if not is_complete(cached):
            os.replace(env, cached)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return cached


def bytecode_donors(home: Path, registry: Path, env: Path) -> list[Path]:
    """``site-packages`` dirs whose bytecode the round in ``env`` takes for what it imports without any
    (``trial_round.adopt_donor_bytecode``): FLOps' own environment (when it is a virtualenv) and the newest
    other complete runtimes of the registry and of earlier checks. Without them a new runtime compiles every
    module the round imports (~8 s for scikit-learn and ``datasets`` on the loaded 2-core test machine)."""
    donors: list[Path] = []
    if sys.prefix != sys.base_prefix:
        donors.append(Path(sysconfig.get_paths()["purelib"]))
    runtimes = [
        p
        for p in (*(registry / "envs").glob("*/*"), *(home / "check-envs").glob("*"))
        if is_complete(p) and p.resolve() != env.resolve()
    ]
    runtimes.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    donors += [site_packages(p) for p in runtimes[:MAX_RUNTIME_DONORS]]
    return donors


def _bundled_digits() -> tuple[Any, Any]:
    """scikit-learn's bundled digits (``digits.csv.gz``) as shipped: 8x8 images of 0..16, labels.

    Read from the file without importing scikit-learn (seconds on a loaded machine).
    """
    import importlib.util

    import numpy as np

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-learn is not installed: its bundled digits make the tiny mock")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    table = np.loadtxt(path, delimiter=",", max_rows=MOCK_SAMPLES)
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def mock_data_dir(home: Path) -> Path:
    """A tiny data folder for tag ``check`` (made once under ``home/check-data``): the first bundled
    digits as shipped, as ``part.npz`` (``x_train`` ...) and as ``check.tiny.parquet`` (``image``, ``label``)."""
    folder = home / "check-data" / MOCK_TAG
    if (folder / f"{MOCK_TAG}.tiny.parquet").is_file():
        return folder
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    images, y = _bundled_digits()
    x = images.reshape(len(images), -1)
    split = int(0.8 * len(x))
    staged = Path(tempfile.mkdtemp(prefix=".check-data-", dir=home))
    try:
        np.savez(staged / "part.npz", x_train=x[:split], y_train=y[:split], x_test=x[split:], y_test=y[split:])
        table = pa.table({"image": [im.astype(np.int64).tolist() for im in images], "label": y})
        pq.write_table(table, staged / f"{MOCK_TAG}.tiny.parquet")
        folder.parent.mkdir(parents=True, exist_ok=True)
        if not folder.exists():
            os.replace(staged, folder)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return folder


def run_trial(
    python: Path, app_dir: Path, data_dir: Path, donors: Sequence[Path] = (), timeout_s: float = TRIAL_TIMEOUT_S
) -> dict[str, Any]:
    """The import probe and one local round in the runtime of ``python``: ``{"probe": ..., "trial": ...}``;
    modules without bytecode take the ``donors``' (``site-packages`` dirs) instead of being compiled.

    Raises CheckFailed when the process leaves no result.
    """
    with tempfile.TemporaryDirectory(prefix="flops-trial-") as scratch:
        result_path = Path(scratch) / "result.json"
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update({"FLOPS_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"})
        env[trial_round.DONORS_ENV] = os.pathsep.join(str(d) for d in donors)
        # Bytecode is kept in the runtime (a cache): the next check of these dependencies starts warm.
        try:
            proc = subprocess.run(
                [str(python), "-I", trial_round.__file__, str(app_dir), str(result_path)],
                cwd=app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise CheckFailed(
                TRIAL, f"importing the repo and one local round took longer than {timeout_s:.0f} s"
            ) from None
        finally:
            remove_bytecode(app_dir)
        if not result_path.is_file():
            tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:] if line.strip())
            raise CheckFailed(TRIAL, f"the local round exited with code {proc.returncode} without a result: {tail}")
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    return result


def _record(report: CheckReport, step: str, result: dict[str, Any], notify: Callable[[str, float], None]) -> None:
    report.steps[step] = float(result.get("seconds", 0.0))
    notify(step, report.steps[step])


def check_repo(
    source: str,
    data_dir: Path | None,
    home: Path,
    registry: Path,
    flavor: ModelFlavor = ModelFlavor.SKLEARN,
    find_links: list[str] | None = None,
    notify: Callable[[str, float], None] = lambda step, seconds: None,
) -> CheckReport:
    """Run every check on ``source`` (a directory or a git URL); ``data_dir`` None: the tiny mock."""
    report = CheckReport()
    with tempfile.TemporaryDirectory(prefix="flops-check-") as scratch_name:
        scratch = Path(scratch_name)
        repo = scratch / "repo"
        try:
            with _step(report, BuildStep.CLONE.value, notify):
                commit = fetch_repo(source, repo)
            with _step(report, BuildStep.CONTRACT.value, notify):
                check_contract(repo)
            with _step(report, BuildStep.DEPENDENCIES.value, notify):
                key = ImageKey(repo_url=source, commit=commit, flavor=flavor, platform=host_platform())
                deps = resolve_dependencies(repo, key, runtime_source_hash())
                report.details["requirements"] = list(deps.requirements)
                report.details["dropped"] = list(deps.dropped)
            with _step(report, BuildStep.ENVIRONMENTS.value, notify):
                env = check_env(home, registry, deps, key, find_links or [])
                report.details["runtime"] = str(env)
            data = data_dir if data_dir is not None else mock_data_dir(home)
            report.details["data_dir"] = str(data)
            result = run_trial(env_python(env), repo, data, bytecode_donors(home, registry, env))
            _record(report, BuildStep.IMPORT_CHECK.value, result["probe"], notify)
            if not result["probe"].get("ok"):
                raise BuildError(BuildStep.IMPORT_CHECK, format_failure(result["probe"]))
            report.details["parameters"] = result["probe"].get("parameters")
            _record(report, TRIAL, result["trial"], notify)
            if not result["trial"].get("ok"):
                raise CheckFailed(TRIAL, format_failure(result["trial"]))
            report.details["trial"] = result["trial"]
        except BuildError as exc:
            report.failed_step, report.cause = exc.step.value, exc.cause
        except CheckFailed as exc:
            report.failed_step, report.cause = exc.step, exc.cause
    return report


def local_tag_dir(nodes: list[dict[str, Any]], tag: str) -> Path | None:
    """The first learner node's folder for ``tag`` that exists on this machine (nodes as the API lists them)."""
    for node in sorted(nodes, key=lambda n: str(n.get("name"))):
        if tag in (node.get("data_tags") or []) and node.get("data_dir"):
            folder = Path(node["data_dir"]) / tag
            if folder.is_dir():
                return folder
    return None
