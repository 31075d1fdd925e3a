"""The hook's memory: RSS of ``metaray serve`` idle and after answering N clusters (median of
runs), as the image runs it, and what the idle figure is made of, import by import.

    .venv/bin/python -m bench.footprint [runs] [clusters] [pods]

Every server runs with only the packages the image installs importable (bench/image_like.py):
the development venv's rich, pygments, uvloop, httptools... would change what it imports. Each
run starts a fresh server, reads its RSS one second after it listens (idle, no request), then
after every cluster's first sync and two steady resyncs of each (as bench/idle.py sends them).
The breakdown imports the serving path's layers one after another in a fresh image-like
interpreter each (bench/import_rss.py) and prints what each layer adds.
Not part of the test suite; the figures go to docs/operations.md.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

from bench import image_like
from bench.client import request_bytes
from bench.idle import _answers, _sweep, cluster_bodies, steady
from bench.import_rss import STAGES
from bench.server import ROOT, metaray, rss_kib


def one_run(clusters: int, pods: int) -> tuple[float, float]:
    """(idle MiB, MiB after answering ``clusters`` clusters) of one fresh server."""
    raw = cluster_bodies(clusters, pods)
    with metaray(image_like=True) as (port, pid):
        time.sleep(1.0)  # let start-up settle
        idle = rss_kib(pid) / 1024
        bodies = [steady(b, a) for b, a in zip(raw, asyncio.run(_answers(port, raw)), strict=True)]
        asyncio.run(_sweep(port, [request_bytes(port, "/sync", body) for body in bodies], 2))
        return idle, rss_kib(pid) / 1024


def breakdown() -> list[tuple[str, float]]:
    """Cumulative RSS (MiB) after each layer of the serving path, one interpreter per layer."""
    env = {**image_like.environment(), "PYTHONPATH": str(ROOT)}
    out = []
    for index, (name, _modules) in enumerate(STAGES):
        command = [sys.executable, "-m", "bench.image_like", "bench.import_rss", str(index)]
        printed = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        out.append((name, int(printed.stdout) / 1024))
    return out


def main(runs: int = 3, clusters: int = 20, pods: int = 11) -> None:
    results = [one_run(clusters, pods) for _ in range(runs)]
    idle = statistics.median(r[0] for r in results)
    served = statistics.median(r[1] for r in results)
    print(f"metaray serve, image-like, median of {runs} runs:")
    print(f"  idle, no request: {idle:.1f} MiB  ({', '.join(f'{r[0]:.1f}' for r in results)})")
    print(
        f"  after {clusters} clusters of {pods} pods: {served:.1f} MiB  "
        f"({', '.join(f'{r[1]:.1f}' for r in results)})"
    )
    print("what the idle figure is made of (cumulative RSS, what each layer adds):")
    previous = 0.0
    for name, rss in breakdown():
        print(f"  {name:<75} {rss:5.1f} MiB  +{rss - previous:4.1f}")
        previous = rss


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    defaults = [3, 20, 11]
    main(*(args + defaults[len(args) :]))
