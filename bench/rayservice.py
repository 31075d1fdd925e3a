"""What a RayService costs: (1) one RayService sync against the RayCluster sync of its cluster,
in process (decode + core + encode, the cyclic GC paused, as the service does), target <= 1.2x;
(2) RayService sync latency over HTTP with the Serve poller on and every dashboard hanging 5 s,
against the poller off, target: p99 moved <= 25 %.

    .venv/bin/python -m bench.rayservice [WORKERS] [seconds] [rayservices]

(1) The RayService request is a steady state of the in-memory Metacontroller of
tests/rayservice/loop.py: the cluster active and serving, its RayCluster (status included) and
both Services as children, its head Service and a serve EndpointSlice listing every worker and
the head as related objects, and the poller's view that every application runs. The RayCluster
request is ``bench.requests``' for the same number of Running pods. (2) is bench/dashboard.py's
set-up with RayServices: a real uvicorn server, 5 connections, the dashboard client pointed at
one dashboard on loopback that answers after 5 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime
from typing import Any

import orjson

from app.hooks.request import decode
from app.hooks.response import encode
from app.rayservice import sync as rayservice
from app.shell.http.answers import paused_gc
from bench.client import load
from bench.dashboard import CONNECTIONS, HANG_SECONDS, hanging_dashboard
from bench.dashboard_app import DASHBOARD_ENV
from bench.rayjob import CLUSTER_OPTIONS, cluster_request, one_cluster_sync
from bench.server import uvicorn
from tests.loop import cluster_spec, group
from tests.rayservice.loop import SLICE, ServiceLoop, rayservice_object

TARGET, P99_TARGET = 1.2, 1.25
ROUNDS = 201
OPTIONS = rayservice.Options(cluster=CLUSTER_OPTIONS)


def serving(name: str, uid: str, workers: int) -> ServiceLoop:
    spec = cluster_spec(group(replicas=workers, maximum=max(workers, 10)))
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["ports"] = [*head["ports"], {"containerPort": 8000, "name": "serve"}]
    loop = ServiceLoop(rayservice_object(name=name, uid=uid, rayClusterConfig=spec))
    loop.until(lambda s: s.active is not None)
    loop.run(2)
    return loop


def service_request(workers: int) -> tuple[bytes, Any]:
    """A steady RayService request at ``workers`` workers, and the views the shell passes."""
    loop = serving("svc", "uid-rs-1", workers)
    body = loop.request()
    endpoints = [
        {
            "addresses": [f"10.0.{i // 250}.{i % 250}"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {"kind": "Pod", "name": f"w-{i}", "namespace": "default", "uid": f"p{i}"},
        }
        for i in range(workers + 1)
    ]
    for obj in body["related"][SLICE].values():
        obj["endpoints"] = endpoints
    views = loop.views(body)
    raw = orjson.dumps(body)
    decoded = decode(raw, related=True, raycluster=False)
    first = rayservice.sync(
        decoded.parent, decoded.observed, decoded.related, loop.now, OPTIONS, views
    )
    assert not first.intents, "not a steady state"
    return raw, (loop.now, views)


def one_service_sync(body: bytes, now: datetime, views: Any) -> bytes:
    with paused_gc():
        hook = decode(body, related=True, raycluster=False)
        return encode(
            rayservice.sync(hook.parent, hook.observed, hook.related, now, OPTIONS, views)
        )


def in_process(workers: int) -> None:
    cluster = cluster_request(workers)
    service, (now, views) = service_request(workers)
    ratios, a, b = [], [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        one_cluster_sync(cluster)
        middle = time.perf_counter()
        one_service_sync(service, now, views)
        end = time.perf_counter()
        a.append(middle - start)
        b.append(end - middle)
        ratios.append((end - middle) / (middle - start))
    ratio = statistics.median(ratios)
    print(
        f"{workers} workers: (a) RayCluster sync {statistics.median(a) * 1e3:.2f} ms "
        f"({len(cluster) / 1e3:.0f} KB), (b) RayService sync {statistics.median(b) * 1e3:.2f} ms "
        f"({len(service) / 1e3:.0f} KB); b/a {ratio:.2f} (target <= {TARGET}: "
        f"{'ok' if ratio <= TARGET else 'OVER'})"
    )


def hanging(seconds: float, count: int) -> None:
    bodies = [orjson.dumps(serving(f"svc-{i}", f"uid-svc-{i}", 1).request()) for i in range(count)]
    with hanging_dashboard() as (address, handler):
        print(
            f"{count} serving RayServices, {CONNECTIONS} connections, {seconds:.0f} s each; "
            f"their dashboards answer after {HANG_SECONDS:.0f} s"
        )
        p99 = {}
        for poller in (False, True):
            before = handler.asked
            env = {"METARAY_DASHBOARD": "on" if poller else "off", DASHBOARD_ENV: address}
            with uvicorn("bench.dashboard_app:create", factory=True, env=env) as (port, _pid):
                load(port, "/rayservice/sync", bodies, 1.0, CONNECTIONS)  # the poller starts
                result = load(port, "/rayservice/sync", bodies, seconds, CONNECTIONS)
            p99[poller] = result.percentile(0.99)
            print(
                f"poller {'on ' if poller else 'off'}: {result.rate:.0f} req/s, p50 "
                f"{result.percentile(0.5) * 1e3:.2f} ms, p99 {p99[poller] * 1e3:.2f} ms, "
                f"{result.errors} errors, dashboards asked {handler.asked - before}"
            )
    ratio = p99[True] / p99[False]
    print(
        f"sync p99, poller on / off: {ratio:.2f} (target <= {P99_TARGET}: "
        f"{'ok' if ratio <= P99_TARGET else 'OVER'})"
    )


def main(workers: int, seconds: float, count: int) -> None:
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    in_process(workers)
    hanging(seconds, count)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if args else 100,
        float(args[1]) if len(args) > 1 else 15.0,
        int(args[2]) if len(args) > 2 else 100,
    )
