"""Peak RSS of the real server after 500 syncs of a 1,000-pod request, and its growth between
sync 250 and sync 500. Every request differs (a new resourceVersion of the parent), so none is
answered from the cache of identical requests: each is decoded and computed.

    .venv/bin/python -m bench.memory [syncs] [pods]
"""

from __future__ import annotations

import asyncio
import sys

from bench.client import exchange, request_bytes
from bench.requests import request
from bench.server import rss_kib, uvicorn

PARENT_VERSION = b'"resourceVersion":"1000"'


async def _send(port: int, body: bytes, first: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**26)
    try:
        for serial in range(first, first + count):
            version = f'"resourceVersion":"{1_000_000 + serial}"'.encode()
            payload = request_bytes(port, "/sync", body.replace(PARENT_VERSION, version, 1))
            status = await exchange(reader, writer, payload)
            assert status == 200, status
    finally:
        writer.close()


def main(syncs: int, pods: int) -> None:
    body = request(pods)
    with uvicorn("app.shell.http.app:create_app", factory=True) as (port, pid):
        start = rss_kib(pid)
        asyncio.run(_send(port, body, 0, syncs // 2))
        middle = rss_kib(pid)
        asyncio.run(_send(port, body, syncs // 2, syncs - syncs // 2))
        end, peak = rss_kib(pid), rss_kib(pid, "VmHWM")
    print(f"{syncs} syncs of a {pods}-pod request ({len(body) / 1e6:.1f} MB)")
    print(
        f"RSS at start {start / 1024:.0f} MiB, after {syncs // 2}: {middle / 1024:.0f} MiB, "
        f"after {syncs}: {end / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB"
    )
    print(f"growth from sync {syncs // 2} to {syncs}: {100 * (end - middle) / middle:.1f} %")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [500, 1000][len(args) :]))
