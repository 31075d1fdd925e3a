"""In-process cost of one sync (decode + core + encode) against orjson.loads of the same bytes.

.venv/bin/python -m bench.inprocess [N ...]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import orjson

from app.hooks.request import decode
from app.hooks.response import encode
from app.raycluster.sync import sync
from app.shell.http.answers import paused_gc
from bench.requests import request


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def one_sync(body: bytes) -> bytes:
    """What the service does for one request (the shell pauses the cyclic GC meanwhile)."""
    with paused_gc():
        hook = decode(body)
        return encode(sync(hook.parent, hook.observed))


def main(sizes: list[int]) -> None:
    print(f"{'pods':>6} {'MB':>7} {'orjson.loads ms':>16} {'sync ms':>9} {'ratio':>6}")
    for pods in sizes:
        body = request(pods)
        repeat = 5 if pods >= 5000 else 15
        baseline = median_seconds(lambda b=body: orjson.loads(b), repeat)
        ours = median_seconds(lambda b=body: one_sync(b), repeat)
        print(
            f"{pods:>6} {len(body) / 1e6:>7.2f} {baseline * 1e3:>16.1f} {ours * 1e3:>9.1f} "
            f"{ours / baseline:>6.2f}"
        )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 100, 1000, 5000])
