"""``python -m image_builder``: build the job in ``FLOPS_JOB``; exit 0 on success, 1 on failure.

``FLOPS_JOB_KIND=serving`` makes it a serving build (stage 6, a ``ServingBuildJob``); else it
builds the actor images of a ``BuildJob``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from pydantic import ValidationError

from flops_common.jobs import JOB_ENV, BuildJob, load_job
from flops_common.serving import JOB_KIND_ENV, SERVING_JOB_KIND, ServingBuildJob
from image_builder.service import BuildStopped, run_build

log = logging.getLogger("image_builder")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise BuildStopped(signal.Signals(signum).name)


def main() -> int:
    """Read the job, build it, return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serving = os.environ.get(JOB_KIND_ENV) == SERVING_JOB_KIND
    try:
        job = load_job(ServingBuildJob) if serving else load_job(BuildJob)
    except KeyError:
        log.error("no build job: set %s to a %s as JSON", JOB_ENV, "ServingBuildJob" if serving else "BuildJob")
        return 1
    except ValidationError as exc:
        log.error("invalid build job in %s: %s", JOB_ENV, exc)
        return 1
    signal.signal(signal.SIGTERM, _stop)
    if isinstance(job, ServingBuildJob):
        from image_builder.serving_service import run_serving_build

        return run_serving_build(job)
    return run_build(job)


if __name__ == "__main__":
    sys.exit(main())
