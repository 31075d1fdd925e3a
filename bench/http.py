"""HTTP throughput and latency of POST /sync on a real uvicorn server over loopback, for a
5-pod cluster, beside a minimal FastAPI endpoint that only reads the body (same client, same run).

    .venv/bin/python -m bench.http [seconds]

Two workloads: "repeated", the same request again and again, as Metacontroller's resyncs of an
unchanged cluster send it (metaray answers from its cache of identical requests); and
"distinct", every request different (a new resourceVersion each time), so every answer is
decoded and computed.
"""

from __future__ import annotations

import sys

import orjson

from bench.client import Result, load
from bench.requests import request
from bench.server import uvicorn

CONNECTIONS = 5  # Metacontroller's default --workers
DISTINCT = 6000  # more answers than the cache holds: every request is a miss


def variants(body: bytes, count: int) -> list[bytes]:
    template = orjson.loads(body)
    out = []
    for version in range(count):
        template["parent"]["metadata"]["resourceVersion"] = str(100000 + version)
        out.append(orjson.dumps(template))
    return out


def measure(app: str, factory: bool, bodies: list[bytes], seconds: float) -> Result:
    with uvicorn(app, factory=factory) as (port, _pid):
        load(port, "/sync", bodies, 1.0, CONNECTIONS)  # warm-up
        return load(port, "/sync", bodies, seconds, CONNECTIONS)


def main(seconds: float) -> None:
    body = request(5)
    print(f"5-pod sync request, {len(body)} bytes, {CONNECTIONS} connections, {seconds:.0f} s each")
    print(f"{'workload':<10} {'server':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for workload, bodies in (("repeated", [body]), ("distinct", variants(body, DISTINCT))):
        baseline = measure("bench.minimal:app", False, bodies, seconds)
        ours = measure("app.shell.http.app:create_app", True, bodies, seconds)
        for name, result in (("minimal", baseline), ("metaray", ours)):
            print(
                f"{workload:<10} {name:<9} {result.rate:>8.0f} "
                f"{result.percentile(0.5) * 1e3:>8.2f} {result.percentile(0.99) * 1e3:>8.2f} "
                f"{result.errors:>7}"
            )
        print(f"{workload:<10} throughput ratio metaray/minimal: {ours.rate / baseline.rate:.2f}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
