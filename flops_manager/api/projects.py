"""Project routes: submit, list, read, follow, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from flops_common.events import Event
from flops_common.sla import ProjectSLA
from flops_common.timeline import format_event
from flops_manager.api.deps import ComponentsDep, PrincipalDep, ProjectDep
from flops_manager.api.schemas import ProjectAdminView, ProjectPublic, admin_view, public_view
from flops_manager.projects.sla_policy import SlaRejected

router = APIRouter(
    prefix="/api/flops/projects",
    tags=["projects"],
    responses={401: {"description": "Missing or invalid bearer token"}},
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such project of yours"}}


class ProjectAccepted(BaseModel):
    """The answer to a submitted SLA: the work goes on asynchronously."""

    project_id: str
    status: str
    stage: int


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ProjectAccepted)
def submit_project(sla: ProjectSLA, parts: ComponentsDep, who: PrincipalDep) -> ProjectAccepted:
    """Validate and store an SLA, start the project, return its id at once."""
    if not who.admin and sla.customerID != who.customer_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["body", "customerID"],
                    "msg": "customerID must be your own customer id",
                    "type": "value_error",
                }
            ],
        )
    try:
        project = parts.engine.submit(sla, sla.customerID)
    except SlaRejected as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", *exc.field_name.split(".")], "msg": exc.reason, "type": "value_error"}],
        ) from exc
    return ProjectAccepted(project_id=project.id, status=project.status.value, stage=int(project.stage))


@router.get("", response_model=list[ProjectAdminView | ProjectPublic])
def list_projects(parts: ComponentsDep, who: PrincipalDep) -> list[ProjectAdminView | ProjectPublic]:
    """The caller's projects (every project, with internals, for an admin), newest first."""
    if who.admin:
        return [admin_view(p) for p in parts.store.list_projects()]
    return [public_view(p) for p in parts.store.list_projects(who.customer_id)]


@router.get(
    "/{project_id}",
    response_model=ProjectAdminView | ProjectPublic,
    responses=_NOT_FOUND,
    description="An admin also gets the published images (`manifest`) and backend internals (`debug`).",
)
async def get_project(project_id: str, parts: ComponentsDep, who: PrincipalDep) -> Response:
    """One project: stage, status, timestamps, cause, image, MLflow run, final metrics, services."""
    # The engine keeps each project's JSON current in the API's cache: most reads need no I/O,
    # and none pays FastAPI's validate-then-serialize of the response model.
    view = parts.views.get(project_id)
    if view is None:
        project = await run_in_threadpool(parts.store.get_project, project_id)
        view = None if project is None else parts.views.remember(project)
    if view is None or not (who.admin or view.customer_id == who.customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return Response(view.admin_json if who.admin else view.public_json, media_type="application/json")


@router.get("/{project_id}/events", response_model=list[Event], responses=_NOT_FOUND)
def project_events(project: ProjectDep, parts: ComponentsDep, after: float = Query(0.0, ge=0)) -> list[Event]:
    """The project's stored events (those after the ``after`` timestamp)."""
    return parts.store.list_events(project.id, after)


@router.get("/{project_id}/timeline", response_class=PlainTextResponse, responses=_NOT_FOUND)
def project_timeline(project: ProjectDep, parts: ComponentsDep, after: float = Query(0.0, ge=0)) -> str:
    """The observer's timeline as text, one line per event."""
    lines = [format_event(e) for e in parts.store.list_events(project.id, after)]
    return "\n".join(lines) + ("\n" if lines else "")


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProjectAccepted,
    responses=_NOT_FOUND | {409: {"description": "The project already ended"}},
)
def cancel_project(project: ProjectDep, parts: ComponentsDep) -> ProjectAccepted:
    """Cancel a project: every service of it is undeployed; an ended project's inference service is stopped."""
    if project.status.is_final:
        if project.inference is not None and project.inference.live and parts.engine.stop_inference(project.id):
            return ProjectAccepted(project_id=project.id, status="inference stopped", stage=int(project.stage))
        raise HTTPException(status.HTTP_409_CONFLICT, f"project {project.id} already {project.status.value}")
    parts.engine.cancel(project.id)
    return ProjectAccepted(project_id=project.id, status="cancelling", stage=int(project.stage))
