"""``metaray serve`` runs uvicorn without its 10 Hz timer (``app/faces/serve.py``): at rest the
server does not wake at all, yet it answers at once and stops at once on a signal."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import uvicorn

from app.faces.serve import QuietServer
from bench.server import ROOT, free_port


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return answer


def test_the_server_does_not_wake_at_rest_and_answers_and_stops_at_once() -> None:
    ticks = 0

    class Counting(QuietServer):
        async def on_tick(self, counter: int) -> bool:
            nonlocal ticks
            ticks += 1
            return await super().on_tick(counter)

    async def main() -> None:
        config = uvicorn.Config(
            _ok, port=free_port(), lifespan="off", log_level="warning", date_header=False
        )
        server = Counting(config)
        task = asyncio.create_task(server._serve())  # no signal handlers in the test process
        while not server.started:
            await asyncio.sleep(0.01)
        answer = await _get(config.port)
        await asyncio.sleep(0.5)  # uvicorn's own main loop would wake 5 times meanwhile
        at_rest = ticks
        server.should_exit = True
        server.wake()
        await asyncio.wait_for(task, 10)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
        assert at_rest == 1

    asyncio.run(main())


def test_metaray_serve_stops_on_sigterm() -> None:
    port = free_port()
    command = [sys.executable, "-m", "app.faces.cli", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
            assert "date" not in answer.headers  # no tick to keep it fresh: none at all
        process.send_signal(signal.SIGTERM)
        # uvicorn raises the signal again after its graceful shutdown, as uvicorn.run does.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
