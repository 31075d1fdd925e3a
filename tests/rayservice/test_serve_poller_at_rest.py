"""The Serve poller sleeps while no RayService cluster is watched (issue 19: an idle hook spends
no CPU), and reads a cluster as soon as a sync asks it to watch one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from app.rayservice.serve import ServeTarget
from app.shell.ray.serve import ServeDashboards

APPS = {
    "applications": {
        "fruit": {"status": "RUNNING", "message": "", "deployments": {}},
    }
}


def test_the_serve_poller_sleeps_until_a_cluster_is_watched() -> None:
    looks = 0
    asked: list[str] = []

    def timer() -> float:
        nonlocal looks
        looks += 1
        return time.monotonic()

    def dashboard(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, json=APPS)

    async def main() -> None:
        serve = ServeDashboards(
            clock=lambda: datetime(2026, 12, 3, tzinfo=UTC),
            transport=httpx.MockTransport(dashboard),
            interval=0.01,
            timer=timer,
        )
        serve.start()
        await asyncio.sleep(0.3)  # 120 quarter intervals
        idle_looks = looks
        target = ServeTarget("rs-raycluster-abcde", "rs-raycluster-abcde-head-svc.ns.svc:8265")
        serve.watch(target)
        for _ in range(200):  # at most 2 s on a loaded machine; a few ms when idle
            await asyncio.sleep(0.01)
            view = serve.view(target.cluster, target.url)
            if view is not None and view.applications is not None:
                break
        await serve.stop()
        assert idle_looks <= 1, "the loop looked again with nothing to watch"
        assert view is not None and view.applications is not None
        assert [name for name, _ in view.applications] == ["fruit"]
        assert asked and all(path == "/api/serve/applications/" for path in asked)

    asyncio.run(main())
