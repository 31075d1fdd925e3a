"""The submitter script's logic, in-process, with a fake JobSubmissionClient."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import app.submitter
from tests.submitter.helpers import (
    END_MS,
    START_MS,
    FakeClient,
    duplicate,
    info,
    load_script,
    not_found,
)

S = load_script()  # for the pure functions
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Run:
    """One submitter run: the fake client, a fake clock, and what the script wrote."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.module = load_script()
        self.log = tmp_path / "termination-log"
        self.clock = 0.0
        self.sleeps: list[float] = []
        self.healthy: list[bool] = []  # answers of the health probe, then True forever
        self.client: FakeClient | None = None
        self.env = {
            "RAY_DASHBOARD_ADDRESS": "rayjob-head-svc.ns.svc.cluster.local:8265",
            "RAY_JOB_SUBMISSION_ID": "job-1",
            "METARAY_ENTRYPOINT": "python main.py",
            "METARAY_TERMINATION_LOG": str(self.log),
        }
        monkeypatch.setattr(self.module, "_sleep", self._sleep)
        monkeypatch.setattr(self.module, "_now", lambda: self.clock)
        monkeypatch.setattr(self.module, "gcs_healthy", self._healthy)
        monkeypatch.setattr(self.module, "make_client", self._client)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds

    def _healthy(self, config: Any) -> bool:
        return self.healthy.pop(0) if self.healthy else True

    def _client(self, config: Any) -> FakeClient:
        assert self.client is not None
        return self.client

    def __call__(self, client: FakeClient | None = None, **env: str) -> int:
        self.client = client
        code: int = self.module.main({**self.env, **env})
        return code

    def message(self) -> dict[str, str]:
        text = self.log.read_text(encoding="ascii")
        assert len(text.encode()) <= 4096
        document: dict[str, str] = json.loads(text)
        return document


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return Run(tmp_path, monkeypatch)


# --- exit codes --------------------------------------------------------------------------------


