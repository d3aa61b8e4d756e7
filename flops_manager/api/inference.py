"""Inference routes of a project: predict through the manager, stop the service."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from flops_manager.api.deps import ComponentsDep, ProjectDep
from flops_manager.api.projects import ProjectAccepted

router = APIRouter(
    prefix="/api/flops/projects",
    tags=["inference"],
    responses={401: {"description": "Missing or invalid bearer token"}},
)
_NO_SERVICE: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such project of yours"},
    409: {"description": "The project has no inference service answering"},
}
FORWARD_TIMEOUT_S = 60.0
_FORWARDED = ("content-type",)


def _http(request: Request) -> httpx.AsyncClient:
    """The app's client for forwarding (one connection pool for every inference service)."""
    client: httpx.AsyncClient | None = getattr(request.app.state, "inference_http", None)
    if client is None:
        client = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S)
        request.app.state.inference_http = client
    return client


@router.post(
    "/{project_id}/predict",
    responses=_NO_SERVICE | {502: {"description": "The inference service did not answer"}},
    description="Forwards the body to the project's inference service (`POST /invocations`, MLflow's scoring "
    "protocol: CSV or JSON `dataframe_split`/`dataframe_records`/`instances`/`inputs`) and returns its answer.",
)
async def predict(project: ProjectDep, request: Request) -> Response:
    """Predictions of the project's served model version."""
    inference = project.inference
    if inference is None or inference.state != "running":
        state = inference.state if inference else "not deployed"
        raise HTTPException(status.HTTP_409_CONFLICT, f"the inference service of {project.id} is {state}")
    headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
    try:
        answer = await _http(request).post(
            f"{inference.url}/invocations", content=await request.body(), headers=headers
        )
    except httpx.HTTPError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the inference service did not answer: {exc}") from exc
    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


@router.delete(
    "/{project_id}/inference",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProjectAccepted,
    responses=_NO_SERVICE,
)
async def stop_inference(project: ProjectDep, parts: ComponentsDep) -> ProjectAccepted:
    """Stop the project's inference service (a project still in stage 6 is cancelled)."""
    if not await run_in_threadpool(parts.engine.stop_inference, project.id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"project {project.id} has no inference service running")
    return ProjectAccepted(project_id=project.id, status="inference stopped", stage=int(project.stage))
