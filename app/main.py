"""The HTTP shell: Metacontroller's sync hook, health probes and metrics."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_fastapi_instrumentator import Instrumentator

from app import __version__
from app.hooks.request import BadRequest, decode
from app.hooks.response import encode
from app.raycluster.sync import sync
from app.settings import Settings

log = logging.getLogger("metaray")
JSON = "application/json"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    options = settings.options
    app = FastAPI(title="metaray", version=__version__, docs_url=None, redoc_url=None)

    @app.post("/sync")
    async def sync_hook(request: Request) -> Response:
        """Metacontroller's sync hook: the RayCluster's desired children and status."""
        body = await request.body()
        try:
            hook_request = decode(body)
        except BadRequest as error:
            return _error(400, str(error))
        try:
            payload = encode(sync(hook_request.parent, hook_request.observed, options))
        except Exception as error:
            # A 5xx makes Metacontroller keep every child and the status as they are.
            log.exception("internal error in /sync")
            return _error(500, f"internal error: {type(error).__name__}")
        return Response(payload, media_type=JSON)

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
