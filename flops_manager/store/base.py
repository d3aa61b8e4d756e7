"""The store boundary: projects, events, tokens and mock-data records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from flops_common.events import Event
from flops_manager.projects.models import Project


class Store(ABC):
    """One backend per module; callers only see this interface. Constructors do no I/O."""

    @abstractmethod
    def ensure_indexes(self) -> None:
        """Prepare what the queries rely on (idempotent)."""

    @abstractmethod
    def ping(self) -> bool:
        """Whether the store answers."""

    # projects
    @abstractmethod
    def insert_project(self, project: Project) -> None:
        """Store a new project."""

    @abstractmethod
    def save_project(self, project: Project) -> None:
        """Replace a project's document with ``project`` (stamps ``updated_at``)."""

    @abstractmethod
    def get_project(self, project_id: str) -> Project | None:
        """One project, or None."""

    @abstractmethod
    def list_projects(self, customer_id: str | None = None, limit: int = 500) -> list[Project]:
        """Projects, newest first; only ``customer_id``'s when given."""

    @abstractmethod
    def active_projects(self) -> list[Project]:
        """Projects that have not reached a final status."""

    @abstractmethod
    def serving_projects(self) -> list[Project]:
        """Ended projects whose inference service is recorded as starting or running."""

    @abstractmethod
    def delete_all(self) -> None:
        """Forget every project, event and mock record (admin reset)."""

    # events
    @abstractmethod
    def add_event(self, event: Event) -> bool:
        """Store an event once; False when it was stored before (redelivery)."""

    @abstractmethod
    def list_events(self, project_id: str, after: float = 0.0, limit: int = 5000) -> list[Event]:
        """A project's events in time order, those after ``after`` only."""

    # tokens
    @abstractmethod
    def add_token(self, token_hash: str, customer_id: str, admin: bool) -> None:
        """Store a token's hash and whom it belongs to."""

    @abstractmethod
    def find_token(self, token_hash: str) -> dict[str, Any] | None:
        """The owner of a token hash (``customer_id``, ``admin``), or None."""

    # mock data
    @abstractmethod
    def add_mock(self, record: dict[str, Any]) -> None:
        """Remember a mock data provider run."""

    @abstractmethod
    def list_mocks(self) -> list[dict[str, Any]]:
        """Every mock data provider run."""
