"""``python -m inference``: serve the model of the InferenceJob in ``FLOPS_JOB``.

``python -m inference --check MODEL_DIR`` only loads the model (the serving build's last check).
"""

from __future__ import annotations

import logging
import sys

from flops_common.jobs import JOB_ENV, load_job
from flops_common.serving import InferenceJob
from inference.server import load, serve

log = logging.getLogger("inference")


def main(argv: list[str]) -> int:
    """Serve, or check that a model loads; the exit code tells the outcome."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv[:1] == ["--check"] and len(argv) == 2:
        # The server's modules too: their bytecode is then written once, at build time.
        import uvicorn  # noqa: F401
        from mlflow.pyfunc import scoring_server  # noqa: F401

        model = load(argv[1])
        print(f"loaded {type(model).__name__} of flavor {model.loader_module}")
        return 0
    try:
        job = load_job(InferenceJob)
    except Exception as exc:
        log.error("no valid inference job in %s: %s", JOB_ENV, exc)
        return 1
    return serve(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
