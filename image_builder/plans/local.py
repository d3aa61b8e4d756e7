"""The ``local`` plan: actor runtimes are virtualenvs in the registry directory (``flops_common.local_layout``)."""

from __future__ import annotations

import importlib
import platform
import re
import sys
import time
from pathlib import Path

from packaging.utils import canonicalize_name

from flops_common.image_key import ImageManifest
from flops_common.jobs import BuildJob
from flops_common.local_layout import env_dir, image_dir
from image_builder.actor_runtime import (
    MLFLOW_DISTRIBUTIONS,
    aggregator_requirements,
    learner_requirements,
)
from image_builder.dependencies import Dependencies
from image_builder.errors import BuildError
from image_builder.import_check import check_imports_in
from image_builder.publish import publish_local, published_manifest
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder
from image_builder.uv_tool import UvError, failure_summary
from image_builder.venvs import compile_bytecode, create_runtime, env_python, freeze, is_complete, mark_complete
from image_builder.workspace import exclusive, move_into_place

LEARNER = "learner"
AGGREGATOR = "aggregator"


def host_platform() -> str:
    """This machine's platform in the image-key spelling (``linux/amd64``, ``linux/arm64``)."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return f"{sys.platform.rstrip('0123456789')}/{arch}"


def app_project_name(digest: str) -> str:
    """The Flower project name of an image's app."""
    return f"flops-{digest}"


