"""The FastAPI application: routes under ``api/``, parts wired in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from flops_manager import components
from flops_manager.api import data, inference, platform, projects
from flops_manager.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The manager app; connects to the store and bus when it starts serving."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        parts = components.build(settings)
        parts.store.ensure_indexes()
        parts.engine.start()
        app.state.components = parts
        try:
            yield
        finally:
            parts.engine.stop()
            http = getattr(app.state, "inference_http", None)
            if http is not None:
                await http.aclose()

    app = FastAPI(
        title="FLOps manager",
        version="0.1.0",
        lifespan=lifespan,
        responses={400: {"description": "Malformed request (e.g. a body that is not JSON)"}},
    )
    app.include_router(platform.router)
    app.include_router(projects.router)
    app.include_router(data.router)
    app.include_router(inference.router)
    return app


def main() -> None:
    """Serve the manager with uvicorn on the configured host and port."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        access_log=settings.api_access_log,
        proxy_headers=False,  # served on its own address; X-Forwarded-* parsing costs every request
    )


if __name__ == "__main__":
    main()
