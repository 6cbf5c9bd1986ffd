"""The ASGI application (API and web pages) and the server that runs it.

`create_app` wires a `Registry` into Starlette; `serve` runs it with uvicorn after
re-queueing scans that a previous process did not finish (a crash or a kill during a
push leaves only versions that are not yet downloadable, and their jobs run again) and
queueing a garbage collection of what never-committed pushes left behind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from modelward.registry.api import api_routes, error_response
from modelward.registry.service import Registry
from modelward.registry.web import web_routes

__all__ = ["create_app", "serve"]

log = logging.getLogger("modelward.registry")


def create_app(registry: Registry, *, resume: bool = True) -> Starlette:
    """The Starlette app serving `registry`.

    Args:
        registry: the registry (its storage and workers).
        resume: queue interrupted scans and a garbage collection at start-up.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if resume:
            count = registry.resume_pending()
            if count:
                log.warning("re-queued %d interrupted scan(s)", count)
            registry.start_gc()
        yield

    async def on_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    app = Starlette(routes=[*api_routes(), *web_routes()], lifespan=lifespan,
                    exception_handlers={HTTPException: on_error, Exception: on_error})
    app.state.registry = registry
    return app


def serve(registry: Registry, host: str = "127.0.0.1", port: int = 8750) -> None:
    """Run the registry until interrupted."""
    import uvicorn

    config = uvicorn.Config(create_app(registry), host=host, port=port, log_level="info",
                            limit_concurrency=256, timeout_keep_alive=5, server_header=False)
    try:
        uvicorn.Server(config).run()
    finally:
        registry.close()
