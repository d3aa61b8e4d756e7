"""A real ``mlflow server``, reached over HTTP."""

from __future__ import annotations

import httpx

from flops_manager.tracking.base import Tracking


class MlflowServerTracking(Tracking):
    """MLflow tracking server; the aggregator logs to it, users browse its UI."""

    def __init__(self, tracking_uri: str, ui_url: str | None = None) -> None:
        self._uri = tracking_uri.rstrip("/")
        self._ui = (ui_url or tracking_uri).rstrip("/")

    @property
    def tracking_uri(self) -> str:
        """The server's tracking URI."""
        return self._uri

    @property
    def ui_url(self) -> str:
        """The server's UI."""
        return self._ui

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The UI page of one run."""
        return f"{self._ui}/#/experiments/{experiment_id}/runs/{run_id}"

    def healthy(self) -> bool:
        """``GET /health`` answers 200."""
        try:
            return httpx.get(f"{self._uri}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False
