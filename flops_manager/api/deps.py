"""Dependencies injected into routes: the components and the calling principal.

They are ``async`` on purpose: FastAPI runs every plain ``def`` dependency in the thread pool,
one hop per dependency per request. Only store I/O goes to a thread here, and a principal is
remembered for a short while (tokens are never revoked in place), so a status read costs one
thread hop and one store query.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flops_manager.auth import Principal, authenticate, hash_token
from flops_manager.components import Components
from flops_manager.projects.models import Project

_bearer = HTTPBearer(auto_error=False)
PRINCIPAL_TTL_S = 30.0
_PRINCIPAL_CACHE_MAX = 4096


async def components(request: Request) -> Components:
    """The manager's wired parts."""
    return request.app.state.components


ComponentsDep = Annotated[Components, Depends(components)]


def _principal_cache(request: Request) -> dict[str, tuple[float, Principal]]:
    """This app's remembered principals (token hash -> (expiry, principal))."""
    cache: dict[str, tuple[float, Principal]] | None = getattr(request.app.state, "principals", None)
    if cache is None:
        cache = {}
        request.app.state.principals = cache
    return cache


async def principal(
    request: Request,
    parts: ComponentsDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from its bearer token; 401 without a valid one."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required", {"WWW-Authenticate": "Bearer"})
    key = hash_token(creds.credentials)
    now = time.monotonic()
    principals = _principal_cache(request)
    cached = principals.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    who = await run_in_threadpool(authenticate, creds.credentials, parts.settings, parts.store)
    if who is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", {"WWW-Authenticate": "Bearer"})
    if len(principals) >= _PRINCIPAL_CACHE_MAX:
        principals.clear()
    principals[key] = (now + PRINCIPAL_TTL_S, who)
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]


async def admin(who: PrincipalDep) -> Principal:
    """The caller, who must be an admin."""
    if not who.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin token required")
    return who


AdminDep = Annotated[Principal, Depends(admin)]


async def owned_project(project_id: str, parts: ComponentsDep, who: PrincipalDep) -> Project:
    """The project, if the caller may see it; 404 otherwise (no hint that it exists)."""
    project = await run_in_threadpool(parts.store.get_project, project_id)
    if project is None or not (who.admin or project.customer_id == who.customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return project


ProjectDep = Annotated[Project, Depends(owned_project)]
