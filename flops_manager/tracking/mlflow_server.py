"""A real ``mlflow server``, reached over HTTP, optionally behind its basic auth (``--app-name basic-auth``).

Credentials come from settings (``FLOPS_MLFLOW_USERNAME``/``FLOPS_MLFLOW_PASSWORD``) or from the user
part of the configured URL; either way they are taken out of every URL this module hands on, so the
tracking URI given to aggregators, the UI link and run links shown to users never carry them. The
aggregator gets them only as MLflow's own environment variables (:func:`client_secret_env`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import SecretStr

from flops_common.redaction import strip_userinfo
from flops_manager.tracking.base import Tracking

if TYPE_CHECKING:
    from flops_manager.settings import Settings

USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"


@dataclass(frozen=True)
class Credentials:
    """A basic-auth user and password (``SecretStr``: it never prints)."""

    username: str
    password: SecretStr


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """``url`` without its ``user:password@`` part, and those credentials (None if it had none)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    clean = strip_userinfo(url)
    if not parts.username:
        return clean, None
    return clean, Credentials(unquote(parts.username), SecretStr(unquote(parts.password or "")))


def settings_credentials(settings: Settings) -> Credentials | None:
    """The MLflow credentials configured for the manager: explicit settings first, else the URL's user part."""
    if settings.mlflow_username and settings.mlflow_password is not None:
        return Credentials(settings.mlflow_username, settings.mlflow_password)
    return split_credentials(settings.mlflow_tracking_uri)[1]


def client_secret_env(credentials: Credentials | None) -> dict[str, str]:
    """MLflow's own client variables for these credentials (a service's secret environment only)."""
    if credentials is None:
        return {}
    return {USERNAME_ENV: credentials.username, PASSWORD_ENV: credentials.password.get_secret_value()}


class MlflowServerTracking(Tracking):
    """MLflow tracking server; the aggregator logs to it, users browse its UI."""

    def __init__(self, tracking_uri: str, ui_url: str | None = None, credentials: Credentials | None = None) -> None:
        uri, in_uri = split_credentials(tracking_uri.rstrip("/"))
        self._uri = uri
        self._ui = split_credentials((ui_url or tracking_uri).rstrip("/"))[0]
        self._credentials = credentials or in_uri

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowServerTracking:
        """The server of ``settings`` with its credentials, if any."""
        return cls(settings.mlflow_tracking_uri, settings.public_mlflow_url, settings_credentials(settings))

    @property
    def tracking_uri(self) -> str:
        """The server's tracking URI (never with credentials)."""
        return self._uri

    @property
    def ui_url(self) -> str:
        """The server's UI (never with credentials)."""
        return self._ui

    @property
    def credentials(self) -> Credentials | None:
        """The basic-auth credentials the manager uses, if any."""
        return self._credentials

    def _auth(self) -> httpx.BasicAuth | None:
        if self._credentials is None:
            return None
        return httpx.BasicAuth(self._credentials.username, self._credentials.password.get_secret_value())

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The UI page of one run."""
        return f"{self._ui}/#/experiments/{experiment_id}/runs/{run_id}"

    def healthy(self) -> bool:
        """``GET /health`` answers 200 and, with credentials, an authenticated API call is accepted."""
        try:
            if httpx.get(f"{self._uri}/health", timeout=3).status_code != 200:
                return False
            if self._credentials is None:
                return True
            answer = httpx.get(
                f"{self._uri}/api/2.0/mlflow/experiments/search",
                params={"max_results": 1},
                auth=self._auth(),
                timeout=5,
            )
            return answer.status_code == 200
        except httpx.HTTPError:
            return False
