"""RayJob sync latency with the dashboard poller on and every Ray dashboard taking 5 s to
answer, against the same syncs with the poller off, in the same run.

    .venv/bin/python -m bench.dashboard [seconds] [rayjobs]

A real uvicorn server of metaray on loopback; 100 Running RayJobs (K8sJobMode), each with the
``status.dashboardURL`` of its own cluster; the server's dashboard client is pointed at one
dashboard on loopback (``bench/dashboard_app.py``) that answers every request after 5 s;
5 keep-alive connections (Metacontroller's default --workers) sync the RayJobs round-robin.
With the poller on, every RayJob is watched: the poller asks each dashboard every 3 s, 16
requests at a time, each given up after its 2 s timeout. The figure to read: the sync p99 with
the poller on over the p99 with it off.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.client import Result, load
from bench.dashboard_app import DASHBOARD_ENV
from bench.server import uvicorn
from tests.rayjob.loop import JobLoop, rayjob_object

CONNECTIONS = 5  # Metacontroller's default --workers
HANG_SECONDS = 5.0


class _Hanging(BaseHTTPRequestHandler):
    asked = 0

    def do_GET(self) -> None:
        type(self).asked += 1
        time.sleep(HANG_SECONDS)
        body = b'{"status": "RUNNING", "message": "", "start_time": 0}'
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the poller gave up and closed the connection

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def hanging_dashboard() -> Iterator[tuple[str, type[_Hanging]]]:
    """A Ray dashboard on loopback that answers after 5 s: yields its host:port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hanging)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Hanging
    finally:
        server.shutdown()
        server.server_close()


def running_requests(count: int) -> list[bytes]:
    """Sync requests of ``count`` Running RayJobs."""
    bodies = []
    for index in range(count):
        loop = JobLoop(rayjob_object(name=f"job-{index}", uid=f"uid-job-{index}"))
        for _ in range(6):
            loop.step()
            if loop.status.get("rayClusterName") in loop.clusters():
                break
        loop.cluster_ready()
        loop.until("Running")
        loop.submitter_runs()
        loop.step()
        bodies.append(json.dumps(loop.request()).encode())
    return bodies


def measure(bodies: list[bytes], seconds: float, poller: bool, dashboard: str) -> Result:
    env = {"METARAY_DASHBOARD": "on" if poller else "off", DASHBOARD_ENV: dashboard}
    with uvicorn("bench.dashboard_app:create", factory=True, env=env) as (port, _pid):
        load(port, "/rayjob/sync", bodies, 1.0, CONNECTIONS)  # warm-up; the poller starts
        return load(port, "/rayjob/sync", bodies, seconds, CONNECTIONS)


def main(seconds: float, count: int) -> None:
    with hanging_dashboard() as (address, handler):
        bodies = running_requests(count)
        print(
            f"{count} Running RayJobs, {CONNECTIONS} connections, {seconds:.0f} s each; their "
            f"dashboard answers after {HANG_SECONDS:.0f} s ({datetime.now():%Y-%m-%d %H:%M})"
        )
        print(
            f"{'poller':<7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} "
            f"{'dashboard asked':>16}"
        )
        p99 = {}
        for poller in (False, True):
            before = handler.asked
            result = measure(bodies, seconds, poller, address)
            p99[poller] = result.percentile(0.99)
            print(
                f"{'on' if poller else 'off':<7} {result.rate:>7.0f} "
                f"{result.percentile(0.5) * 1e3:>7.2f} {p99[poller] * 1e3:>7.2f} "
                f"{result.errors:>7} {handler.asked - before:>16}"
            )
        print(f"sync p99, poller on / off: {p99[True] / p99[False]:.2f}")


if __name__ == "__main__":
    main(
        float(sys.argv[1]) if len(sys.argv) > 1 else 15.0,
        int(sys.argv[2]) if len(sys.argv) > 2 else 100,
    )
