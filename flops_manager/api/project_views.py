"""The API's read cache of project JSON: kept current by the engine, the only writer of projects.

A status read then needs neither a store round trip nor a validate-and-serialize pass
(``bench/RESULTS.md``, P7). Both the owner's and the admin's JSON are rendered once per write.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flops_manager.api.schemas import admin_view, public_view
from flops_manager.projects.models import Project

VIEW_CACHE_MAX = 10_000


@dataclass(frozen=True)
class ProjectView:
    """One project's JSON as the API returns it, for its owner and for an admin."""

    customer_id: str
    updated_at: float
    public_json: bytes
    admin_json: bytes


def render(project: Project) -> ProjectView:
    """Both JSON answers of ``project``."""
    return ProjectView(
        project.customer_id,
        project.updated_at,
        public_view(project).model_dump_json().encode(),
        admin_view(project).model_dump_json().encode(),
    )


class ProjectViews:
    """Project JSON by id; the engine tells it of every write (``ProjectListener``)."""

    def __init__(self, max_entries: int = VIEW_CACHE_MAX) -> None:
        self._views: dict[str, ProjectView] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, project_id: str) -> ProjectView | None:
        """The cached view, or None (no I/O)."""
        return self._views.get(project_id)

    def remember(self, project: Project) -> ProjectView:
        """Render and keep ``project``; an older copy never replaces a newer one."""
        view = render(project)
        with self._lock:
            known = self._views.get(project.id)
            if known is not None and known.updated_at > view.updated_at:
                return known  # a store read raced with a newer save
            if known is None and len(self._views) >= self._max:
                self._views.pop(next(iter(self._views)))
            self._views[project.id] = view
            return view

    def project_saved(self, project: Project) -> None:
        """The engine wrote ``project``."""
        self.remember(project)

    def projects_forgotten(self) -> None:
        """The engine deleted every project."""
        with self._lock:
            self._views.clear()
