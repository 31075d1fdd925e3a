"""Import the first N+1 layers of the serving path and print this process's RSS in KiB.

    .venv/bin/python -m bench.image_like bench.import_rss N

Run by bench/footprint.py, one fresh interpreter per N, to say what each layer adds. The last
layers are what ``metaray serve`` imports only once a request needs it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

STAGES: list[tuple[str, list[str]]] = [
    ("the interpreter", []),
    ("asyncio and ssl (the event loop; OpenSSL's libraries)", ["asyncio", "ssl", "hashlib"]),
    (
        "uvicorn's server without its command line (h11, logging config)",
        [
            "app.faces.uvicorn_server",
            "uvicorn.protocols.http.h11_impl",
            "uvicorn.lifespan.on",
            "uvicorn.loops.asyncio",
        ],
    ),
    ("pydantic and pydantic-core", ["pydantic"]),
    (
        "FastAPI and Starlette (and OpenTelemetry's API, for FastAPI's telemetry)",
        ["fastapi"],
    ),
    (
        "prometheus_client and its FastAPI instrumentator, orjson, msgspec, xxhash",
        ["prometheus_client", "prometheus_fastapi_instrumentator", "orjson", "msgspec", "xxhash"],
    ),
    ("metaray's serving path, the app built (`metaray serve` at rest)", ["app.faces.cli"]),
    (
        "the four cores and their pydantic spec models (first sync of each)",
        ["app.raycluster.sync", "app.rayjob.sync", "app.rayservice.sync", "app.raycronjob.sync"],
    ),
    ("httpx (first Event, RayJob deletion or dashboard poll)", ["httpx"]),
]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main(last: int) -> None:
    for _name, modules in STAGES[: last + 1]:
        for module in modules:
            importlib.import_module(module)
        if modules == ["app.faces.cli"]:
            from app.shell.http.app import create_app

            create_app()
    print(rss_kib())


if __name__ == "__main__":
    main(int(sys.argv[1]))