def test_succeeded_submits_once_follows_logs_and_exits_0(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient([not_found(), "PENDING", "RUNNING", "RUNNING", "SUCCEEDED"])
    assert run(client) == 0
    assert len(client.submitted) == 1
    out, err = capsys.readouterr()
    assert out == "line one\nline two\n"
    assert "metaray-submitter: submitting job job-1" in err
    assert all(line.startswith("metaray-submitter: ") for line in err.splitlines())
    assert run.message() == {
        "status": "SUCCEEDED",
        "message": "Job is succeeded.",
        "startTime": "2026-12-02T04:12:08Z",
        "endTime": "2026-12-02T04:12:10Z",
    }
    assert set(run.sleeps) == {2.0}  # polls every 2 s


@pytest.mark.parametrize(("status", "code"), [("FAILED", 64), ("STOPPED", 65)])
def test_failed_and_stopped_have_their_own_exit_codes(run: Run, status: str, code: int) -> None:
    client = FakeClient([not_found(), "RUNNING", info(status, "Job entrypoint failed: 3")])
    assert run(client) == code
    assert run.message()["status"] == status
    assert run.message()["message"] == "Job entrypoint failed: 3"


def test_a_job_that_vanishes_after_it_was_seen_exits_66(run: Run) -> None:
    client = FakeClient([not_found(), "RUNNING", not_found()])
    assert run(client) == 66
    message = run.message()
    assert message["status"] == ""
    assert "not found" in message["message"] and "RUNNING" in message["message"]
    assert set(message) == {"status", "message"}


def test_head_restart_that_wiped_the_gcs_exits_66_after_the_dashboard_is_back(run: Run) -> None:
    """The dashboard stops answering mid-follow; once it is healthy again the job is unknown."""
    client = FakeClient([info("RUNNING"), ConnectionError("refused"), not_found()])
    run.healthy = [True, False, False, True]
    assert run(client) == 66
    assert client.submitted == []


def test_transient_dashboard_errors_while_following_are_retried(run: Run) -> None:
    boom = RuntimeError("Request failed with status code 500: busy")
    client = FakeClient([not_found(), "RUNNING", boom, boom, "SUCCEEDED"])
    assert run(client) == 0


def test_persistent_dashboard_errors_while_following_exit_1(run: Run) -> None:
    boom = RuntimeError("Request failed with status code 500: busy")
    client = FakeClient([not_found(), "RUNNING", boom])
    assert run(client) == 1
    assert run.message() == {"status": "", "message": "RuntimeError: " + str(boom)}


def test_an_error_before_submitting_exits_1_without_submitting(run: Run) -> None:
    client = FakeClient([RuntimeError("Request failed with status code 500: oops")])
    assert run(client) == 1
    assert client.submitted == []
    assert run.message() == {
        "status": "",
        "message": "RuntimeError: Request failed with status code 500: oops",
    }


def test_a_failed_submission_exits_1(run: Run) -> None:
    client = FakeClient([not_found()], submit_error=RuntimeError("status code 400: bad runtime"))
    assert run(client) == 1
    assert len(client.submitted) == 1
    assert "bad runtime" in run.message()["message"]


def test_a_dashboard_that_never_gets_healthy_exits_1(run: Run) -> None:
    run.healthy = [False] * 1000
    assert run(None, METARAY_DASHBOARD_WAIT_SECONDS="10") == 1
    assert run.sleeps == [2.0] * 5
    assert "did not become healthy" in run.message()["message"]


def test_it_waits_for_the_gcs_health_before_asking_anything(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.healthy = [False, False, False]
    client = FakeClient([not_found(), "SUCCEEDED"])
    assert run(client) == 0
    assert run.sleeps[:3] == [2.0, 2.0, 2.0]
    assert "waiting for the Ray dashboard's GCS to become healthy at http://" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"RAY_DASHBOARD_ADDRESS": ""}, "RAY_DASHBOARD_ADDRESS is not set"),
        ({"RAY_JOB_SUBMISSION_ID": ""}, "RAY_JOB_SUBMISSION_ID is not set"),
        ({"METARAY_ENTRYPOINT": " "}, "METARAY_ENTRYPOINT is not set"),
        ({"METARAY_SUBMITTER_MODE": "delete"}, "must be 'submit' or 'stop'"),
        ({"METARAY_RUNTIME_ENV_JSON": "{nope"}, "METARAY_RUNTIME_ENV_JSON is not valid JSON"),
        ({"METARAY_RUNTIME_ENV_JSON": "[1]"}, "must be a JSON object"),
        ({"METARAY_METADATA_JSON": '{"a": 1}'}, "must map names to strings"),
        ({"METARAY_ENTRYPOINT_NUM_CPUS": "two"}, "must be a number"),
        ({"METARAY_ENTRYPOINT_NUM_GPUS": "-1"}, "must be a finite number >= 0"),
        ({"METARAY_ENTRYPOINT_RESOURCES": '{"TPU": "4"}'}, "must map names to numbers"),
    ],
)
def test_bad_environment_exits_1_and_says_why(run: Run, env: dict[str, str], fragment: str) -> None:
    assert run(None, **env) == 1
    assert fragment in run.message()["message"]
    assert run.message()["status"] == ""


# --- idempotence -------------------------------------------------------------------------------


