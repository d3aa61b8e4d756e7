"""An in-memory store for unit tests and throwaway runs: the same contract, nothing persisted."""

from __future__ import annotations

import threading
import time
from typing import Any

from flops_common.events import Event
from flops_manager.projects.models import Project
from flops_manager.store.base import Store


class MemoryStore(Store):
    """Projects and events in dictionaries, copied in and out so callers never share objects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._projects: dict[str, dict[str, Any]] = {}
        self._events: dict[str, Event] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._mocks: list[dict[str, Any]] = []

    def ensure_indexes(self) -> None:
        """Nothing to prepare."""

    def ping(self) -> bool:
        """Always answers."""
        return True

    def insert_project(self, project: Project) -> None:
        """Store a new project; a second insert of the same id is an error, as with a unique key."""
        with self._lock:
            if project.id in self._projects:
                raise ValueError(f"project {project.id} exists")
            self._projects[project.id] = project.to_doc()

    def save_project(self, project: Project) -> None:
        """Replace a project's document."""
        project.updated_at = time.time()
        with self._lock:
            self._projects[project.id] = project.to_doc()

    def get_project(self, project_id: str) -> Project | None:
        """One project, or None."""
        with self._lock:
            doc = self._projects.get(project_id)
        return None if doc is None else Project.from_doc(doc)

    def list_projects(self, customer_id: str | None = None, limit: int = 500) -> list[Project]:
        """Projects, newest first; only ``customer_id``'s when given."""
        with self._lock:
            docs = [d for d in self._projects.values() if customer_id is None or d["customer_id"] == customer_id]
        docs.sort(key=lambda d: d["created_at"], reverse=True)
        return [Project.from_doc(d) for d in docs[:limit]]

    def active_projects(self) -> list[Project]:
        """Projects that have not reached a final status."""
        return [p for p in self.list_projects(limit=1 << 30) if not p.status.is_final]

    def serving_projects(self) -> list[Project]:
        """Ended projects whose inference service is recorded as starting or running."""
        return [
            p
            for p in self.list_projects(limit=1 << 30)
            if p.status.is_final and p.inference is not None and p.inference.live
        ]

    def delete_all(self) -> None:
        """Forget every project, event and mock record."""
        with self._lock:
            self._projects.clear()
            self._events.clear()
            self._mocks.clear()

    def add_event(self, event: Event) -> bool:
        """Store an event once; False when it was stored before."""
        with self._lock:
            if event.event_id in self._events:
                return False
            self._events[event.event_id] = event.model_copy(deep=True)
            return True

    def list_events(self, project_id: str, after: float = 0.0, limit: int = 5000) -> list[Event]:
        """A project's events in time order, those after ``after`` only."""
        with self._lock:
            events = [e for e in self._events.values() if e.project_id == project_id and e.timestamp > after]
        events.sort(key=lambda e: e.timestamp)
        return [e.model_copy(deep=True) for e in events[:limit]]

    def add_token(self, token_hash: str, customer_id: str, admin: bool) -> None:
        """Store a token's hash and whom it belongs to."""
        with self._lock:
            self._tokens[token_hash] = {"token_hash": token_hash, "customer_id": customer_id, "admin": admin}

    def find_token(self, token_hash: str) -> dict[str, Any] | None:
        """The owner of a token hash, or None."""
        with self._lock:
            record = self._tokens.get(token_hash)
        return None if record is None else dict(record)

    def add_mock(self, record: dict[str, Any]) -> None:
        """Remember a mock data provider run."""
        with self._lock:
            self._mocks.append(dict(record))

    def list_mocks(self) -> list[dict[str, Any]]:
        """Every mock data provider run."""
        with self._lock:
            return [dict(r) for r in self._mocks]
