"""Start and stop a real uvicorn server on loopback for a benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn(
    app: str, *, factory: bool = False, env: dict[str, str] | None = None
) -> Iterator[tuple[int, int]]:
    """Run ``app`` (``module:attr``) on 127.0.0.1, with ``env`` added to the environment;
    yields (port, pid)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, *_address(port), "--no-access-log"]
    if factory:
        command.append("--factory")
    with _running(command, port, env) as pid:
        yield port, pid


@contextmanager
def metaray(
    env: dict[str, str] | None = None, *, image_like: bool = False
) -> Iterator[tuple[int, int]]:
    """Run the hook as the image does (``metaray serve``) on 127.0.0.1; yields (port, pid).
    ``image_like``: with only the packages the image installs importable (bench/image_like.py)."""
    port = free_port()
    command = [sys.executable, "-m", "app.faces.cli", "serve", *_address(port)]
    if image_like:
        from bench import image_like as image

        command[1:3] = ["-m", "bench.image_like", "app.faces.cli"]
        env = {**image.environment(), **(env or {})}
    with _running(command, port, env) as pid:
        yield port, pid


def _address(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


@contextmanager
def _running(command: list[str], port: int, env: dict[str, str] | None) -> Iterator[int]:
    environment = {
        **os.environ,
        "METARAY_EVENTS": "off",
        "METARAY_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    try:
        _wait_until_listening(port)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")
