"""A minimal HTTP/1.1 keep-alive load client on asyncio streams (little overhead of its own)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def request_bytes(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _worker(port: int, payloads: list[bytes], stop: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    turn = 0
    try:
        while time.perf_counter() < stop:
            payload = payloads[turn % len(payloads)]
            turn += 1
            start = time.perf_counter()
            writer.write(payload)
            status = await _read_response(reader)
            if status == 200:
                result.latencies.append(time.perf_counter() - start)
            else:
                result.errors += 1
    finally:
        writer.close()


async def _run(port: int, payloads: list[bytes], seconds: float, connections: int) -> Result:
    result = Result()
    start = time.perf_counter()
    stop = start + seconds
    await asyncio.gather(
        *(_worker(port, payloads[i::connections], stop, result) for i in range(connections))
    )
    result.seconds = time.perf_counter() - start
    return result


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> int:
    """Send one request on a kept-alive connection; read the whole response; its status."""
    writer.write(payload)
    return await _read_response(reader)


def load(port: int, path: str, bodies: list[bytes], seconds: float, connections: int) -> Result:
    """Drive POST ``path`` with ``connections`` keep-alive connections for ``seconds``, each
    cycling through its share of ``bodies``."""
    payloads = [request_bytes(port, path, body) for body in bodies]
    if len(payloads) < connections:
        payloads = payloads * connections
    return asyncio.run(_run(port, payloads, seconds, connections))
