"""Metacontroller's hooks as routes: each hands its controller's core the decoded request and
the shell's inputs (the time, entropy, the pollers' latest views) through ``Hooks.answer``.

Each route imports its core on its first request, not at start-up: the four cores and their
pydantic spec models cost ~4 MiB of a hook that may never see a RayService or a RayCronJob
(docs/operations.md, "The hook's memory"). Later requests find them in ``sys.modules``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from app.hooks.request import BadRequest, SyncRequest, decode_customize
from app.rayjob.dashboard import DashboardView
from app.rayservice.options import Options as ServiceOptions
from app.rayservice.proxy import ProxyView
from app.rayservice.serve import ServeView
from app.shell.http.answers import JSON, Hooks, error_response
from app.shell.ray.poller import Dashboards
from app.shell.ray.serve import ServeDashboards
from app.shell.settings import Settings


def add_hook_routes(
    app: FastAPI,
    hooks: Hooks,
    settings: Settings,
    dashboards: Dashboards | None,
    serve: ServeDashboards | None,
) -> None:
    cluster_options, job_options = settings.options, settings.rayjob_options
    service_options = ServiceOptions(
        cluster=cluster_options,
        poll_seconds=max(settings.dashboard_interval_seconds, 2.0),
        gateway_api=settings.gateway_api,
    )

    def serve_views(request: SyncRequest) -> dict[str, ServeView]:
        """The Serve poller's latest views of this RayService's clusters (at the addresses the
        core derives from owned head Services); asks it to keep reading them."""
        if serve is None:
            return {}
        from app.rayservice import sync as rayservice

        targets = rayservice.watched(request.observed, request.related, service_options)
        return serve.views(targets.values())

    def proxy_views(request: SyncRequest) -> dict[str, ProxyView]:
        """The Serve poller's latest readings of this RayService's head proxies (each head
        pod's own IP), by pod uid; asks it to keep reading them."""
        if serve is None:
            return {}
        from app.rayservice import sync as rayservice

        heads = rayservice.watched_proxies(request.observed, request.related)
        return serve.proxies(heads.values())

    def view(request: SyncRequest) -> DashboardView | None:
        """The poller's latest word on this RayJob's Ray job; asks it to keep polling."""
        from app.rayjob.watch import watched

        target = watched(request.parent, request.observed, request.related, settings.cluster_domain)
        if dashboards is None or target is None:
            return None
        dashboards.watch(*target)
        return dashboards.view(*target)

    @app.post("/sync")
    async def sync_hook(request: Request) -> Response:
        """Metacontroller's sync hook: the RayCluster's desired children and status."""
        from app.raycluster.sync import sync

        return await hooks.answer(
            request,
            "sync",
            lambda r, i: sync(r.parent, r.observed, cluster_options, entropy=i.entropy),
        )

    @app.post("/finalize")
    async def finalize_hook(request: Request) -> Response:
        """Metacontroller's finalize hook: a RayCluster is being deleted."""
        from app.raycluster.sync import finalize

        return await hooks.answer(
            request,
            "finalize",
            lambda r, i: finalize(r.parent, r.observed, cluster_options, entropy=i.entropy),
        )

    def rayjob_hook(hook: str, *, finalizing: bool) -> Callable[[Request], Any]:
        async def answer(request: Request) -> Response:
            if finalizing:
                from app.rayjob.finalize import finalize as core
            else:
                from app.rayjob.sync import sync as core
            return await hooks.answer(
                request,
                hook,
                lambda r, i: core(r.parent, r.observed, r.related, i.now, job_options, view(r)),
                # The answer depends on the clock and the dashboards, not only on the body.
                cache=False,
                related=True,
            )

        return answer

    # The RayJob controller's sync hook (its cluster, submitter, Service and status) and
    # finalize hook (a RayJob is being deleted).
    app.post("/rayjob/sync")(rayjob_hook("rayjob_sync", finalizing=False))
    app.post("/rayjob/finalize")(rayjob_hook("rayjob_finalize", finalizing=True))

    @app.post("/raycronjob/sync")
    async def raycronjob_sync_hook(request: Request) -> Response:
        """The RayCronJob controller's sync hook: its runs (RayJobs) and status, at the
        shell's time (no finalize hook: the runs go with their RayCronJob by ownerReference)."""
        from app.raycronjob import sync as raycronjob

        return await hooks.answer(
            request,
            "raycronjob_sync",
            lambda r, i: raycronjob.sync(r.parent, r.observed, i.now),
            cache=False,  # the answer depends on the clock, not only on the body
        )

    @app.post("/rayjob/customize")
    async def rayjob_customize_hook(request: Request) -> Response:
        """The RayJob controller's customize hook: which related objects its syncs need."""
        from app.rayjob.customize import customize

        try:
            parent = decode_customize(await request.body())
        except BadRequest as error:
            return error_response(400, str(error))
        return Response(orjson.dumps(customize(parent)), media_type=JSON)

    # The RayService controller's sync hook (its clusters, Services and status; Serve configs
    # applied through the dashboards after the answer) and customize hook.
    @app.post("/rayservice/sync")
    async def rayservice_sync_hook(request: Request) -> Response:
        from app.rayservice import sync as rayservice

        return await hooks.answer(
            request,
            "rayservice_sync",
            lambda r, i: rayservice.sync(
                r.parent,
                r.observed,
                r.related,
                i.now,
                service_options,
                serve_views(r),
                proxy_views(r),
            ),
            # The answer depends on the clock and Ray's view, not only on the body.
            cache=False,
            related=True,
        )

    @app.post("/rayservice/customize")
    async def rayservice_customize_hook(request: Request) -> Response:
        """Which related objects a RayService's syncs need (spec only: cached per generation)."""
        from app.rayservice import sync as rayservice

        try:
            parent = decode_customize(await request.body())
        except BadRequest as error:
            return error_response(400, str(error))
        return Response(orjson.dumps(rayservice.customize(parent)), media_type=JSON)