def test_an_existing_running_job_is_followed_not_resubmitted(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient(["RUNNING", "RUNNING", "SUCCEEDED"])
    assert run(client) == 0
    assert client.submitted == []
    out, err = capsys.readouterr()
    assert "already exists (RUNNING): following it, not submitting it again" in err
    assert out == "line one\nline two\n"


@pytest.mark.parametrize(("status", "code"), [("SUCCEEDED", 0), ("FAILED", 64), ("STOPPED", 65)])
def test_a_finished_job_gives_the_same_exit_code_again(run: Run, status: str, code: int) -> None:
    client = FakeClient([status])
    assert run(client) == code
    assert client.submitted == []
    assert run.message()["status"] == status


def test_duplicate_submission_id_race_counts_as_submitted(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient([not_found(), "RUNNING", "SUCCEEDED"], submit_error=duplicate())
    assert run(client) == 0
    assert len(client.submitted) == 1
    assert "was submitted meanwhile (a race): following it" in capsys.readouterr().err


def test_a_submission_whose_answer_was_lost_is_followed(run: Run) -> None:
    client = FakeClient(
        [not_found(), "RUNNING", "SUCCEEDED"], submit_error=ConnectionError("reset by peer")
    )
    assert run(client) == 0
    assert len(client.submitted) == 1


# --- what reaches Ray --------------------------------------------------------------------------


def test_the_entrypoint_and_options_reach_ray_verbatim(run: Run) -> None:
    entrypoint = "echo a; echo 'b c' && exit 3 $(whoami) `id` \"$HOME\" \\\n  --flag"
    client = FakeClient([not_found(), "SUCCEEDED"])
    code = run(
        client,
        RAY_JOB_SUBMISSION_ID="rayjob-sample-x7k2p",
        METARAY_ENTRYPOINT=entrypoint,
        METARAY_RUNTIME_ENV_JSON='{"pip": ["requests==2.32.3"], "env_vars": {"A": "1"}}',
        METARAY_METADATA_JSON='{"owner": "team-a"}',
        METARAY_ENTRYPOINT_NUM_CPUS="0.5",
        METARAY_ENTRYPOINT_NUM_GPUS="1",
        METARAY_ENTRYPOINT_RESOURCES='{"TPU": 4}',
    )
    assert code == 0
    assert client.submitted == [
        {
            "entrypoint": entrypoint,
            "submission_id": "rayjob-sample-x7k2p",
            "runtime_env": {"pip": ["requests==2.32.3"], "env_vars": {"A": "1"}},
            "metadata": {"owner": "team-a"},
            "entrypoint_num_cpus": 0.5,
            "entrypoint_num_gpus": 1.0,
            "entrypoint_resources": {"TPU": 4.0},
        }
    ]


def test_optional_settings_default_to_none() -> None:
    config = S.read_config(
        {
            "RAY_DASHBOARD_ADDRESS": "127.0.0.1:8265",
            "RAY_JOB_SUBMISSION_ID": "j",
            "METARAY_ENTRYPOINT": "python x.py",
            "METARAY_RUNTIME_ENV_JSON": "",
        }
    )
    assert config.address == "http://127.0.0.1:8265"
    assert config.mode == "submit"
    assert config.termination_log == "/dev/termination-log"
    assert config.wait_seconds is None
    assert config.runtime_env is None and config.metadata is None
    assert config.num_cpus is None and config.num_gpus is None and config.resources is None
    assert config.auth_token is None


@pytest.mark.parametrize(
    ("given_address", "address"),
    [
        ("svc.ns.svc.cluster.local:8265", "http://svc.ns.svc.cluster.local:8265"),
        ("https://dash.example:443/", "https://dash.example:443"),
        ("http://127.0.0.1:8265", "http://127.0.0.1:8265"),
    ],
)
def test_the_scheme_is_added_only_when_missing(given_address: str, address: str) -> None:
    env = {"RAY_DASHBOARD_ADDRESS": given_address, "RAY_JOB_SUBMISSION_ID": "j"}
    assert S.read_config({**env, "METARAY_ENTRYPOINT": "x"}).address == address


def test_make_client_ignores_ray_address_and_sends_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[str, Any]] = []

    class Client:
        def __init__(self, address: str, headers: Any = None) -> None:
            made.append((address, headers))

    fake = types.ModuleType("ray.job_submission")
    fake.JobSubmissionClient = Client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))
    monkeypatch.setitem(sys.modules, "ray.job_submission", fake)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://elsewhere:8265")
    base = {"RAY_DASHBOARD_ADDRESS": "h:8265", "RAY_JOB_SUBMISSION_ID": "j"}
    base["METARAY_ENTRYPOINT"] = "x"
    S.make_client(S.read_config(base))
    S.make_client(S.read_config({**base, "RAY_AUTH_TOKEN": "s3cret"}))
    assert made == [("http://h:8265", None), ("http://h:8265", {"authorization": "Bearer s3cret"})]
    assert "RAY_ADDRESS" not in os.environ and "RAY_API_SERVER_ADDRESS" not in os.environ


class _Health(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, bytes]]] = []
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        status, body = self.answers.pop(0)
        self.seen.append((self.path, self.headers.get("authorization")))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Health.answers, _Health.seen = [], []
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Health
    finally:
        server.shutdown()
        server.server_close()


def test_gcs_health_probe_reads_success_and_sends_the_token(
    health_server: tuple[str, type[_Health]],
) -> None:
    address, handler = health_server
    handler.answers = [(200, b"success"), (503, b"Health check failed"), (200, b"nope")]
    env = {"RAY_DASHBOARD_ADDRESS": address, "RAY_JOB_SUBMISSION_ID": "j"}
    config = S.read_config({**env, "METARAY_ENTRYPOINT": "x", "RAY_AUTH_TOKEN": "tok"})
    assert [S.gcs_healthy(config) for _ in range(3)] == [True, False, False]
    assert handler.seen == [("/api/gcs_healthz", "Bearer tok")] * 3


