"""Platform routes: health, tracking, nodes, mock data, tokens, reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

from flops_manager.api.deps import AdminDep, ComponentsDep, PrincipalDep
from flops_manager.auth import issue_token
from flops_manager.mock_data import MockDataRequest, MockDataResult, UnknownNodeError, provide
from flops_manager.orchestrator.base import Node
from flops_manager.projects.engine import ProjectsStillRunning

router = APIRouter(tags=["platform"])
_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "Missing or invalid bearer token"}}
_ADMIN = _AUTH | {403: {"description": "Admin token required"}}


@router.get("/health", responses={503: {"description": "The store does not answer"}})
def health(parts: ComponentsDep, response: Response) -> dict[str, Any]:
    """Whether the manager and its store answer (no token needed)."""
    store_ok = parts.store.ping()
    if not store_ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ok" if store_ok else "degraded", "store": store_ok}


class TrackingInfo(BaseModel):
    """Where training is tracked."""

    tracking_uri: str
    ui_url: str
    healthy: bool


@router.get("/api/flops/tracking", response_model=TrackingInfo, responses=_AUTH)
def tracking(parts: ComponentsDep, _who: PrincipalDep) -> TrackingInfo:
    """The MLflow tracking server and its UI."""
    t = parts.tracking
    return TrackingInfo(tracking_uri=t.tracking_uri, ui_url=t.ui_url, healthy=t.healthy())


@router.get("/api/flops/nodes", response_model=list[Node], responses=_AUTH)
def nodes(parts: ComponentsDep, _who: PrincipalDep) -> list[Node]:
    """The orchestrator's nodes with capabilities and data tags."""
    return parts.orchestrator.nodes()


@router.post("/api/flops/mocks", status_code=status.HTTP_201_CREATED, response_model=MockDataResult, responses=_ADMIN)
def mock_data(request: MockDataRequest, parts: ComponentsDep, _who: AdminDep) -> MockDataResult:
    """Partition a bundled dataset across learner nodes under a data tag.

    Takes FLOps' request or the addon's ``{customerID, mock_data_configuration: {dataset_name,
    number_of_partitions, data_tag}}``. Data is the dataset as scikit-learn ships it (values and dtypes);
    a dataset that is not available offline (e.g. ``mnist``, ``cifar10``) is a 422 listing those that are.
    """
    try:
        result = provide(request, parts.orchestrator.nodes())
    except UnknownNodeError as exc:
        field = "partitions" if request.partitions is not None and request.nodes is None else "nodes"
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", field], "msg": str(exc), "type": "value_error"}],
        ) from exc
    for partition in result.partitions:
        parts.orchestrator.data_provided(partition.node, result.data_tag)
    parts.store.add_mock(result.model_dump(mode="json"))
    return result


class TokenRequest(BaseModel):
    """A customer to issue a token for."""

    customer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    admin: bool = False


class TokenIssued(BaseModel):
    """A new token; shown once, stored only hashed."""

    customer_id: str
    token: str


@router.post("/api/flops/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenIssued, responses=_ADMIN)
def create_token(request: TokenRequest, parts: ComponentsDep, _who: AdminDep) -> TokenIssued:
    """Issue a bearer token for a customer (admin only)."""
    return TokenIssued(
        customer_id=request.customer_id, token=issue_token(parts.store, request.customer_id, request.admin)
    )


@router.post(
    "/api/flops/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_ADMIN | {409: {"description": "Projects are still running"}},
)
def reset(parts: ComponentsDep, _who: AdminDep) -> None:
    """Forget every project and event (admin only; refused while projects run)."""
    try:
        parts.engine.reset()
    except ProjectsStillRunning as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
