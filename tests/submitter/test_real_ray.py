"""The submitter against a real Ray head, run exactly as a Job runs it: `python -c "<source>"`.

Ray and every submitter run inside network, PID and mount namespaces of their own with only
loopback up (`tests/realray.py`: no packet can leave the machine). One bash script starts one
head (token authentication on, as a KubeRay authOptions cluster) and runs every case against
it, writing each case's stdout, stderr, exit code and termination message to a directory that
the tests below read.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import app.submitter
from tests.realray.sandbox import PRELUDE, RAY_HEAD, sandbox

TOKEN = secrets.token_hex(16)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

NAMESPACE_SCRIPT = (
    PRELUDE
    + r"""
SOURCE="$(cat "$SUBMITTER")"
OK="python -c \"print('hello from ray')\""
FAIL="python -c \"import sys; sys.exit(3)\""
LONG="python -c \"import time; print('long job up', flush=True); time.sleep(300)\""

submitter() {  # <case name> <VAR=value>...: one submitter run, as the Job's container runs it
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  env RAY_AUTH_TOKEN="$TOKEN" "$@" RAY_DASHBOARD_ADDRESS=127.0.0.1:8265 \
    METARAY_TERMINATION_LOG="$OUT/$name.term" METARAY_DASHBOARD_WAIT_SECONDS=60 \
    python -c "$SOURCE" >"$OUT/$name.out" 2>"$OUT/$name.err"
  echo $? >"$OUT/$name.rc"
  echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$OUT/$name.ms"
}

dashboard() {  # <path> [<expected status> | health]: GET it, or wait (30 s at most) for it
  python - "$@" <<'PY'
import json, os, sys, time, urllib.request
url = "http://127.0.0.1:8265" + sys.argv[1]
want = sys.argv[2] if len(sys.argv) > 2 else None
request = urllib.request.Request(url, headers={"authorization": "Bearer " + os.environ["TOKEN"]})
for _ in range(150):
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
    except Exception:
        body = b""
    if want is None:
        sys.stdout.write(body.decode())
        sys.exit(0)
    if want == "health" and b"success" in body:
        sys.exit(0)
    if body and want != "health" and json.loads(body).get("status") == want:
        sys.exit(0)
    time.sleep(0.2)
sys.exit(1)
PY
}

# Started before the head: they must wait for the GCS health. RAY_ADDRESS is what KubeRay puts
# in a head pod (the GCS address); the submitter must not let Ray's client use it.
submitter ok RAY_JOB_SUBMISSION_ID=ok-1 RAY_ADDRESS=127.0.0.1:6379 "METARAY_ENTRYPOINT=$OK" &
first=$!
submitter fail RAY_JOB_SUBMISSION_ID=fail-1 "METARAY_ENTRYPOINT=$FAIL" &
second=$!

start=$(date +%s%N)
# Token authentication on (as KubeRay's authOptions do); the submitters get RAY_AUTH_TOKEN only,
# without RAY_AUTH_MODE, with which Ray's own client would send no token.
RAY_AUTH_MODE=token RAY_AUTH_TOKEN="$TOKEN" """
    + RAY_HEAD
    + r"""
dashboard /api/gcs_healthz health \
  || { echo "the Ray dashboard did not become healthy at 127.0.0.1:8265" >"$OUT/skip"; exit 0; }
echo $(( ($(date +%s%N) - start) / 1000000 )) >"$OUT/ray-start.ms"
wait $first $second

submitter ok-again RAY_JOB_SUBMISSION_ID=ok-1 "METARAY_ENTRYPOINT=$OK"
submitter fail-again RAY_JOB_SUBMISSION_ID=fail-1 "METARAY_ENTRYPOINT=$FAIL"

