"""The aggregator waits for its MLflow login (made by the manager beside the deployment) before it logs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fl_actors.tracking import access_checks, wait_for_access


class _Mlflow:
    """An HTTP server answering 401 until ``ready_after`` requests, then 200 (or ``final`` for every call)."""

    def __init__(self, ready_after: int, final: int = 200) -> None:
        self.ready_after, self.final = ready_after, final
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                code = 401 if len(outer.paths) <= outer.ready_after else outer.final
                body = json.dumps({"error_code": "X"}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def serve() -> Iterator[list[_Mlflow]]:
    started: list[_Mlflow] = []
    yield started
    for fake in started:
        fake.server.shutdown()
        fake.server.server_close()


def _environ(url: str, model: str | None = "flops-alice-digits") -> dict[str, str]:
    environ = {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": "flops-agg-p1",
        "MLFLOW_TRACKING_PASSWORD": "pw",
        "MLFLOW_EXPERIMENT_NAME": "flops-alice-p1",
    }
    return environ | ({"FLOPS_REGISTERED_MODEL": model} if model else {})


def _start(serve: list[_Mlflow], ready_after: int, final: int = 200) -> _Mlflow:
    fake = _Mlflow(ready_after, final)
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    serve.append(fake)
    return fake


def test_no_login_or_no_http_server_means_nothing_to_wait_for() -> None:
    assert access_checks({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}) == []
    assert access_checks(_environ("file:///tmp/mlruns")) == []
    assert wait_for_access({}) == 0.0


def test_it_waits_until_the_experiment_and_the_registered_model_can_be_read(serve: list[_Mlflow]) -> None:
    fake = _start(serve, ready_after=3)
    waited = wait_for_access(_environ(fake.url), timeout_s=10, poll_s=0.01)
    assert waited > 0
    assert [p.split("?")[0] for p in fake.paths] == [
        *["/api/2.0/mlflow/experiments/get-by-name"] * 4,
        "/api/2.0/mlflow/registered-models/get",
    ]
    assert "experiment_name=flops-alice-p1" in fake.paths[0]


def test_a_login_never_made_fails_with_the_cause(serve: list[_Mlflow]) -> None:
    fake = _start(serve, ready_after=10**6)
    with pytest.raises(RuntimeError, match=r"refused the project's login for 0 s \(HTTP 401 on .*get-by-name\)"):
        wait_for_access(_environ(fake.url, model=None), timeout_s=0.2, poll_s=0.01)


def test_other_answers_are_left_to_mlflow_to_report(serve: list[_Mlflow]) -> None:
    fake = _start(serve, ready_after=0, final=500)
    wait_for_access(_environ(fake.url), timeout_s=5, poll_s=0.01)
    assert len(fake.paths) == 2
