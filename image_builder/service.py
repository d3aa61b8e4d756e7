"""One build from job to event: clone, contract, dependencies, then the plan; always notify, always clean up."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from flops_common.image_key import ImageManifest
from flops_common.jobs import BuildJob
from flops_common.redaction import redact, strip_userinfo
from image_builder.actor_runtime import runtime_source_hash
from image_builder.clone import clone_commit
from image_builder.contract import check_contract
from image_builder.dependencies import resolve_dependencies
from image_builder.errors import BuildError
from image_builder.notify import Notifier
from image_builder.plans import make_plan
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder
from image_builder.workspace import new_scratch, sweep_stale

log = logging.getLogger(__name__)


def oci_work_dir() -> Path:
    """Where an oci build keeps its scratch (``FLOPS_BUILDER_WORKDIR``, else the temp dir)."""
    return Path(os.environ.get("FLOPS_BUILDER_WORKDIR") or tempfile.gettempdir()) / "flops-builder"


class BuildStopped(BaseException):
    """The builder was told to stop (SIGTERM) while building."""


def _build(job: BuildJob, scratch: Path, recorder: StepRecorder, notifier: Notifier) -> ImageManifest:
    plan = make_plan(job, scratch, recorder)
    if (existing := plan.published(job)) is not None:
        notifier.log(f"image {existing.digest} is already published; nothing to build")
        return existing
    repo_dir = scratch / "repo"
    with recorder.step(BuildStep.CLONE) as info:
        info["commit"] = clone_commit(job.key.repo_url, job.key.commit, repo_dir)
    with recorder.step(BuildStep.CONTRACT):
        check_contract(repo_dir)
    with recorder.step(BuildStep.DEPENDENCIES) as info:
        deps = resolve_dependencies(repo_dir, job.key, runtime_source_hash())
        info.update(source=deps.source, requirements=list(deps.requirements), dependency_hash=deps.hash)
    if deps.dropped:
        notifier.log(
            f"left out {', '.join(deps.dropped)} from {deps.source}: "
            "learners carry no MLflow, the aggregator has its own client"
        )
    return plan.build(repo_dir, deps, job)


def run_build(job: BuildJob) -> int:
    """Build ``job``, report every step and the outcome over MQTT; return the exit code (0 or 1)."""
    notifier = Notifier(job.bus, job.project_id)
    recorder = StepRecorder(notifier)
    # The local plan's scratch sits in its registry directory (atomic renames); an oci build's in a work dir.
    root = Path(job.registry).resolve() if job.plan == "local" else oci_work_dir()
    scratch: Path | None = None
    log.info("building %s@%s (%s plan)", strip_userinfo(job.key.repo_url), job.key.commit, job.plan)
    try:
        sweep_stale(root)
        scratch = new_scratch(root, job.key.digest)
        manifest = _build(job, scratch, recorder, notifier)
    except BuildError as exc:
        cause = redact(exc.cause, job.key.repo_url)
        log.error("build failed at %s: %s", exc.step, cause)
        notifier.failed(exc.step.value, cause)
        return 1
    except Exception as exc:
        step = (recorder.current or BuildStep.CLONE).value
        cause = redact(f"internal builder error: {type(exc).__name__}: {exc}", job.key.repo_url)
        log.exception("build failed at %s", step)
        notifier.failed(step, cause)
        return 1
    except (BuildStopped, KeyboardInterrupt):
        step = (recorder.current or BuildStep.CLONE).value
        notifier.failed(step, "the builder was stopped before the build finished")
        return 1
    else:
        log.info("built image %s in %.1f s", manifest.digest, manifest.build_seconds)
        notifier.succeeded(manifest)
        return 0
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        notifier.close()
