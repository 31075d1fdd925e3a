"""Soak: drive the real server over loopback with mixed cluster sizes for minutes.

    .venv/bin/python -m bench.soak [seconds]

Five connections (Metacontroller's default --workers) each send, in turn, requests for a
5-, 50- and 500-pod cluster. Prints errors, p50/p99 latency per size, and the server's RSS
every 10 s; RSS must be flat after warm-up (the first quarter of the run).
"""

from __future__ import annotations

import asyncio
import sys
import time

from bench.client import exchange, request_bytes
from bench.requests import request
from bench.server import rss_kib, uvicorn

SIZES = (5, 50, 500)
CONNECTIONS = 5


async def _worker(
    port: int,
    payloads: dict[int, bytes],
    stop: float,
    out: dict[int, list[float]],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**26)
    try:
        while time.monotonic() < stop:
            for size, payload in payloads.items():
                start = time.perf_counter()
                status = await exchange(reader, writer, payload)
                out[size].append(time.perf_counter() - start)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def _sample(pid: int, stop: float, samples: list[tuple[float, int]]) -> None:
    began = time.monotonic()
    while time.monotonic() < stop:
        samples.append((time.monotonic() - began, rss_kib(pid)))
        await asyncio.sleep(10)
    samples.append((time.monotonic() - began, rss_kib(pid)))


async def _soak(
    port: int, pid: int, seconds: float
) -> tuple[dict[int, list[float]], list[int], list[tuple[float, int]]]:
    payloads = {size: request_bytes(port, "/sync", request(size)) for size in SIZES}
    out: dict[int, list[float]] = {size: [] for size in SIZES}
    errors: list[int] = []
    samples: list[tuple[float, int]] = []
    stop = time.monotonic() + seconds
    await asyncio.gather(
        _sample(pid, stop, samples),
        *(_worker(port, payloads, stop, out, errors) for _ in range(CONNECTIONS)),
    )
    return out, errors, samples


def _ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return 1e3 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(seconds: float) -> None:
    with uvicorn("app.shell.http.app:create_app", factory=True) as (port, pid):
        out, errors, samples = asyncio.run(_soak(port, pid, seconds))
    total = sum(len(v) for v in out.values())
    print(f"soak: {seconds:.0f} s, {CONNECTIONS} connections, {total} syncs, {len(errors)} errors")
    for size in SIZES:
        print(
            f"  {size:>4} pods: {len(out[size]):>6} syncs, p50 {_ms(out[size], 0.5):7.2f} ms, "
            f"p99 {_ms(out[size], 0.99):7.2f} ms"
        )
    print("  RSS (MiB) every 10 s: " + " ".join(f"{kib / 1024:.0f}" for _, kib in samples))
    warm = next(kib for at, kib in samples if at >= seconds / 4)
    end = samples[-1][1]
    print(
        f"  RSS after warm-up {warm / 1024:.0f} MiB, at the end {end / 1024:.0f} MiB "
        f"({100 * (end - warm) / warm:+.1f} %)"
    )


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 180.0)