# --- logs --------------------------------------------------------------------------------------


def test_a_broken_log_stream_is_completed_from_the_full_log(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient(
        [not_found(), "RUNNING", "FAILED"],
        logs=["first\n"],
        tail_error=RuntimeError("WebSocket connection closed unexpectedly"),
        full_logs="first\nsecond\nTraceback: boom\n",
    )
    assert run(client) == 64
    out, err = capsys.readouterr()
    assert out == "first\nsecond\nTraceback: boom\n"
    assert "the log stream broke (RuntimeError: WebSocket connection closed" in err


def test_a_job_over_when_first_seen_gets_its_full_log_without_a_stream(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient(["FAILED"], full_logs="earlier run\nTraceback: boom\n")
    assert run(client) == 64
    assert client.tails == 0
    assert capsys.readouterr().out == "earlier run\nTraceback: boom\n"


def test_a_stream_that_sent_nothing_is_made_up_for(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient([not_found(), "RUNNING", "SUCCEEDED"], logs=[], full_logs="hello\n")
    assert run(client) == 0
    assert client.tails == 1
    assert capsys.readouterr().out == "hello\n"


def test_a_hanging_log_stream_does_not_hold_the_exit(
    run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Hanging(FakeClient):
        async def tail_job_logs(self, job_id: str) -> Any:  # type: ignore[override]
            yield "partial\n"
            await asyncio.sleep(3600)

    monkeypatch.setattr(run.module, "LOG_DRAIN_SECONDS", 0.2)
    monkeypatch.setattr(run.module, "POLL_SECONDS", 0.05)
    client = Hanging([not_found(), "RUNNING", "SUCCEEDED"], full_logs="partial\nrest\n")
    assert run(client) == 0
    out, _ = capsys.readouterr()
    assert out == "partial\nrest\n"


# --- termination message -----------------------------------------------------------------------


def test_termination_message_shape_and_times() -> None:
    text = S.termination_message("FAILED", "exit code 3", START_MS, END_MS)
    assert json.loads(text) == {
        "status": "FAILED",
        "message": "exit code 3",
        "startTime": "2026-12-02T04:12:08Z",
        "endTime": "2026-12-02T04:12:10Z",
    }
    assert json.loads(S.termination_message("RUNNING", "m", START_MS, None)) == {
        "status": "RUNNING",
        "message": "m",
        "startTime": "2026-12-02T04:12:08Z",
    }
    assert json.loads(S.termination_message("", "m", 0, None)) == {"status": "", "message": "m"}
    assert S.rfc3339(0) is None and S.rfc3339(None) is None and S.rfc3339(True) is None
    assert RFC3339.match(S.rfc3339(START_MS))


def test_a_long_message_is_cut_to_4096_bytes_keeping_both_ends() -> None:
    message = "Job entrypoint command failed with exit code 3, last available logs:\n"
    message += 'é"\\\x01 ' * 20_000 + "\nValueError: the real cause"
    text = S.termination_message("FAILED", message, START_MS, END_MS)
    assert len(text.encode("utf-8")) <= 4096
    assert len(text.encode("utf-8")) > 4000  # not cut more than needed
    document = json.loads(text)
    assert document["message"].startswith("Job entrypoint command failed with exit code 3")
    assert document["message"].endswith("ValueError: the real cause")
    assert "...[truncated]..." in document["message"]
    assert document["endTime"] == "2026-12-02T04:12:10Z"


@given(st.text(max_size=6000), st.text(max_size=80))
def test_termination_message_is_always_valid_json_within_the_limit(
    message: str, status: str
) -> None:
    text = S.termination_message(status, message, START_MS, END_MS)
    assert len(text.encode("utf-8")) <= 4096
    document = json.loads(text)
    assert document["status"] == status[:64]
    if len(json.dumps({"status": status[:64], "message": message})) < 4000:
        assert document["message"] == message


def test_an_unwritable_termination_log_does_not_change_the_exit_code(
    run: Run, tmp_path: Path
) -> None:
    client = FakeClient(["SUCCEEDED"])
    path = str(tmp_path / "missing-dir" / "log")
    assert run(client, METARAY_TERMINATION_LOG=path) == 0


def test_the_token_never_reaches_the_termination_message(run: Run) -> None:
    client = FakeClient([RuntimeError("Request failed: header Bearer s3cret-token rejected")])
    assert run(client, RAY_AUTH_TOKEN="s3cret-token") == 1
    assert "s3cret-token" not in run.log.read_text()


# --- stop mode ---------------------------------------------------------------------------------


def test_stop_mode_stops_and_waits_until_terminal(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient(["RUNNING", "RUNNING", "STOPPED"])
    assert run(client, METARAY_SUBMITTER_MODE="stop", METARAY_ENTRYPOINT="") == 0
    assert client.stopped == ["job-1"]
    assert client.submitted == []
    assert run.message()["status"] == "STOPPED"
    assert capsys.readouterr().out == ""


def test_stop_mode_for_an_unknown_job_exits_0(run: Run) -> None:
    client = FakeClient([not_found()], stop_answer=not_found())
    assert run(client, METARAY_SUBMITTER_MODE="stop") == 0
    assert run.message()["status"] == ""


def test_stop_mode_for_a_finished_job_exits_0(run: Run) -> None:
    client = FakeClient(["SUCCEEDED"], stop_answer=False)
    assert run(client, METARAY_SUBMITTER_MODE="stop") == 0
    assert run.message()["status"] == "SUCCEEDED"


def test_stop_mode_gives_up_after_the_wait(run: Run) -> None:
    client = FakeClient(["RUNNING"])
    assert run(client, METARAY_SUBMITTER_MODE="stop", METARAY_DASHBOARD_WAIT_SECONDS="6") == 1
    assert run.clock == 6.0
    assert "still RUNNING after 6 s" in run.message()["message"]


def test_stop_mode_waits_60_s_by_default(run: Run) -> None:
    client = FakeClient(["RUNNING"])
    assert run(client, METARAY_SUBMITTER_MODE="stop") == 1
    assert run.clock == 60.0


def test_stop_mode_errors_exit_1(run: Run) -> None:
    client = FakeClient(["RUNNING"], stop_answer=RuntimeError("status code 500: no agent"))
    assert run(client, METARAY_SUBMITTER_MODE="stop") == 1


# --- the script as a pod runs it ---------------------------------------------------------------


def test_the_exit_codes_the_core_reads_are_the_scripts() -> None:
    exits = (S.SUCCEEDED_EXIT, S.FAILED_EXIT, S.STOPPED_EXIT, S.NOT_FOUND_EXIT, S.ERROR_EXIT)
    assert exits == (
        app.submitter.SUCCEEDED_EXIT,
        app.submitter.FAILED_EXIT,
        app.submitter.STOPPED_EXIT,
        app.submitter.NOT_FOUND_EXIT,
        app.submitter.ERROR_EXIT,
    )


def test_the_script_needs_only_the_standard_library_and_ray() -> None:
    tree = ast.parse(app.submitter.source(), feature_version=(3, 8))  # old images' Pythons
    top: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            top.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            top.add((node.module or "").split(".")[0])
    assert top - set(sys.stdlib_module_names) == {"ray"}
    # Ray is imported lazily, inside a function, never at module level.
    assert not any(
        isinstance(node, ast.Import | ast.ImportFrom)
        and any(n.startswith("ray") for n in _imported(node))
        for node in tree.body
    )


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("how", ["-c", "file"])
def test_the_script_runs_standalone(how: str, tmp_path: Path) -> None:
    """As `python -c "<source>"` and as a file; nobody listens, so it gives up and exits 1."""
    log = tmp_path / "termination-log"
    env = {
        "RAY_DASHBOARD_ADDRESS": f"127.0.0.1:{_free_loopback_port()}",
        "RAY_JOB_SUBMISSION_ID": "job-1",
        "METARAY_ENTRYPOINT": "python x.py",
        "METARAY_TERMINATION_LOG": str(log),
        "METARAY_DASHBOARD_WAIT_SECONDS": "0",
        "PATH": "/usr/bin:/bin",
    }
    script = tmp_path / "ray_job_submitter.py"
    script.write_text(app.submitter.source(), encoding="utf-8")
    argv = [sys.executable, "-c", app.submitter.source()] if how == "-c" else []
    argv = argv or [sys.executable, str(script)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "metaray-submitter: error: SubmitterError: the Ray dashboard at http://127.0.0.1:" in (
        done.stderr
    )
    assert json.loads(log.read_text())["status"] == ""
