"""What the API shows of a project: stages, status, cause, metrics, image, MLflow link, services.

Stored documents (``projects/models.py``) hold backend internals: PIDs, working directories,
container ids, registry paths. A customer never sees them; an admin gets them in ``debug``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from flops_common.image_key import ImageManifest
from flops_common.serving import ServingManifest
from flops_manager.orchestrator.base import ServiceHandle, ServiceRole
from flops_manager.projects.models import InferenceState, Project, ProjectRecord


class ServicePublic(BaseModel):
    """One deployed service of a project, as its owner sees it."""

    name: str
    role: ServiceRole
    node: str
    state: str = "running"


class InferencePublic(BaseModel):
    """A project's inference service as its owner sees it (call it through ``POST .../predict``)."""

    url: str
    node: str
    state: InferenceState
    ready_seconds: float | None = None


class ProjectPublic(ProjectRecord):
    """A project as its owner sees it."""

    inference: InferencePublic | None = None
    services: list[ServicePublic] = Field(default_factory=list)


class ProjectDebug(BaseModel):
    """Backend internals of a project (admin only)."""

    services: dict[str, ServiceHandle]
    observer: ServiceHandle | None
    inference: ServiceHandle | None = None


class ProjectAdminView(ProjectPublic):
    """A project as an admin sees it: the public view, the published images and the internals."""

    manifest: ImageManifest | None = None
    serving: ServingManifest | None = None
    debug: ProjectDebug


def _services(project: Project) -> list[ServicePublic]:
    handles = [*project.services.values(), *([project.observer] if project.observer else [])]
    return [ServicePublic(name=h.name, role=h.role, node=h.node) for h in handles]


def public_view(project: Project) -> ProjectPublic:
    """What the project's owner may see."""
    inference = project.inference
    shown = (
        None
        if inference is None
        else InferencePublic(
            url=inference.url, node=inference.node, state=inference.state, ready_seconds=inference.ready_seconds
        )
    )
    fields = project.model_dump(include=set(ProjectRecord.model_fields))
    return ProjectPublic(**fields, inference=shown, services=_services(project))


def admin_view(project: Project) -> ProjectAdminView:
    """What an admin sees: the owner's view plus images and backend internals."""
    return ProjectAdminView(
        **public_view(project).model_dump(),
        manifest=project.manifest,
        serving=project.serving,
        debug=ProjectDebug(
            services=project.services,
            observer=project.observer,
            inference=project.inference.handle if project.inference else None,
        ),
    )
