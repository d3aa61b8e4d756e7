"""The interface every build plan implements (``local`` runtimes now, ``oci`` images later)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from flops_common.image_key import ImageManifest
from flops_common.jobs import BuildJob
from image_builder.dependencies import Dependencies


class BuildPlan(Protocol):
    """Builds and publishes the learner and aggregator for one checked-out repo."""

    def published(self, job: BuildJob) -> ImageManifest | None:
        """The manifest already published for ``job.key``, if any (another builder was faster)."""
        ...

    def build(self, repo_dir: Path, deps: Dependencies, job: BuildJob) -> ImageManifest:
        """Build both actors from ``repo_dir``, check them, publish them; return the manifest.

        Raises BuildError naming the step and the cause.
        """
        ...
