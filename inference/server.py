"""Serve a model with MLflow's own scoring server (``mlflow.pyfunc.scoring_server``) under uvicorn.

The protocol is MLflow's: ``POST /invocations`` with CSV or JSON (``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``), answered with ``{"predictions": [...]}``;
``GET /ping`` and ``/health`` for liveness. Once uvicorn listens, INFERENCE_READY is published
with the address and the seconds from start to ready; a model that does not load or a port that
is taken publishes INFERENCE_FAILED and exits 1.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flops_common.events import Event, EventKind, Source
from flops_common.jobs import BusConfig
from flops_common.mqtt import EventPublisher
from flops_common.serving import InferenceJob
from flops_common.stages import Stage

log = logging.getLogger("inference")
READY_WAIT_S = 120.0


def load(model_dir: str) -> Any:
    """The model as an MLflow pyfunc (what the scoring server calls)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_dir)


def publish(bus: BusConfig, project_id: str, kind: EventKind, message: str, **data: Any) -> None:
    """One event of the inference service; a broker that is down is logged, never raised."""
    event = Event(
        project_id=project_id,
        source=Source.INFERENCE,
        kind=kind,
        stage=Stage.POST_TRAINING,
        message=message,
        data=data,
    )
    try:
        with EventPublisher(bus) as publisher:
            publisher.connect()
            publisher.publish(event)
    except Exception as exc:
        log.warning("could not publish %s: %s", kind.value, exc)


def serve(job: InferenceJob) -> int:
    """Load the model, listen on ``job.host:job.port``, report readiness; returns when stopped."""
    import uvicorn
    from mlflow.pyfunc import scoring_server

    started = time.monotonic()
    try:
        app = scoring_server.init(load(job.model_dir))
    except Exception as exc:
        cause = f"the model does not load for serving: {type(exc).__name__}: {exc}"
        log.error("%s", cause)
        publish(job.bus, job.project_id, EventKind.INFERENCE_FAILED, cause)
        return 1
    server = uvicorn.Server(uvicorn.Config(app, host=job.host, port=job.port, log_level="warning", access_log=False))
    url = f"http://{job.host}:{job.port}"

    def announce() -> None:
        deadline = time.monotonic() + READY_WAIT_S
        while not server.started and not server.should_exit and time.monotonic() < deadline:
            time.sleep(0.02)
        if server.started:
            seconds = round(time.monotonic() - started, 3)
            log.info("serving on %s (ready after %.2f s)", url, seconds)
            publish(
                job.bus,
                job.project_id,
                EventKind.INFERENCE_READY,
                f"inference service answering on {url}",
                url=url,
                seconds=seconds,
            )

    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run()  # handles SIGTERM/SIGINT itself: a clean shutdown
    if not server.started:
        cause = f"the scoring server could not listen on {job.host}:{job.port}"
        publish(job.bus, job.project_id, EventKind.INFERENCE_FAILED, cause)
        return 1
    return 0
