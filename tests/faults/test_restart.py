"""The service keeps no state: kill it mid-run, start it again, and every answer is the same.

A real uvicorn process on loopback answers a client that replays real Metacontroller requests;
halfway through, the process is killed with SIGKILL and a new one started on the same port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fixtures import capture

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = [
    "sync-a-first",
    "sync-c-all-running",
    "sync-d-worker-failed",
    "sync-e3-scale-down-workers-to-delete",
    "sync-autoscaler-c-all-running",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "app.faces.cli", "serve", "--host", "127.0.0.1"]
    env = {**os.environ, "METARAY_EVENTS": "off", "METARAY_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [*command, "--port", str(port)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("metaray serve did not start listening within 30 s")


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


class Replayer(threading.Thread):
    """Sends every body again and again until told to stop, retrying refused connections as
    Metacontroller would, and records every answer and every failed attempt."""

    def __init__(self, port: int, bodies: dict[str, bytes]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.bodies = bodies
        self.stop = threading.Event()
        self.answers: dict[str, set[bytes]] = {name: set() for name in bodies}
        self.answered = 0
        self.refused = 0

    def run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as client:
            while not self.stop.is_set():
                for name, body in self.bodies.items():
                    self.answers[name].add(self.send(client, body))
                    self.answered += 1

    def send(self, client: httpx.Client, body: bytes) -> bytes:
        while True:
            try:
                response = client.post("/sync", content=body)
            except httpx.TransportError:
                self.refused += 1
                time.sleep(0.02)
                continue
            assert response.status_code == 200, response.text
            return response.content


def test_killing_and_restarting_the_service_changes_no_answer(port: int) -> None:
    bodies = {name: orjson.dumps(capture(name)) for name in REQUESTS}
    process = start(port)
    client = Replayer(port, bodies)
    try:
        client.start()
        time.sleep(1.0)
        answered_before = client.answered
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process = start(port)
        answered_at_restart = client.answered
        time.sleep(1.0)
        client.stop.set()
        client.join(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert not client.is_alive(), "the client did not finish"
    assert answered_before > 0, "no answer before the kill"
    assert client.refused > 0, "the client never saw the service down"
    assert client.answered > answered_at_restart, "no answer after the restart"
    for name in REQUESTS:
        assert len(client.answers[name]) == 1, f"{name}: the answers differ across the restart"
