"""HTTP throughput and latency of POST /sync on a real uvicorn server over loopback, for a
5-pod cluster, beside a minimal FastAPI endpoint that only reads the body (same client, same run).

    .venv/bin/python -m bench.http [seconds]
"""

from __future__ import annotations

import sys

from bench.client import Result, load
from bench.requests import request
from bench.server import uvicorn

CONNECTIONS = 5  # Metacontroller's default --workers


def measure(app: str, factory: bool, body: bytes, seconds: float) -> Result:
    with uvicorn(app, factory=factory) as (port, _pid):
        load(port, "/sync", body, 1.0, CONNECTIONS)  # warm-up
        return load(port, "/sync", body, seconds, CONNECTIONS)


def main(seconds: float) -> None:
    body = request(5)
    baseline = measure("bench.minimal:app", False, body, seconds)
    ours = measure("app.main:create_app", True, body, seconds)
    print(f"5-pod sync request, {len(body)} bytes, {CONNECTIONS} connections, {seconds:.0f} s each")
    print(f"{'server':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, result in (("minimal", baseline), ("metaray", ours)):
        print(
            f"{name:<10} {result.rate:>8.0f} {result.percentile(0.5) * 1e3:>8.2f} "
            f"{result.percentile(0.99) * 1e3:>8.2f} {result.errors:>7}"
        )
    print(f"throughput ratio metaray/minimal: {ours.rate / baseline.rate:.2f}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
