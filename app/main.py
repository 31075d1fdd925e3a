"""The HTTP shell: Metacontroller's sync hook, health probes and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_fastapi_instrumentator import Instrumentator

from app import __version__
from app.hooks.request import BadRequest, decode
from app.hooks.response import encode
from app.raycluster.cluster import Options
from app.raycluster.observed import Observed
from app.raycluster.sync import Desired, finalize, sync
from app.settings import Settings

log = logging.getLogger("metaray")
Decide = Callable[[dict[str, Any], Observed, Options], Desired]
JSON = "application/json"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    options = settings.options
    app = FastAPI(title="metaray", version=__version__, docs_url=None, redoc_url=None)

    async def answer(request: Request, decide: Decide) -> Response:
        body = await request.body()
        try:
            hook_request = decode(body)
        except BadRequest as error:
            return _error(400, str(error))
        try:
            payload = encode(decide(hook_request.parent, hook_request.observed, options))
        except Exception as error:
            # A 5xx makes Metacontroller keep every child and the status as they are.
            log.exception("internal error in %s", request.url.path)
            return _error(500, f"internal error: {type(error).__name__}")
        return Response(payload, media_type=JSON)

    @app.post("/sync")
    async def sync_hook(request: Request) -> Response:
        """Metacontroller's sync hook: the RayCluster's desired children and status."""
        return await answer(request, sync)

    @app.post("/finalize")
    async def finalize_hook(request: Request) -> Response:
        """Metacontroller's finalize hook: a RayCluster is being deleted."""
        return await answer(request, finalize)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    Instrumentator().instrument(app).expose(app, include_in_schema=False)
    return app


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type=JSON)
