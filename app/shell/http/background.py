"""The shell's background services, built from the settings and run for the app's lifetime:
the Event sink, the RayJob janitor and the head labeler (in a cluster only), the Ray job poller
and the Serve poller (unless METARAY_DASHBOARD=off)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI

from app.shell.http.answers import Clock
from app.shell.kube import api as kube_api
from app.shell.kube.events import EventSink
from app.shell.kube.janitor import Janitor
from app.shell.kube.pod_labels import HeadLabeler
from app.shell.observability.metrics import DashboardMetrics, Metrics
from app.shell.ray.poller import Dashboards
from app.shell.ray.serve import ServeDashboards
from app.shell.settings import Settings

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)


def event_sink(
    settings: Settings,
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
) -> EventSink | None:
    api = kube_api.events_api(settings)
    if api is None:
        return None
    return EventSink(
        lambda: kube_api.client(api, transport),
        metrics,
        instance=settings.pod_name,
        queue_size=settings.events_queue_size,
        clock=clock,
    )


def janitor(
    settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None
) -> Janitor | None:
    """Deletes RayJobs for DeleteSelf, with the hook's ServiceAccount; None outside a cluster."""
    api = kube_api.in_cluster_api(settings)
    if api is None:
        return None
    return Janitor(
        lambda: kube_api.client(api, transport), metrics, queue_size=settings.events_queue_size
    )


def head_labeler(
    settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None
) -> HeadLabeler | None:
    """Sets the ray.io/serve label of RayService heads, with the hook's ServiceAccount; None
    outside a cluster."""
    api = kube_api.in_cluster_api(settings)
    if api is None:
        return None
    return HeadLabeler(
        lambda: kube_api.client(api, transport), metrics, queue_size=settings.events_queue_size
    )


def dashboards(
    settings: Settings,
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
) -> Dashboards | None:
    """Polls the Ray dashboards of running RayJobs; None with METARAY_DASHBOARD=off."""
    if not settings.dashboard:
        return None
    return Dashboards(
        clock=clock,
        transport=transport,
        interval=settings.dashboard_interval_seconds,
        timeout=settings.dashboard_timeout_seconds,
        metrics=DashboardMetrics(metrics.registry),
    )


def serve(
    settings: Settings, transport: httpx.AsyncBaseTransport | None, clock: Clock
) -> ServeDashboards | None:
    """Reads RayService clusters' Serve applications; None with METARAY_DASHBOARD=off."""
    if not settings.dashboard:
        return None
    return ServeDashboards(
        clock=clock,
        transport=transport,
        interval=settings.dashboard_interval_seconds,
        timeout=settings.dashboard_timeout_seconds,
    )


class Background(Protocol):
    """A task that runs beside the hooks for the app's lifetime."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def lifespan(
    *services: Background | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    running = [service for service in services if service is not None]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for service in running:
            service.start()
        try:
            yield
        finally:
            for service in running:
                await service.stop()

    return lifespan
