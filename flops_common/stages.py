"""The stages a project goes through and the statuses it can have."""

from enum import IntEnum, StrEnum


class Stage(IntEnum):
    """Project stages (stage 0, preparation, belongs to the platform, not to a project)."""

    PROJECT_START = 1
    IMAGE_LOOKUP = 2
    IMAGE_BUILD = 3
    ACTOR_DEPLOYMENT = 4
    TRAINING = 5
    POST_TRAINING = 6  # when the SLA asks: serving build, inference service

    @property
    def label(self) -> str:
        """Human-readable stage name."""
        return self.name.lower().replace("_", " ")


class ProjectStatus(StrEnum):
    """Where a project stands overall."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Whether nothing more will happen to the project."""
        return self in (ProjectStatus.SUCCEEDED, ProjectStatus.FAILED, ProjectStatus.CANCELLED)
