"""metaray for ``bench.dashboard``: its Ray dashboard client sends every request to one
dashboard on loopback (``BENCH_DASHBOARD``, host:port) instead of each cluster's head Service,
which does not exist here. Everything else is the service as it runs."""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI

from app.shell.http.app import create_app

DASHBOARD_ENV = "BENCH_DASHBOARD"


class _ToOneDashboard(httpx.AsyncBaseTransport):
    def __init__(self, address: str) -> None:
        self.address = address
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, port = self.address.split(":")
        request.url = request.url.copy_with(host=host, port=int(port))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def create() -> FastAPI:
    return create_app(dashboard_transport=_ToOneDashboard(os.environ[DASHBOARD_ENV]))
