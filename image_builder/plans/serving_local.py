"""The ``local`` serving plan: a serving runtime in the registry directory, keyed and cached by
model version (``flops_common.serving`` has the layout); runtimes are shared by dependency hash."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from flops_common.serving import ServingBuildJob, ServingManifest, serving_env_dir, serving_model_dir
from image_builder.errors import BuildError
from image_builder.serving_runtime import SERVING_PACKAGES, dependency_hash, tree_size
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder
from image_builder.uv_tool import UvError, failure_summary
from image_builder.venvs import create_runtime, env_python, is_complete, mark_complete
from image_builder.workspace import exclusive, move_into_place

MANIFEST = "manifest.json"
LOAD_CHECK_TIMEOUT_S = 300


def published_serving(root: Path, job: ServingBuildJob) -> ServingManifest | None:
    """The manifest of ``job.model`` if its version is published and its runtime still complete."""
    path = serving_model_dir(root, job.model) / MANIFEST
    try:
        manifest = ServingManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.model != job.model or not is_complete(Path(manifest.artifact)) or not Path(manifest.model_dir).is_dir():
        return None
    return manifest


class LocalServingPlan:
    """Builds one version's serving runtime (or reuses one with the same dependencies) and publishes it."""

    def __init__(self, root: Path, scratch: Path, recorder: StepRecorder) -> None:
        """A plan publishing into the registry directory ``root``; ``scratch`` is this build's own."""
        self.root = root.resolve()
        self.scratch = scratch
        self.recorder = recorder

    def published(self, job: ServingBuildJob) -> ServingManifest | None:
        """The manifest already published for ``job.model``, if any."""
        return published_serving(self.root, job)

    def build(self, model_dir: Path, requirements: list[str], job: ServingBuildJob) -> ServingManifest:
        """Runtime, load check, publish; raises BuildError naming the step and the cause."""
        digest = dependency_hash(requirements, job.uv_find_links)
        with self.recorder.step(BuildStep.SERVING_ENVIRONMENT) as info:
            runtime, reused = self._runtime(requirements, digest, job)
            info.update(reused=reused, dependency_hash=digest)
        with self.recorder.step(BuildStep.LOAD_CHECK) as info:
            info["loaded"] = check_loads(runtime, model_dir)
        with self.recorder.step(BuildStep.PUBLISH) as info:
            final = serving_model_dir(self.root, job.model)
            staged = self.scratch / "version"
            staged.mkdir()
            shutil.move(str(model_dir), staged / "model")
            manifest = ServingManifest(
                model=job.model,
                flavor=job.flavor,
                artifact=str(runtime),
                model_dir=str(final / "model"),
                dependency_hash=digest,
                requirements=requirements,
                size_bytes=tree_size(runtime) + tree_size(staged / "model"),
                created_at=time.time(),
                build_seconds=round(self.recorder.elapsed(), 3),
                step_seconds=dict(self.recorder.seconds),
                env_reused=reused,
            )
            (staged / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
            with exclusive(self.root, f"serving-{digest}-{final.name}"):
                existing = published_serving(self.root, job)
                if existing is not None:
                    return existing
                if not move_into_place(staged, final, self.scratch):
                    raise RuntimeError(f"could not publish {job.model.uri} into {final}")
            info["size_bytes"] = manifest.size_bytes
        return manifest

    def _runtime(self, requirements: list[str], digest: str, job: ServingBuildJob) -> tuple[Path, bool]:
        """The serving runtime of ``digest``: reused when complete, else built in scratch and moved in."""
        final = serving_env_dir(self.root, digest)
        with exclusive(self.root, f"serving-env-{digest}"):
            if is_complete(final):
                return final, True
            staged = self.scratch / "env"
            try:
                create_runtime(staged, requirements, job.uv_find_links, packages=SERVING_PACKAGES)
            except UvError as exc:
                raise BuildError(
                    BuildStep.SERVING_ENVIRONMENT,
                    f"installing the serving dependencies failed: {failure_summary(exc.output)}",
                ) from None
            mark_complete(staged, {"dependency_hash": digest, "requirements": requirements, "role": "serving"})
            if not move_into_place(staged, final, self.scratch):
                raise RuntimeError(f"could not move the serving runtime into {final}")
        return final, False


def check_loads(runtime: Path, model_dir: Path) -> str:
    """Load the model in ``runtime`` as the inference service will; the loader's line, or BuildError.

    ``-I`` ignores ``PYTHONDONTWRITEBYTECODE``: the check writes the bytecode of MLflow, the flavor and
    the server into the runtime once, so the inference service starts without compiling them.
    """
    try:
        proc = subprocess.run(
            [str(env_python(runtime)), "-I", "-m", "inference", "--check", str(model_dir)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LOAD_CHECK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(BuildStep.LOAD_CHECK, f"loading the model took over {LOAD_CHECK_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise BuildError(BuildStep.LOAD_CHECK, f"the model does not load for serving: {' | '.join(lines[-2:])}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
