"""Node data routes (admin): put a parquet file on a learner node under a data tag, list node data."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from flops_manager.api.deps import AdminDep, ComponentsDep
from flops_manager.node_data import DataAdded, DataError, TagData, add_file, learner_node, list_data, too_large

router = APIRouter(tags=["data"])
_ADMIN: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"},
    403: {"description": "Admin token required"},
}
_ADD = _ADMIN | {
    404: {"description": "No such learner node"},
    409: {"description": "The file already exists"},
    413: {"description": "The file exceeds the size limit"},
    422: {"description": "Invalid tag or file name, or not a readable parquet file"},
}


def _http(exc: DataError) -> HTTPException:
    return HTTPException(exc.status, [{"loc": ["path" if exc.field != "body" else "body", exc.field], "msg": str(exc)}])


@router.put(
    "/api/flops/data/{node}/{tag}/{file_name}",
    status_code=status.HTTP_201_CREATED,
    response_model=DataAdded,
    responses=_ADD,
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def put_data(
    node: str, tag: str, file_name: str, request: Request, parts: ComponentsDep, _who: AdminDep
) -> DataAdded:
    """Store the request body (a parquet file) on learner ``node`` as ``<tag>.<file_name>`` and record the tag."""
    max_bytes = parts.settings.data_max_file_mb << 20
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:  # refused before a byte is read
        raise _http(too_large(max_bytes))
    try:
        target = learner_node(await run_in_threadpool(parts.orchestrator.nodes), node)
        with tempfile.TemporaryDirectory(prefix="flops-data-") as scratch:
            staged = Path(scratch) / "upload.parquet"
            written = 0
            with staged.open("wb") as handle:
                async for chunk in request.stream():
                    written += len(chunk)
                    if written > max_bytes:
                        raise too_large(max_bytes)
                    handle.write(chunk)
            added = await run_in_threadpool(add_file, target, tag, file_name, staged)
    except DataError as exc:
        raise _http(exc) from None
    await run_in_threadpool(parts.orchestrator.data_provided, node, tag)
    return added


@router.get("/api/flops/data", response_model=list[TagData], responses=_ADMIN)
def get_data(parts: ComponentsDep, _who: AdminDep) -> list[TagData]:
    """Per learner node and data tag: the files (parquet with rows and columns, npz) and the parquet rows."""
    return list_data(parts.orchestrator.nodes())