class LocalPlan:
    """Runtimes keyed by dependency hash (a code-only commit reuses them), images keyed by digest."""

    def __init__(self, root: Path, scratch: Path, recorder: StepRecorder) -> None:
        """A plan publishing into the registry directory ``root``; ``scratch`` is this build's own."""
        self.root = root.resolve()
        self.scratch = scratch
        self.recorder = recorder

    @staticmethod
    def check_job(job: BuildJob) -> None:
        """Refuse what this plan cannot build: runtimes run on the machine that builds them."""
        if job.key.platform != host_platform():
            raise BuildError(
                BuildStep.ENVIRONMENTS,
                f"the local plan builds for this machine ({host_platform()}), not for {job.key.platform}",
            )

    def published(self, job: BuildJob) -> ImageManifest | None:
        """The manifest already in the registry for ``job.key`` (with both runtimes complete)."""
        return published_manifest(self.root, job.key)

    def build(self, repo_dir: Path, deps: Dependencies, job: BuildJob) -> ImageManifest:
        """Runtimes, app, import check, publish."""
        with self.recorder.step(BuildStep.ENVIRONMENTS) as info:
            phases: dict[str, float] = {}
            learner, aggregator, reused = self._runtimes(deps, job, phases)
            info.update(reused=reused, dependency_hash=deps.hash, phases=phases)
        staged = self.scratch / "image"
        app_dir = staged / "app"
        with self.recorder.step(BuildStep.APP):
            self._prepare_app(repo_dir, app_dir, job.key.digest)
        with self.recorder.step(BuildStep.IMPORT_CHECK) as info:
            # Fresh runtimes are both probed (ClientApp and ServerApp import the repo) and keep the
            # bytecode of what it imports; reused ones hold the same versions: the learner suffices.
            runtimes = {LEARNER: env_python(learner)}
            if not reused:
                runtimes[AGGREGATOR] = env_python(aggregator)
            probes = check_imports_in(runtimes, app_dir)
            info.update(parameters=probes[LEARNER].get("parameters"), parameter_bytes=probes[LEARNER].get("bytes"))
        with self.recorder.step(BuildStep.PUBLISH):
            manifest = ImageManifest(
                key=job.key,
                digest=job.key.digest,
                dependency_hash=deps.hash,
                learner=str(learner),
                aggregator=str(aggregator),
                app_dir=str(image_dir(self.root, job.key.digest) / "app"),
                created_at=time.time(),
                build_seconds=round(self.recorder.elapsed(), 3),
                step_seconds=dict(self.recorder.seconds),
            )
            manifest = publish_local(self.root, staged, manifest, self.scratch)
        return manifest

    def _runtimes(self, deps: Dependencies, job: BuildJob, phases: dict[str, float]) -> tuple[Path, Path, bool]:
        """Both runtimes for ``deps``: reused if complete, else built in scratch and renamed into place.

        ``phases`` receives the seconds of each part (install, compile, move).
        """
        learner = env_dir(self.root, deps.hash, LEARNER)
        aggregator = env_dir(self.root, deps.hash, AGGREGATOR)
        with exclusive(self.root, f"env-{deps.hash}"):
            if is_complete(learner) and is_complete(aggregator):
                return learner, aggregator, True
            staged = self.scratch / "envs"
            staged.mkdir()
            requirements = staged / "requirements.txt"
            requirements.write_text("".join(f"{r}\n" for r in deps.requirements), encoding="utf-8")
            marker: dict[str, object] = {
                "dependency_hash": deps.hash,
                "source": deps.source,
                "requirements": list(deps.requirements),
            }
            flavor = job.key.flavor.value
            started = time.monotonic()
            try:
                # The aggregator resolves the superset; the learner is pinned to the same versions.
                create_runtime(
                    staged / AGGREGATOR,
                    aggregator_requirements(flavor),
                    job.uv_find_links,
                    requirement_files=[requirements],
                    packages=deps.packages,
                )
                constraints = staged / "constraints.txt"
                constraints.write_text(freeze(staged / AGGREGATOR), encoding="utf-8")
                create_runtime(
                    staged / LEARNER,
                    learner_requirements(flavor),
                    job.uv_find_links,
                    requirement_files=[requirements],
                    constraint_files=[constraints],
                    packages=deps.packages,
                )
            except UvError as exc:
                raise BuildError(
                    BuildStep.ENVIRONMENTS, f"installing the dependencies failed: {failure_summary(exc.output)}"
                ) from None
            self._refuse_mlflow_in_learner(staged / LEARNER)
            phases["install"] = round(time.monotonic() - started, 3)
            started = time.monotonic()
            compile_bytecode(staged / AGGREGATOR, [staged / LEARNER])
            phases["compile"] = round(time.monotonic() - started, 3)
            started = time.monotonic()
            for role in (AGGREGATOR, LEARNER):
                mark_complete(staged / role, {**marker, "role": role})
            for role, final in ((AGGREGATOR, aggregator), (LEARNER, learner)):
                if not is_complete(final) and not move_into_place(staged / role, final, self.scratch):
                    raise RuntimeError(f"could not move the {role} runtime into {final}")
            phases["move"] = round(time.monotonic() - started, 3)
        return learner, aggregator, False

    @staticmethod
    def _refuse_mlflow_in_learner(learner: Path) -> None:
        """Learners carry no MLflow (privacy), not even through a dependency of the repo."""
        installed = [line.strip() for line in freeze(learner).splitlines()]
        pulled = [
            line for line in installed if canonicalize_name(re.split(r"[\s=@<>~!;\[]", line)[0]) in MLFLOW_DISTRIBUTIONS
        ]
        if pulled:
            raise BuildError(
                BuildStep.ENVIRONMENTS,
                f"the repo's dependencies pull {', '.join(pulled)} into the learner runtime; learners carry no MLflow",
            )

    @staticmethod
    def _prepare_app(repo_dir: Path, app_dir: Path, digest: str) -> None:
        try:
            fab = importlib.import_module("fl_actors.fab")
        except ImportError as exc:
            raise BuildError(BuildStep.APP, f"the builder lacks fl_actors.fab: {exc}") from None
        fab.prepare_app_dir(repo_dir, app_dir, app_project_name(digest))
        if not app_dir.is_dir():
            raise BuildError(BuildStep.APP, "fl_actors.fab.prepare_app_dir wrote no app directory")
