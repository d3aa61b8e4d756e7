"""``python -m image_builder``: build the job in ``FLOPS_JOB``; exit 0 on success, 1 on failure."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from pydantic import ValidationError

from flops_common.jobs import JOB_ENV, BuildJob, load_job
from image_builder.service import BuildStopped, run_build

log = logging.getLogger("image_builder")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise BuildStopped(signal.Signals(signum).name)


def main() -> int:
    """Read the job, build it, return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        job = load_job(BuildJob)
    except KeyError:
        log.error("no build job: set %s to a BuildJob as JSON", JOB_ENV)
        return 1
    except ValidationError as exc:
        log.error("invalid build job in %s: %s", JOB_ENV, exc)
        return 1
    signal.signal(signal.SIGTERM, _stop)
    return run_build(job)


if __name__ == "__main__":
    sys.exit(main())
