"""A small HTTP client of the manager API (used by the CLI, tests and benchmarks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx


class ApiError(RuntimeError):
    """The manager answered with an error."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


def default_token() -> str | None:
    """``FLOPS_TOKEN``, else the suite's admin token file (``$FLOPS_HOME/admin-token``)."""
    if token := os.environ.get("FLOPS_TOKEN"):
        return token
    path = Path(os.environ.get("FLOPS_HOME", "var")) / "admin-token"
    return path.read_text().strip() if path.is_file() else None


class FlopsClient:
    """Calls the manager with a bearer token."""

    def __init__(self, base_url: str | None = None, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = (base_url or os.environ.get("FLOPS_API_URL", "http://127.0.0.1:8081")).rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        if response.status_code == 204:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def submit(self, sla: dict[str, Any]) -> dict[str, Any]:
        """POST an SLA; returns ``{project_id, status, stage}``."""
        return self._call("POST", "/api/flops/projects", json=sla)

    def projects(self) -> list[dict[str, Any]]:
        """The caller's projects."""
        return self._call("GET", "/api/flops/projects")

    def project(self, project_id: str) -> dict[str, Any]:
        """One project."""
        return self._call("GET", f"/api/flops/projects/{project_id}")

    def events(self, project_id: str, after: float = 0.0) -> list[dict[str, Any]]:
        """A project's events after a timestamp."""
        return self._call("GET", f"/api/flops/projects/{project_id}/events", params={"after": after})

    def timeline(self, project_id: str, after: float = 0.0) -> str:
        """A project's observer timeline as text."""
        return str(self._call("GET", f"/api/flops/projects/{project_id}/timeline", params={"after": after}))

    def cancel(self, project_id: str) -> dict[str, Any]:
        """Cancel a project."""
        return self._call("DELETE", f"/api/flops/projects/{project_id}")

    def predict(self, project_id: str, body: bytes, content_type: str) -> Any:
        """Predictions of a project's served model (MLflow's scoring protocol: CSV or JSON)."""
        return self._call(
            "POST", f"/api/flops/projects/{project_id}/predict", content=body, headers={"Content-Type": content_type}
        )

    def stop_inference(self, project_id: str) -> dict[str, Any]:
        """Stop a project's inference service."""
        return self._call("DELETE", f"/api/flops/projects/{project_id}/inference")

    def tracking(self) -> dict[str, Any]:
        """The tracking server."""
        return self._call("GET", "/api/flops/tracking")

    def nodes(self) -> list[dict[str, Any]]:
        """The orchestrator's nodes."""
        return self._call("GET", "/api/flops/nodes")

    def mock_data(self, data_tag: str, dataset: str = "digits", nodes: list[str] | None = None) -> dict[str, Any]:
        """Partition a bundled dataset across learner nodes."""
        body: dict[str, Any] = {"data_tag": data_tag, "dataset": dataset}
        if nodes is not None:
            body["nodes"] = nodes
        return self._call("POST", "/api/flops/mocks", json=body)

    def add_data(self, node: str, tag: str, path: Path, timeout_s: float = 600.0) -> dict[str, Any]:
        """Upload a parquet file to a learner node under a data tag (admin only)."""
        with path.open("rb") as body:
            return self._call(
                "PUT",
                f"/api/flops/data/{quote(node, safe='')}/{quote(tag, safe='')}/{quote(path.name, safe='')}",
                content=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
                timeout=timeout_s,
            )

    def data(self) -> list[dict[str, Any]]:
        """Per learner node and data tag: files and rows (admin only)."""
        return self._call("GET", "/api/flops/data")

    def issue_token(self, customer_id: str) -> str:
        """A new customer token (admin only)."""
        return str(self._call("POST", "/api/flops/tokens", json={"customer_id": customer_id})["token"])

    def health(self) -> dict[str, Any]:
        """The manager's health."""
        return self._call("GET", "/health")
