"""What idle RayClusters cost the hook: CPU seconds per cluster per hour, and RSS, on a real
server resynced as Metacontroller resyncs it, at today's 60 s period against the shipped one.

    .venv/bin/python -m bench.idle [clusters] [pods] [idle_seconds]

An idle cluster costs the hook one sync per ``resyncPeriodSeconds`` and nothing else. The clock
is compressed: for each period, the requests an hour would bring (``clusters * 3600 / period``)
are sent back to back over 5 keep-alive connections (Metacontroller's default ``--workers``),
each cluster once per round as a resync sweep does, and the server's CPU time is read from
/proc before and after. The server runs as the image runs it (``metaray serve``). Its
background work (timers, pollers) does not compress: it is measured alone over
``idle_seconds`` with no request at all, and scaled to an hour.

Every cluster has its own name and uid and a steady request: its pods Running and the parent's
status the one the hook answers (as after Metacontroller wrote it), so a resync changes nothing.
Not part of the test suite; the figures go to docs/operations.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import orjson

from bench.client import exchange, request_bytes
from bench.requests import UID, request
from bench.server import ROOT, metaray, rss_kib

TODAY_SECONDS = 60  # the resyncPeriodSeconds metaray shipped before issue 19
CONNECTIONS = 5  # Metacontroller's default --workers
HOUR = 3600.0
NAME = b"raycluster-bench"
REGISTRATION = ROOT / "metacontroller" / "compositecontroller.yaml"


def shipped_period(path: Path = REGISTRATION) -> int:
    """The RayCluster registration's resyncPeriodSeconds."""
    found = re.search(r"^\s*resyncPeriodSeconds:\s*(\d+)", path.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no resyncPeriodSeconds in {path}")
    return int(found.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process, every thread included (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady(body: bytes, answer: bytes) -> bytes:
    """``body`` with the parent's status set to the hook's answer, as Metacontroller writes it."""
    template = orjson.loads(body)
    template["parent"]["status"] = orjson.loads(answer)["status"]
    return orjson.dumps(template)


def cluster_bodies(clusters: int, pods: int) -> list[bytes]:
    """One request per cluster: the same shape, each its own name and uid."""
    base = request(pods)
    out = []
    for index in range(clusters):
        uid = f"{UID[:-4]}{index:04d}".encode()
        out.append(base.replace(UID.encode(), uid).replace(NAME, NAME + b"-%03d" % index))
    return out


async def _sweep(port: int, payloads: list[bytes], rounds: int) -> None:
    """``rounds`` resync sweeps: every cluster once per round, ``CONNECTIONS`` at a time."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for _ in range(rounds):
        for payload in payloads:
            queue.put_nowait(payload)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**26)
        try:
            while not queue.empty():
                status = await exchange(reader, writer, queue.get_nowait())
                if status != 200:
                    raise RuntimeError(f"sync answered {status}")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))


async def _answers(port: int, bodies: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**26)
    out = []
    try:
        for body in bodies:
            writer.write(request_bytes(port, "/sync", body))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            out.append(await reader.readexactly(length))
    finally:
        writer.close()
    return out


def main(clusters: int = 20, pods: int = 11, idle_seconds: float = 60.0) -> None:
    shipped = shipped_period()
    raw = cluster_bodies(clusters, pods)
    print(
        f"{clusters} idle clusters of {pods} Running pods ({len(raw[0]) / 1e3:.0f} KB per sync), "
        f"{CONNECTIONS} connections; resync {TODAY_SECONDS} s (today) against {shipped} s (shipped)"
    )
    with metaray(image_like=True) as (port, pid):
        time.sleep(1.0)  # let start-up settle before reading the idle RSS
        rss_start = rss_kib(pid)
        bodies = [steady(b, a) for b, a in zip(raw, asyncio.run(_answers(port, raw)), strict=True)]
        payloads = [request_bytes(port, "/sync", body) for body in bodies]
        asyncio.run(_sweep(port, payloads, 2))  # warm-up: the steady requests' first answers
        before = cpu_seconds(pid)
        time.sleep(idle_seconds)
        idle = (cpu_seconds(pid) - before) / idle_seconds * HOUR  # CPU s per hour, no request
        print(f"server start: RSS {rss_start / 1024:.1f} MiB")
        print(
            f"idle server (no request, no scrape) over {idle_seconds:.0f} s: "
            f"{idle:.2f} CPU s per hour"
        )
        results = {}
        for period in (TODAY_SECONDS, shipped):
            rounds = max(1, round(HOUR / period))
            before = cpu_seconds(pid)
            asyncio.run(_sweep(port, payloads, rounds))
            spent = cpu_seconds(pid) - before
            per_cluster = (spent + idle) / clusters
            results[period] = per_cluster
            print(
                f"resync {period:>5} s: {rounds * clusters:>6} syncs an hour, "
                f"{spent / (rounds * clusters) * 1e3:6.2f} ms CPU per sync, "
                f"{per_cluster:7.3f} CPU s per cluster per hour "
                f"(background {idle / clusters:.3f}); RSS {rss_kib(pid) / 1024:.1f} MiB"
            )
        print(
            f"ratio {TODAY_SECONDS} s / {shipped} s: "
            f"{results[TODAY_SECONDS] / results[shipped]:.1f}x less hook CPU per idle cluster"
        )
        end, peak = rss_kib(pid) / 1024, rss_kib(pid, "VmHWM") / 1024
        print(f"RSS at the end {end:.1f} MiB, peak {peak:.1f} MiB")


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:]]
    defaults = [20.0, 11.0, 60.0]
    values = args + defaults[len(args) :]
    main(int(values[0]), int(values[1]), values[2])
