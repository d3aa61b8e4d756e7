"""The SuperLink's Control API, called in-process: what ``flwr run``, ``flwr ls``, ``flwr stop`` and
``flwr log --stream`` send, without starting a CLI process (and its imports) for each call.

Flower's own protobuf-over-HTTP client and request types are used, with the headers the CLI sends.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TypeVar

import httpx
from flwr.cli.build import build_fab_from_disk
from flwr.cli.cli_client_interceptor import CliClientHttpInterceptor
from flwr.cli.config_utils import load_and_validate
from flwr.common.config import get_metadata_from_config, parse_config_args
from flwr.common.constant import FAB_CONFIG_FILE
from flwr.common.serde import fab_to_proto, run_from_proto, user_config_to_proto
from flwr.proto.control_pb2 import (
    ListRunsRequest,
    StartRunRequest,
    StopRunRequest,
    StreamLogsRequest,
)
from flwr.supercore.control.control_http_client import ControlHttpClient
from flwr.supercore.fab import Fab
from flwr.supercore.interceptors.http.runtime_version import RuntimeVersionHttpInterceptor

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0


class ControlApiError(RuntimeError):
    """A Control API call failed; the message is Flower's explanation (or why the SuperLink was unreachable)."""


@dataclass(frozen=True)
class RunStatus:
    """A run's state as ``flwr ls`` reports it (e.g. ``running``, ``finished:failed``)."""

    status: str
    details: str
    elapsed_s: float

    @property
    def finished(self) -> bool:
        """Whether the run reached a final state."""
        return self.status.startswith("finished")

    @property
    def succeeded(self) -> bool:
        """Whether the run finished successfully."""
        return self.status == "finished:completed"


class LogStream:
    """A run's log, streamed into a file by a thread; ``poll()`` is None while it streams (like a process)."""

    def __init__(self, follow: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(follow,), name="flower-log", daemon=True)
        self._thread.start()

    def _run(self, follow: Callable[[], None]) -> None:
        try:
            follow()
        except (httpx.HTTPError, ValueError) as exc:  # a broken-off stream is followed again by the caller
            self.error = exc

    def poll(self) -> int | None:
        """None while streaming; 0 once the stream ended."""
        return None if self._thread.is_alive() else 0


class ControlClient:
    """Control API calls against one insecure SuperLink address (``host:port``)."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._http: ControlHttpClient | None = None
        self._log_read_until: dict[int, float] = {}  # a stream followed again resumes where it broke off

    def _client(self) -> ControlHttpClient:
        if self._http is None:
            self._http = ControlHttpClient.from_server_address(
                server_address=self._address,
                insecure=True,
                root_certificates=None,
                interceptors=[CliClientHttpInterceptor(), RuntimeVersionHttpInterceptor(component_name="flwr CLI")],
            )
        return self._http

    def _call(self, call: Callable[[ControlHttpClient], T]) -> T:
        try:
            return call(self._client())
        except httpx.HTTPStatusError as exc:
            raise ControlApiError(f"SuperLink answered {exc.response.status_code}: {exc.response.text[:500]}") from exc
        except httpx.RequestError as exc:
            raise ControlApiError(f"SuperLink at {self._address} unreachable: {exc}") from exc

    def run(self, app_dir: Path, run_config_file: Path) -> int:
        """Build the app's FAB and start a run with the TOML file's run config overrides; return the run id."""
        config, _warnings = load_and_validate(app_dir / FAB_CONFIG_FILE)
        if config is None:
            raise ControlApiError(f"{app_dir / FAB_CONFIG_FILE} is not a valid Flower app configuration")
        fab_bytes = build_fab_from_disk(app_dir)
        fab_id, fab_version = get_metadata_from_config(config)
        del fab_id, fab_version  # read to validate the metadata, as flwr run does; the FAB carries it
        fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
        request = StartRunRequest(
            fab=fab_to_proto(fab), override_config=user_config_to_proto(parse_config_args([str(run_config_file)]))
        )
        answer = self._call(lambda c: c.StartRun(request))
        if not answer.HasField("run_id"):
            raise ControlApiError("the SuperLink started no run")
        return int(answer.run_id)

    def status(self, run_id: int) -> RunStatus:
        """The run's status, as ``flwr ls --run-id`` shows it."""
        answer = self._call(lambda c: c.ListRuns(ListRunsRequest(run_id=run_id)))
        if run_id not in answer.run_dict:
            raise ControlApiError(f"the SuperLink knows no run {run_id}")
        run = run_from_proto(answer.run_dict[run_id])
        status = run.status.status + (f":{run.status.sub_status}" if run.status.sub_status else "")
        elapsed = 0.0
        if run.running_at:
            end = datetime.fromisoformat(run.finished_at) if run.finished_at else datetime.now().astimezone()
            elapsed = (end - datetime.fromisoformat(run.running_at)).total_seconds()
        return RunStatus(status=status, details=run.status.details or "", elapsed_s=elapsed)

    def stop(self, run_id: int) -> None:
        """Stop a run; errors are ignored (the run may be finished already)."""
        with contextlib.suppress(ControlApiError):
            self._call(lambda c: c.StopRun(StopRunRequest(run_id=run_id)))

    def stream_log(self, run_id: int, out: IO[bytes]) -> LogStream:
        """Stream the run's log into ``out`` until the run ends (or the stream breaks off)."""

        def follow() -> None:
            after = self._log_read_until.get(run_id, 0.0)
            for answer in self._client().StreamLogs(StreamLogsRequest(run_id=run_id, after_timestamp=after)):
                out.write(answer.log_output.encode())
                out.flush()
                self._log_read_until[run_id] = answer.latest_timestamp

        return LogStream(follow)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None
