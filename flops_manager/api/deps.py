"""Dependencies injected into routes: the components and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flops_manager.auth import Principal, authenticate
from flops_manager.components import Components
from flops_manager.projects.models import Project

_bearer = HTTPBearer(auto_error=False)


def components(request: Request) -> Components:
    """The manager's wired parts."""
    return request.app.state.components


ComponentsDep = Annotated[Components, Depends(components)]


def principal(
    parts: ComponentsDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, from its bearer token; 401 without a valid one."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required", {"WWW-Authenticate": "Bearer"})
    who = authenticate(creds.credentials, parts.settings, parts.store)
    if who is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", {"WWW-Authenticate": "Bearer"})
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]


def admin(who: PrincipalDep) -> Principal:
    """The caller, who must be an admin."""
    if not who.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin token required")
    return who


AdminDep = Annotated[Principal, Depends(admin)]


def owned_project(project_id: str, parts: ComponentsDep, who: PrincipalDep) -> Project:
    """The project, if the caller may see it; 404 otherwise (no hint that it exists)."""
    project = parts.store.get_project(project_id)
    if project is None or not (who.admin or project.customer_id == who.customer_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return project


ProjectDep = Annotated[Project, Depends(owned_project)]
