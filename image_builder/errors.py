"""The one exception a build step raises when the build cannot go on."""

from __future__ import annotations

from image_builder.steps import BuildStep


class BuildError(Exception):
    """A build failed at ``step``; ``cause`` is the user-facing reason (no credentials in it)."""

    def __init__(self, step: BuildStep, cause: str) -> None:
        super().__init__(cause)
        self.step = step
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.step}: {self.cause}"
