"""A synchronous face over httpx's in-process ASGI transport, for tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI


class HookClient:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.request("POST", path, content=content, headers=headers)
