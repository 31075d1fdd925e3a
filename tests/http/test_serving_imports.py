"""``metaray serve`` at rest holds only what serving needs (docs/operations.md, "The hook's
memory"): no core, no spec model, no httpx, no click, no PyYAML until a request needs them.
Each route imports its own core on its first request; httpx comes with the first API client."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from typing import Any

import yaml

from bench.server import ROOT
from tests.fixtures import capture

CORES = {
    "/sync": "app.raycluster.sync",
    "/rayjob/sync": "app.rayjob.sync",
    "/raycronjob/sync": "app.raycronjob.sync",
    "/rayservice/sync": "app.rayservice.sync",
}
# What serving must not hold at rest: the cores and their spec models, the offline tools and
# what only an outgoing request or the command line needs.
HEAVY = [
    *CORES.values(),
    "app.raycluster.spec",
    "app.rayjob.spec",
    "app.rayservice.spec",
    "app.raycronjob.spec",
    "app.faces.render",
    "httpx",
    "click",
    "uvicorn.main",
    "yaml",
    "croniter",
    "rich",
    "pygments",
    "pydantic.v1",
]

# Runs in a fresh interpreter: the serve entry's imports and the app as `metaray serve` builds
# it; then one request per route through the ASGI interface (no HTTP client library), noting
# which cores are loaded after each; then a Kubernetes API client and one request through it.
SERVER = """
import asyncio, json, sys

import app.faces.cli, app.faces.serve
from app.shell.http.app import create_app

HEAVY, CORES, REQUESTS = json.loads(sys.stdin.read())
service = create_app()
out = {"at_rest": [m for m in HEAVY if m in sys.modules], "answers": []}

async def post(path, body):
    sent, incoming = [], [{"type": "http.request", "body": body, "more_body": False}]
    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}
    async def send(message):
        sent.append(message)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await service(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])

for path, body in REQUESTS:
    status, answer = asyncio.run(post(path, json.dumps(body).encode()))
    loaded = [m for m in CORES if m in sys.modules]
    out["answers"].append([path, status, sorted(answer), loaded])

out["httpx_before_client"] = "httpx" in sys.modules
from app.shell.kube.api import KubeApi, client
import httpx

seen = []
def handler(request):
    seen.append(request.headers.get("authorization"))
    return httpx.Response(200, json={})

async def ask(token_path):
    api = KubeApi("https://kubernetes.default", token_path, "/nonexistent/ca.crt")
    async with client(api, httpx.MockTransport(handler)) as kube:
        return (await kube.get("/api")).status_code

out["client_status"] = asyncio.run(ask(sys.argv[1]))
out["authorization"] = seen
print(json.dumps(out))
"""


def _request(parent: dict[str, Any]) -> dict[str, Any]:
    """A first sync of ``parent`` as Metacontroller sends it: nothing observed yet."""
    metadata = parent["metadata"]
    metadata.setdefault("namespace", "default")
    metadata.setdefault("uid", "0c0ffee0-0000-4000-8000-000000000001")
    metadata.setdefault("generation", 1)
    return {"controller": {}, "parent": parent, "children": {}, "related": {}}


def _sample(name: str) -> dict[str, Any]:
    """The sample's parent (a sample file may hold a ConfigMap beside it)."""
    documents = yaml.safe_load_all((ROOT / "samples" / name).read_text())
    kind = name.split(".")[0].replace("-", "").lower()
    (parent,) = [d for d in documents if d and d["kind"].lower() == kind]
    return _request(parent)


def test_serving_imports_a_core_on_its_first_request_and_httpx_with_a_client(
    tmp_path: Any,
) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    requests = [
        ["/sync", capture("sync-a-first")],
        ["/rayjob/sync", _sample("ray-job.sample.yaml")],
        ["/raycronjob/sync", _sample("ray-cronjob.sample.yaml")],
        ["/rayservice/sync", _sample("ray-service.sample.yaml")],
    ]
    stdin = json.dumps([HEAVY, list(CORES.values()), requests])
    env = {"METARAY_EVENTS": "off", "METARAY_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SERVER, str(token)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_base_env(), **env},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])

    assert out["at_rest"] == []
    cores = list(CORES.values())
    for index, (path, status, keys, loaded) in enumerate(out["answers"]):
        assert status == 200, (path, keys)
        assert "status" in keys and "children" in keys
        # This route's core and those before it; none of the routes not asked yet.
        assert loaded == cores[: index + 1], path
    assert out["httpx_before_client"] is False
    assert out["client_status"] == 200
    assert out["authorization"] == ["Bearer secret-token"]


def test_the_bare_uvicorn_package_serves_and_completes_on_first_use() -> None:
    """app/faces/uvicorn_server.py registers uvicorn without its __init__ (which imports click
    through uvicorn.main); the installed uvicorn must still give the server, and the whole
    package as soon as anything asks it for more."""
    script = """
import importlib.metadata, json, sys
from app.faces.uvicorn_server import Config, Server
import uvicorn.config, uvicorn.server
at_rest = ["click" in sys.modules, "uvicorn.main" in sys.modules]
same = [Config is uvicorn.config.Config, Server is uvicorn.server.Server]
Config("app.shell.http.app:create_app", factory=True).load()  # protocols, loop, the app
import uvicorn
version = uvicorn.__version__  # the first attribute asked of the package completes it
cli = sys.modules["uvicorn.main"]  # the attribute uvicorn.main is click's command, as usual
print(json.dumps({"at_rest": at_rest, "same": same, "version": version,
                  "run": uvicorn.run is cli.run, "config": uvicorn.Config is Config}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_base_env(), "PYTHONPATH": str(ROOT), "METARAY_EVENTS": "off"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["at_rest"] == [False, False]
    assert out["same"] == [True, True]
    assert out["version"] == importlib.metadata.version("uvicorn")
    assert out["run"] is True and out["config"] is True


def _base_env() -> dict[str, str]:
    """This environment without metaray's settings (each test sets the ones it needs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("METARAY_")}
