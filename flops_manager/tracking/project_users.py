"""Per-project MLflow users: each aggregator may edit only its own experiment and registered model.

With MLflow's basic auth (``default_permission = NO_PERMISSIONS``, as the embedded suite runs it) the manager,
as MLflow's admin, makes a user ``flops-agg-<project id>`` before it deploys the project's aggregator, grants
it ``EDIT`` on the project's experiment (made here if missing) and on the registered model its versions go
to, and deletes the user (and so its grants) when the project ends. Its password is an HMAC of the
manager's own MLflow password: nothing new is stored and a restarted manager finds it again.

MLflow checks the admin's password hash on every request (~0.1 s of CPU each, seconds on a loaded
machine), so the engine makes the user off its worker thread from the project's start on, while the
observer starts and the images are looked up (``lifecycle.start_tracking_user``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from flops_manager.settings import Settings
from flops_manager.tracking.mlflow_server import Credentials, settings_credentials, split_credentials

USER_PREFIX = "flops-agg-"
_TIMEOUT_S = 10.0


def project_user(admin: Credentials, project_id: str) -> Credentials:
    """The MLflow user of ``project_id``'s aggregator."""
    username = f"{USER_PREFIX}{project_id}"
    digest = hmac.new(admin.password.get_secret_value().encode(), username.encode(), hashlib.sha256).digest()
    return Credentials(username, SecretStr(base64.urlsafe_b64encode(digest).decode().rstrip("=")))


def aggregator_login(settings: Settings, project_id: str) -> Credentials | None:
    """The login ``project_id``'s aggregator gets: its own user when MLflow has auth, else none."""
    admin = settings_credentials(settings)
    return project_user(admin, project_id) if admin is not None else None


class TrackingAccounts(Protocol):
    """Makes and removes the MLflow user of a project's aggregator."""

    def grant(self, project_id: str, experiment: str, registered_model: str | None) -> None:
        """Create the user with ``EDIT`` on ``experiment`` and ``registered_model`` (idempotent)."""

    def revoke(self, project_id: str) -> None:
        """Delete the user (idempotent)."""


class NoTrackingAccounts:
    """MLflow without auth: nothing to make."""

    def grant(self, project_id: str, experiment: str, registered_model: str | None) -> None:
        """Nothing to create."""

    def revoke(self, project_id: str) -> None:
        """Nothing to remove."""


class MlflowProjectUsers:
    """Project users through MLflow's auth REST API, as its admin."""

    def __init__(self, tracking_uri: str, admin: Credentials) -> None:
        self._uri = split_credentials(tracking_uri.rstrip("/"))[0]
        self._admin = admin

    def _call(self, method: str, path: str, json: dict[str, str], ok_if_exists: bool = False) -> dict[str, Any]:
        auth = (self._admin.username, self._admin.password.get_secret_value())
        answer = httpx.request(method, f"{self._uri}/api/{path}", json=json, auth=auth, timeout=_TIMEOUT_S)
        if ok_if_exists and answer.status_code == 400 and "RESOURCE_ALREADY_EXISTS" in answer.text:
            return {}
        if answer.status_code >= 400:
            raise RuntimeError(f"MLflow {method} {path}: HTTP {answer.status_code} {answer.text[:300]}")
        body: dict[str, Any] = answer.json() if answer.content else {}
        return body

    def _experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, made now unless it exists (one call in the usual case)."""
        made = self._call("POST", "2.0/mlflow/experiments/create", {"name": name}, ok_if_exists=True)
        if made:
            return str(made["experiment_id"])
        answer = httpx.get(
            f"{self._uri}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": name},
            auth=(self._admin.username, self._admin.password.get_secret_value()),
            timeout=_TIMEOUT_S,
        )
        answer.raise_for_status()
        return str(answer.json()["experiment"]["experiment_id"])

    def _registered_model(self, name: str) -> None:
        self._call("POST", "2.0/mlflow/registered-models/create", {"name": name}, ok_if_exists=True)

    def _grant(self, username: str, resource_type: str, resource_id: str) -> None:
        body = {"username": username, "resource_type": resource_type, "resource_id": resource_id, "permission": "EDIT"}
        self._call("POST", "3.0/mlflow/users/permissions/grant", body, ok_if_exists=True)

    def grant(self, project_id: str, experiment: str, registered_model: str | None) -> None:
        """The user, its experiment (made if missing) and registered model, each with ``EDIT``."""
        user = project_user(self._admin, project_id)
        login = {"username": user.username, "password": user.password.get_secret_value()}
        self._call("POST", "2.0/mlflow/users/create", login, ok_if_exists=True)
        self._grant(user.username, "experiment", self._experiment_id(experiment))
        if registered_model:
            self._registered_model(registered_model)
            self._grant(user.username, "registered_model", registered_model)

    def revoke(self, project_id: str) -> None:
        """Delete the user and with it its grants."""
        username = project_user(self._admin, project_id).username
        auth = (self._admin.username, self._admin.password.get_secret_value())
        url = f"{self._uri}/api/2.0/mlflow/users/delete"
        answer = httpx.request("DELETE", url, json={"username": username}, auth=auth, timeout=_TIMEOUT_S)
        if answer.status_code >= 400 and "RESOURCE_DOES_NOT_EXIST" not in answer.text:
            raise RuntimeError(f"MLflow user {username} not deleted: HTTP {answer.status_code} {answer.text[:300]}")


def tracking_accounts(settings: Settings) -> TrackingAccounts:
    """Per-project MLflow users when the manager holds MLflow's admin login, else none."""
    admin = settings_credentials(settings)
    return MlflowProjectUsers(settings.mlflow_tracking_uri, admin) if admin is not None else NoTrackingAccounts()
