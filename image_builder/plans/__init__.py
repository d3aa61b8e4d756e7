"""Build plans: how actor runtimes are built and where they are published."""

from __future__ import annotations

from pathlib import Path

from flops_common.jobs import BuildJob
from image_builder.errors import BuildError
from image_builder.plans.base import BuildPlan
from image_builder.plans.local import LocalPlan
from image_builder.steps import BuildStep
from image_builder.timing import StepRecorder

__all__ = ["BuildPlan", "LocalPlan", "make_plan"]


def make_plan(job: BuildJob, scratch: Path, recorder: StepRecorder) -> BuildPlan:
    """The plan ``job.plan`` names; raises BuildError if it does not exist or cannot build ``job``."""
    if job.plan == "local":
        LocalPlan.check_job(job)
        return LocalPlan(Path(job.registry), scratch, recorder)
    if job.plan == "oci":
        from image_builder.plans.oci import OciPlan  # needs the docker SDK, which the local plan does not

        OciPlan.check_job(job)
        return OciPlan(job, scratch, recorder)
    raise BuildError(BuildStep.ENVIRONMENTS, f"build plan {job.plan!r} is not available (known: local, oci)")