# A long job, then a stop Job for it: the long job's submitter sees STOPPED.
submitter long RAY_JOB_SUBMISSION_ID=long-1 "METARAY_ENTRYPOINT=$LONG" &
long=$!
dashboard /api/jobs/long-1 RUNNING || echo "long-1 never got RUNNING" >"$OUT/long-not-running"
submitter stop RAY_JOB_SUBMISSION_ID=long-1 METARAY_SUBMITTER_MODE=stop
wait $long
submitter stop-unknown RAY_JOB_SUBMISSION_ID=never-submitted METARAY_SUBMITTER_MODE=stop
submitter no-token RAY_JOB_SUBMISSION_ID=no-token-1 RAY_AUTH_TOKEN= "METARAY_ENTRYPOINT=$OK"
submitter bad-token RAY_JOB_SUBMISSION_ID=bad-token-1 RAY_AUTH_TOKEN=wrong "METARAY_ENTRYPOINT=$OK"

dashboard /api/jobs/ >"$OUT/jobs.json"
touch "$OUT/done"
"""
)


@dataclass
class Case:
    code: int
    out: str
    err: str
    message: dict[str, str]


class RealRun:
    def __init__(self, out: Path, seconds: float) -> None:
        self.out = out
        self.seconds = seconds

    def case(self, name: str) -> Case:
        code_file = self.out / f"{name}.rc"
        assert code_file.exists(), f"case {name} did not run; {self.debug()}"
        term = self.out / f"{name}.term"
        return Case(
            code=int(code_file.read_text()),
            out=(self.out / f"{name}.out").read_text(),
            err=(self.out / f"{name}.err").read_text(),
            message=json.loads(term.read_text()) if term.exists() else {},
        )

    def debug(self) -> str:
        log = self.out / "ray-start.log"
        return log.read_text()[-2000:] if log.exists() else "(no ray start log)"


@pytest.fixture(scope="module")
def real() -> Iterator[RealRun]:
    with sandbox() as box:
        submitter = box.write("submitter.py", app.submitter.source())
        env = {"SUBMITTER": str(submitter), "TOKEN": TOKEN}
        seconds = box.run(
            NAMESPACE_SCRIPT, env, timeout=300
        )  # a hang bound, not a speed claim: ~35 s alone
        yield RealRun(box.out, seconds)


def _times_are_sane(message: dict[str, str]) -> None:
    assert RFC3339.match(message["startTime"]), message
    assert RFC3339.match(message["endTime"]), message
    assert message["startTime"] <= message["endTime"]


def test_a_succeeding_job_exits_0_and_streams_its_logs(real: RealRun) -> None:
    ok = real.case("ok")
    assert ok.code == 0, ok.err
    assert "hello from ray" in ok.out
    assert "waiting for the Ray dashboard's GCS to become healthy" in ok.err
    assert "ignoring RAY_ADDRESS" in ok.err
    assert "submitting job ok-1" in ok.err
    assert ok.message["status"] == "SUCCEEDED"
    assert ok.message["message"] == "Job finished successfully."
    _times_are_sane(ok.message)


def test_a_failing_job_exits_64(real: RealRun) -> None:
    fail = real.case("fail")
    assert fail.code == 64, fail.err
    assert fail.message["status"] == "FAILED"
    assert "exit code 3" in fail.message["message"]
    _times_are_sane(fail.message)


@pytest.mark.parametrize(("again", "first"), [("ok-again", "ok"), ("fail-again", "fail")])
def test_a_rerun_attaches_to_the_finished_job(real: RealRun, again: str, first: str) -> None:
    rerun, original = real.case(again), real.case(first)
    assert rerun.code == original.code
    assert "already exists" in rerun.err and "not submitting it again" in rerun.err
    assert "submitting job" not in rerun.err.replace("not submitting", "")
    assert rerun.message == original.message  # the very same Ray job, same times


def test_stop_mode_stops_a_running_job_whose_submitter_exits_65(real: RealRun) -> None:
    assert not (real.out / "long-not-running").exists()
    stop, long = real.case("stop"), real.case("long")
    assert stop.code == 0, stop.err
    assert stop.message["status"] == "STOPPED"
    assert long.code == 65, long.err
    assert long.message["status"] == "STOPPED"
    assert "long job up" in long.out
    assert real.case("stop-unknown").code == 0


def test_every_job_was_submitted_exactly_once(real: RealRun) -> None:
    jobs = json.loads((real.out / "jobs.json").read_text())
    ids = sorted(job["submission_id"] for job in jobs)
    assert ids == ["fail-1", "long-1", "ok-1"]
