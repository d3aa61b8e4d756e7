"""The ``oci`` serving plan: an image ``<registry>/<customer>/trained_model:<version>`` FROM the FLOps base
image, with only the serving requirements in a virtualenv, the model files and FLOps' inference
entrypoint; built by the Docker engine of ``DOCKER_HOST`` (host network) and pushed to the registry.

UNTESTED here: no Docker engine may run while this is written; the local plan is the tested one.
The published manifest travels in the image's ``org.flops.serving`` label, so a version that is
already in the registry is not built again.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from flops_common.oci_images import image_ref
from flops_common.oci_registry import DistributionClient, RegistryUnavailable
from flops_common.serving import ServingBuildJob, ServingManifest
from image_builder.actor_runtime import package_dir
from image_builder.errors import BuildError
from image_builder.plans.oci import DEFAULT_BASE_IMAGE, DockerEngineUser, label_instruction
from image_builder.serving_runtime import SERVING_PACKAGES, dependency_hash
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder

BUILD_TIMEOUT_S = 1800
LABEL_SERVING = "org.flops.serving"
IMAGE_ROOT = "/opt/flops"
MODEL_DIR = f"{IMAGE_ROOT}/model"
_TAIL = 4

DOCKERFILE = """\
FROM {base}
COPY requirements.txt {root}/serving-requirements.txt
RUN python3 -m venv {root}/venv \\
 && {root}/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r {root}/serving-requirements.txt
COPY lib {root}/lib
COPY model {model}
ENV PATH={root}/venv/bin:$PATH PYTHONPATH={root}/lib
RUN python -m inference --check {model}
{labels}
CMD ["python", "-m", "inference"]
"""


def serving_repository(customer_id: str) -> str:
    """``<customer>/trained_model`` (lower case, as registries require)."""
    return f"{re.sub(r'[^a-z0-9._-]', '-', customer_id.lower())}/trained_model"


class OciServingPlan(DockerEngineUser):
    """Builds and pushes the serving image of one registered model version."""

    docker_step = BuildStep.SERVING_ENVIRONMENT

    def __init__(self, job: ServingBuildJob, scratch: Path, recorder: StepRecorder) -> None:
        """A plan for ``job``; ``scratch`` is this build's own directory."""
        self.job = job
        self.base_image = job.base_image or DEFAULT_BASE_IMAGE
        self.scratch = scratch
        self.recorder = recorder
        self.ref = image_ref(job.registry, serving_repository(job.customer_id), job.model.version)

    def published(self, job: ServingBuildJob) -> ServingManifest | None:
        """The manifest in the label of an image of this version already in the registry, if any."""
        client = DistributionClient(job.registry)
        try:
            labels = client.labels(serving_repository(job.customer_id), job.model.version)
        except (httpx.HTTPError, RegistryUnavailable, ValueError, KeyError):
            return None
        finally:
            client.close()
        if not labels or LABEL_SERVING not in labels:
            return None
        manifest = ServingManifest.model_validate_json(labels[LABEL_SERVING])
        return manifest if manifest.model == job.model else None

    def build(self, model_dir: Path, requirements: list[str], job: ServingBuildJob) -> ServingManifest:
        """Image (dependencies, model, load check in the build), push; raises BuildError with the cause."""
        digest = dependency_hash(requirements, [])
        manifest = ServingManifest(
            model=job.model,
            flavor=job.flavor,
            artifact=self.ref,
            model_dir=MODEL_DIR,
            dependency_hash=digest,
            requirements=requirements,
            created_at=time.time(),
        )
        try:
            with self.recorder.step(BuildStep.SERVING_ENVIRONMENT) as info:
                context = self._context(model_dir, requirements, manifest)
                self._docker_build(context)
                size = int(self.client.images.get(self.ref).attrs.get("Size", 0))
                info.update(image=self.ref, size_bytes=size)
            with self.recorder.step(BuildStep.PUBLISH):
                self._push()
        finally:
            if self._client is not None:
                self._client.close()
        return manifest.model_copy(
            update={
                "size_bytes": size,
                "build_seconds": round(self.recorder.elapsed(), 3),
                "step_seconds": dict(self.recorder.seconds),
            }
        )

    def _context(self, model_dir: Path, requirements: list[str], manifest: ServingManifest) -> Path:
        """The build context: requirements, FLOps' serving packages, the model, the Dockerfile."""
        import shutil

        context = self.scratch / "context"
        (context / "lib").mkdir(parents=True)
        (context / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements), encoding="utf-8")
        for name in SERVING_PACKAGES:
            shutil.copytree(package_dir(name), context / "lib" / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(model_dir, context / "model")
        labels = label_instruction({LABEL_SERVING: manifest.model_dump_json()})
        dockerfile = DOCKERFILE.format(base=self.base_image, root=IMAGE_ROOT, model=MODEL_DIR, labels=labels)
        (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        return context

    def _docker_build(self, context: Path) -> None:
        """``docker build`` on the host network without pulling (the base image is local)."""
        from docker.errors import APIError

        lines: list[str] = []
        error: str | None = None
        try:
            for chunk in self.build_stream(context, self.ref):
                lines += [ln for ln in str(chunk.get("stream", "")).splitlines() if ln.strip()]
                if "error" in chunk:
                    error = str(chunk.get("errorDetail", {}).get("message") or chunk["error"]).strip()
        except APIError as exc:
            error = str(exc.explanation or exc)
        if error is None:
            return
        step = BuildStep.LOAD_CHECK if any("inference --check" in ln for ln in lines[-20:]) else None
        tail = " | ".join(lines[-_TAIL:])
        raise BuildError(
            step or BuildStep.SERVING_ENVIRONMENT, f"building the serving image {self.ref} failed: {error} ({tail})"
        )

    def _push(self) -> None:
        from docker.errors import APIError

        repository, tag = self.ref.rsplit(":", 1)
        try:
            for chunk in self.client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    cause = json.dumps(chunk.get("errorDetail") or chunk["error"])
                    raise BuildError(BuildStep.PUBLISH, f"pushing {self.ref} failed: {cause}")
        except APIError as exc:
            raise BuildError(BuildStep.PUBLISH, f"pushing {self.ref} failed: {exc.explanation or exc}") from None
