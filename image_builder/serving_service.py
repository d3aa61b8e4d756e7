"""One serving build (stage 6) from job to event: download the registered version, its runtime,
load check, publish; reports BUILD_STEP per step, then SERVING_BUILD_SUCCEEDED or _FAILED."""

from __future__ import annotations

import logging
import shutil
import signal
from pathlib import Path
from typing import Any, Protocol

from flops_common.events import EventKind
from flops_common.redaction import redact
from flops_common.serving import ServingBuildJob, ServingManifest
from flops_common.stages import Stage
from image_builder.errors import BuildError
from image_builder.notify import Notifier
from image_builder.plans.serving_local import LocalServingPlan
from image_builder.service import BuildStopped, oci_work_dir
from image_builder.serving_download import download_model
from image_builder.serving_runtime import model_requirements, serving_requirements
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder
from image_builder.workspace import new_scratch, sweep_stale

log = logging.getLogger(__name__)


class ServingPlan(Protocol):
    """Builds and publishes the serving artifact of one registered model version."""

    def published(self, job: ServingBuildJob) -> ServingManifest | None:
        """The manifest already published for ``job.model``, if any."""
        ...

    def build(self, model_dir: Path, requirements: list[str], job: ServingBuildJob) -> ServingManifest:
        """Build from the downloaded ``model_dir``, check, publish; raises BuildError naming the step."""
        ...


def make_serving_plan(job: ServingBuildJob, scratch: Path, recorder: StepRecorder) -> ServingPlan:
    """The plan ``job.plan`` names: ``local`` (a runtime in the registry directory) or ``oci`` (an image)."""
    if job.plan == "local":
        return LocalServingPlan(Path(job.registry), scratch, recorder)
    if job.plan == "oci":
        from image_builder.plans.serving_oci import OciServingPlan  # needs the docker SDK

        return OciServingPlan(job, scratch, recorder)
    raise BuildError(BuildStep.SERVING_ENVIRONMENT, f"serving plan {job.plan!r} is not available (known: local, oci)")


def _build(job: ServingBuildJob, scratch: Path, recorder: StepRecorder, notifier: Notifier) -> ServingManifest:
    plan = make_serving_plan(job, scratch, recorder)
    if (existing := plan.published(job)) is not None:
        notifier.log(f"{job.model.name} version {job.model.version} is already served from the registry; no build")
        return existing
    with recorder.step(BuildStep.DOWNLOAD) as info:
        model_dir = download_model(job.model, job.tracking_uri, scratch / "download")
        info["model"] = job.model.uri
    with recorder.step(BuildStep.DEPENDENCIES) as info:
        requirements = serving_requirements(model_requirements(model_dir), job.flavor.value)
        info["requirements"] = requirements
    return plan.build(model_dir, requirements, job)


def _outcome(notifier: Notifier, kind: EventKind, message: str, **data: Any) -> None:
    """Publish the build's outcome; told of it, the manager undeploys this builder, and the cleanup that
    follows must not be cut short by its SIGTERM."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    notifier.final(kind, message, **data)


def run_serving_build(job: ServingBuildJob) -> int:
    """Build ``job``, report every step and the outcome over MQTT; return the exit code (0 or 1)."""
    notifier = Notifier(job.bus, job.project_id, stage=Stage.POST_TRAINING)
    recorder = StepRecorder(notifier)
    root = Path(job.registry).resolve() if job.plan == "local" else oci_work_dir()
    scratch: Path | None = None
    log.info("building the serving runtime of %s (%s plan)", job.model.uri, job.plan)
    try:
        sweep_stale(root)
        scratch = new_scratch(root, f"serving-{job.model.version}")
        manifest = _build(job, scratch, recorder, notifier)
    except BuildError as exc:
        cause = redact(exc.cause, job.tracking_uri)
        log.error("serving build failed at %s: %s", exc.step, cause)
        _outcome(notifier, EventKind.SERVING_BUILD_FAILED, cause, step=exc.step.value)
        return 1
    except Exception as exc:
        step = (recorder.current or BuildStep.DOWNLOAD).value
        cause = redact(f"internal builder error: {type(exc).__name__}: {exc}", job.tracking_uri)
        log.exception("serving build failed at %s", step)
        _outcome(notifier, EventKind.SERVING_BUILD_FAILED, cause, step=step)
        return 1
    except (BuildStopped, KeyboardInterrupt):
        step = (recorder.current or BuildStep.DOWNLOAD).value
        _outcome(
            notifier, EventKind.SERVING_BUILD_FAILED, "the builder was stopped before the build finished", step=step
        )
        return 1
    else:
        log.info("serving runtime of %s ready in %.1f s", job.model.uri, manifest.build_seconds)
        _outcome(
            notifier,
            EventKind.SERVING_BUILD_SUCCEEDED,
            f"serving runtime of {job.model.name} version {job.model.version} built in {manifest.build_seconds:.1f} s",
            serving=manifest.model_dump(mode="json"),
        )
        return 0
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        notifier.close()
