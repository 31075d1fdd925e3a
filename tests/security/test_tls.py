"""`metaray serve` over HTTPS with a certificate and key (Metacontroller >= 4.16 caBundle)."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a test certificate"
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_serve_answers_over_https_only(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    port = free_port()
    env = {**os.environ, "METARAY_EVENTS": "off", "METARAY_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.faces.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                context = ssl.create_default_context(cafile=str(cert))
                response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "no HTTPS answer within 30 s"
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
        except httpx.HTTPError:
            pass  # the TLS server drops a plain-HTTP request
        else:
            assert plain.status_code == 400
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_certificate_without_its_key_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.faces.cli", "serve", "--tls-cert-file", "/nonexistent.crt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "METARAY_EVENTS": "off"},
    )
    assert result.returncode == 2
    assert "go together" in result.stderr
