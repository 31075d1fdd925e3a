"""``Dashboards`` against a real Ray head (the installed ray[default]), on loopback only.

One bash script in namespaces of its own (`tests/realray.py`: only loopback up, no packet
leaves the machine) starts a head and runs ``DRIVER`` against its dashboard: submit a short job
through a ``SubmitJob`` and poll it to SUCCEEDED, submit the same intent again (no second job),
record what Ray answers to a duplicate submission id, submit a long job and stop it with
``StopJob`` until the view says STOPPED. The driver writes what it saw to ``$OUT/result.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realray.sandbox import PRELUDE, RAY_HEAD, sandbox

REPO = Path(__file__).resolve().parents[2]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

DRIVER = r'''
import asyncio, json, os, sys, time
from datetime import UTC, datetime

import httpx
from prometheus_client import CollectorRegistry

from app.shell.ray.poller import Dashboards
from app.shell.observability.metrics import DashboardMetrics
from app.rayjob.dashboard import StopJob, SubmitJob

URL = "127.0.0.1:8265"
SHORT = SubmitJob(URL, "hi-1", "python -c \"print('hi')\"", metadata={"test": "metaray"})
LONG = SubmitJob(URL, "long-1", "python -c \"import time; time.sleep(300)\"")


async def until(client, job_id, statuses, seconds, again=()):
    """Poll (through the client's loop) until the view's status is one of `statuses`."""
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        client.watch(URL, job_id)
        view = client.view(URL, job_id)
        status = view.info.status if view is not None and view.info is not None else None
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in statuses:
            return view, seen
        if again:
            await client.carry_out(again)
        await asyncio.sleep(0.1)
    return client.view(URL, job_id), seen


def view_dict(view):
    if view is None:
        return None
    info = view.info
    return {
        "found": view.found, "error": view.error, "failing_since": view.failing_since,
        "info": None if info is None else {
            "status": info.status, "message": info.message,
            "start_time": info.start_time, "end_time": info.end_time,
        },
    }


async def main():
    registry = CollectorRegistry()
    client = Dashboards(
        clock=lambda: datetime.now(UTC), interval=0.25, timeout=10.0,
        metrics=DashboardMetrics(registry),
    )
    client.start()
    result = {}
    try:
        client.watch(URL, "hi-1")
        view, _ = await until(client, "hi-1", ("__never__",), 1.0)
        result["before"] = view_dict(view)
        started = time.monotonic()
        await client.carry_out([SHORT])
        result["submit_seconds"] = time.monotonic() - started
        view, seen = await until(client, "hi-1", ("SUCCEEDED", "FAILED", "STOPPED"), 30)
        result["short"] = view_dict(view)
        result["short_seen"] = seen
        await client.carry_out([SHORT])  # again: Ray says it exists, that is done
        await asyncio.gather(client.carry_out([SHORT]), client.carry_out([SHORT]))
        async with httpx.AsyncClient(trust_env=False, timeout=10) as raw:
            duplicate = await raw.post(f"http://{URL}/api/jobs/", json=SHORT.body())
            result["duplicate"] = {"status": duplicate.status_code, "text": duplicate.text}
            jobs = (await raw.get(f"http://{URL}/api/jobs/")).json()
        result["submission_ids"] = sorted(j["submission_id"] for j in jobs if j["submission_id"])

        await client.carry_out([LONG])
        view, seen = await until(client, "long-1", ("RUNNING",), 30)
        result["long_running"] = view_dict(view)
        stop = StopJob(URL, "long-1")
        started = time.monotonic()
        view, seen = await until(client, "long-1", ("STOPPED",), 30, again=[stop])
        result["stop_seconds"] = time.monotonic() - started
        result["long"] = view_dict(view)
        result["long_seen"] = seen
        await client.carry_out([StopJob(URL, "never-submitted")])  # 404: done

        result["metrics"] = {
            f"{s.labels['call']}/{s.labels['outcome']}": s.value
            for metric in registry.collect() if metric.name == "metaray_dashboard_requests"
            for s in metric.samples if s.name.endswith("_total") and s.value
        }
    finally:
        await client.stop()
    with open(os.path.join(os.environ["OUT"], "result.json"), "w") as f:
        json.dump(result, f, indent=1)


asyncio.run(main())
'''

SCRIPT = (
    PRELUDE
    + RAY_HEAD
    + r"""
python - <<'PY' || { echo "the Ray dashboard did not become healthy" >"$OUT/skip"; exit 0; }
import sys, time, urllib.request
for _ in range(150):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8265/api/gcs_healthz", timeout=5) as r:
            if b"success" in r.read():
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(1)
PY
cd "$REPO" && PYTHONPATH="$REPO" python "$DRIVER" >"$OUT/driver.log" 2>&1
echo $? >"$OUT/driver.rc"
touch "$OUT/done"
"""
)


class Run:
    def __init__(self, out: Path, seconds: float) -> None:
        self.out = out
        self.seconds = seconds
        rc = (out / "driver.rc").read_text().strip()
        log = (out / "driver.log").read_text()[-3000:]
        assert rc == "0", f"the driver exited {rc}: {log}"
        self.result: dict[str, Any] = json.loads((out / "result.json").read_text())


@pytest.fixture(scope="module")
def real() -> Iterator[Run]:
    with sandbox() as box:
        driver = box.write("driver.py", DRIVER)
        seconds = box.run(
            SCRIPT, {"DRIVER": str(driver), "REPO": str(REPO)}, timeout=300
        )  # a hang bound, not a speed claim
        yield Run(box.out, seconds)


def test_a_submitted_job_is_polled_to_succeeded(real: Run) -> None:
    r = real.result
    assert r["before"] == {"found": False, "error": "", "failing_since": None, "info": None}
    short = r["short"]
    assert short["found"] and short["error"] == "" and short["failing_since"] is None
    info = short["info"]
    assert info["status"] == "SUCCEEDED"
    assert info["message"] == "Job finished successfully."
    assert RFC3339.match(info["start_time"]) and RFC3339.match(info["end_time"])
    assert info["start_time"] <= info["end_time"]
    assert r["short_seen"][-1] == "SUCCEEDED"


def test_submitting_the_same_intent_again_makes_no_second_job(real: Run) -> None:
    r = real.result
    assert r["submission_ids"] == ["hi-1"]  # listed before long-1 was submitted
    # hi-1: new, exists, exists (two calls at once: one POST); long-1: new.
    assert r["metrics"]["submit/ok"] == 4
    assert "submit/error" not in r["metrics"]


def test_ray_answers_a_duplicate_submission_id_with_500_already_exists(real: Run) -> None:
    duplicate = real.result["duplicate"]
    assert duplicate["status"] == 500
    assert "Job with submission_id hi-1 already exists" in duplicate["text"]
    assert "status code 400" in duplicate["text"]  # the job agent's 400, wrapped


def test_a_long_job_is_stopped(real: Run) -> None:
    r = real.result
    assert r["long_running"]["info"]["status"] == "RUNNING"
    long = r["long"]
    assert long["info"]["status"] == "STOPPED", r["long_seen"]
    assert RFC3339.match(long["info"]["end_time"])
    assert r["metrics"]["stop/ok"] >= 1
    assert r["metrics"]["stop/not_found"] == 1
    assert r["metrics"]["get/ok"] >= 3
