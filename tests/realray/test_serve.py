"""A real Ray Serve behind metaray's Serve poller (app/shell/ray/serve.py) and the core's rules
(app/rayservice/serve.py), in the loopback-only sandbox: a config applied through the dashboard
comes up RUNNING and answers through the Serve proxy, whose ``/-/healthz`` the poller then
reads as healthy (the head's ``ray.io/serve`` label), and a port without a proxy as unhealthy; a
changed config is applied once; a restarted metaray (a new poller, no memory) reads Ray's
deployed_app_config and applies nothing. Skipped, saying why, where the namespaces, ``ip`` or
Ray are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.realray.sandbox import PRELUDE, RAY_HEAD, sandbox

ROOT = Path(__file__).resolve().parents[2]

APP = """
from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Greeter:
    def __init__(self):
        self.greeting = "unset"

    def reconfigure(self, config):
        self.greeting = config["greeting"]

    async def __call__(self, request):
        return self.greeting


app = Greeter.bind()
"""

# What the shell and the core do for one cluster, sync after sync: read Ray, apply the config
# where Ray does not run it (the intent the core returns), until every application runs it.
DRIVER = r'''
import asyncio, json, time, urllib.request
from datetime import UTC, datetime

import httpx

from app.rayservice.head_label import ProxyTarget
from app.rayservice.serve import ApplyServeConfig, ServeTarget, canonical, deployed, ready
from app.shell.ray.serve import ServeDashboards

URL = "127.0.0.1:8265"
PUTS = []


class Counting(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request):
        if request.method == "PUT":
            PUTS.append(request.url.path)
        return await super().handle_async_request(request)


def config(greeting):
    return {"applications": [{
        "name": "greeter", "import_path": "greeter:app", "route_prefix": "/greet",
        "deployments": [{"name": "Greeter", "user_config": {"greeting": greeting}}],
    }]}


async def syncs(wanted, seconds=150):
    """A fresh poller (a metaray process) syncing until Ray runs ``wanted``."""
    poller = ServeDashboards(clock=lambda: datetime.now(UTC), transport=Counting(),
                             interval=0.0, timeout=10.0)
    target = ServeTarget("c", URL)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            poller.watch(target)
            await poller.poll_once()
            view = poller.view("c", URL)
            if view is not None and view.fresh:
                if ready(wanted, view):
                    return True
                if not deployed(wanted, view):
                    await poller.carry_out([ApplyServeConfig("c", URL, canonical(wanted))])
            await asyncio.sleep(1)
        return False
    finally:
        await poller.stop()


async def proxies():
    """The head proxy read as the poller reads it for the head's ray.io/serve label, and a
    port where no proxy listens."""
    poller = ServeDashboards(clock=lambda: datetime.now(UTC), interval=0.0, timeout=10.0)
    heads = [ProxyTarget("c", "head", "127.0.0.1:8000"), ProxyTarget("c", "none", "127.0.0.1:8999")]
    try:
        poller.proxies(heads)
        await poller.poll_once()
        return {uid: view.healthy for uid, view in poller.proxies(heads).items()}
    finally:
        await poller.stop()


def ask():
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8000/greet", timeout=10) as answer:
                return answer.read().decode()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


async def main():
    out = {}
    out["first_running"] = await syncs(config("hello"))
    out["first_puts"], out["first_answer"] = len(PUTS), ask()
    out["proxies"] = await proxies()
    out["changed_running"] = await syncs(config("bonjour"))
    out["changed_puts"], out["changed_answer"] = len(PUTS) - out["first_puts"], ask()
    before = len(PUTS)
    out["restart_running"] = await syncs(config("bonjour"), seconds=20)
    out["restart_puts"] = len(PUTS) - before
    print(json.dumps(out))


asyncio.run(main())
'''


def test_a_config_runs_answers_is_applied_once_per_change_and_not_again_after_a_restart() -> None:
    with sandbox() as box:
        app_dir = box.tmpd / "app"
        app_dir.mkdir()
        (app_dir / "greeter.py").write_text(APP)
        driver = box.write("driver.py", DRIVER)
        script = (
            PRELUDE
            + f'export PYTHONPATH="{app_dir}"\n'  # the Serve app, importable by Ray's workers
            + RAY_HEAD.replace("--num-cpus=1", "--num-cpus=2")
            + "\n"
            + f'PYTHONPATH="{ROOT}:{app_dir}" python "{driver}" >"$OUT/results.json" '
            + '2>"$OUT/driver.err"\n'
            + 'touch "$OUT/done"\n'
        )
        box.run(script, {}, timeout=420)
        err = (box.out / "driver.err").read_text()[-3000:]
        text = (box.out / "results.json").read_text()
        assert text.strip(), f"the driver printed nothing: {err}\n{box.debug()}"
        out = json.loads(text)
    assert out["first_running"] and out["first_answer"] == "hello", out
    assert out["first_puts"] == 1, out
    assert out["proxies"] == {"head": True, "none": False}, out
    assert out["changed_running"] and out["changed_answer"] == "bonjour", out
    assert out["changed_puts"] == 1, out
    assert out["restart_running"] and out["restart_puts"] == 0, out
