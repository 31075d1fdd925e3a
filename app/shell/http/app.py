"""The HTTP shell, wired: Metacontroller's sync, finalize and customize hooks of the four
controllers (``routes.py``), health probes and metrics, behind the guard; the background
services (``background.py``) run for the app's lifetime. How a request becomes an answer, and
what is sent after it, is ``answers.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_fastapi_instrumentator import Instrumentator

from app import __version__
from app.shell.http import background
from app.shell.http.answers import JSON, Clock, Hooks
from app.shell.http.guard import Guard
from app.shell.http.routes import add_hook_routes
from app.shell.observability import logs
from app.shell.observability.metrics import HTTP_SECONDS, Metrics
from app.shell.settings import Settings

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

OK = b'{"status":"ok"}'


def probe_schema(name: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI of a probe's answer, as FastAPI documented ``dict[str, str]``."""
    title = f"Response {name} {name} Get"
    schema = {"additionalProperties": {"type": "string"}, "type": "object", "title": title}
    return {200: {"content": {JSON: {"schema": schema}}}}


def create_app(
    settings: Settings | None = None,
    *,
    kube_transport: httpx.AsyncBaseTransport | None = None,
    dashboard_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The app; ``kube_transport``, ``dashboard_transport`` and ``clock`` replace the API
    server, the Ray dashboards and the time in tests."""
    settings = settings or Settings.from_env()
    if not logs.configured():
        logs.configure(settings.log_level)
    now = clock or (lambda: datetime.now(UTC))
    metrics = Metrics(
        horizon_seconds=settings.gauge_horizon_seconds,
        directory=settings.metrics_dir,
        clock=lambda: now().timestamp(),
    )
    events = background.event_sink(settings, metrics, kube_transport, now)
    janitor = background.janitor(settings, metrics, kube_transport)
    dashboards = background.dashboards(settings, metrics, dashboard_transport, now)
    serve = background.serve(settings, dashboard_transport, now)
    labeler = background.head_labeler(settings, metrics, kube_transport)
    hooks = Hooks(settings, metrics, events, now, janitor, dashboards, serve, labeler)

    app = FastAPI(
        title="metaray",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=background.lifespan(events, janitor, dashboards, serve, labeler),
    )
    app.state.dashboards = dashboards  # for tests: step the poller by hand
    app.state.serve = serve
    app.state.labeler = labeler

    add_hook_routes(app, hooks, settings, dashboards, serve)

    # The probes answer constant bytes, with no response model: FastAPI would encode each
    # answer, and building a response model imports pydantic.v1 (~1 MiB, for a compatibility
    # check). The OpenAPI document describes their body as before.
    @app.get("/healthz", responses=probe_schema("Healthz"))
    async def healthz() -> Response:
        return Response(OK, media_type=JSON)

    @app.get("/readyz", responses=probe_schema("Readyz"))
    async def readyz() -> Response:
        return Response(OK, media_type=JSON)

    # async: it runs on the event loop, like the hooks that update the per-cluster table.
    @app.get("/metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    Instrumentator(registry=metrics.registry).instrument(app, latency_lowr_buckets=HTTP_SECONDS)
    app.add_middleware(
        Guard,
        token=settings.auth_token,
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight,
    )
    return app
