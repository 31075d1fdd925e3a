"""metaray's Ray job submitter: submit one Ray job to a cluster's dashboard, follow it, and exit
with a code that says how the Ray job ended.

It runs as `python -c "<this file>"` in the stock rayproject/ray image (standard library and Ray
only), in a K8sJobMode submitter Job, as a SidecarMode container in the head pod, and (mode
`stop`) in a short Job that stops the job on a cluster metaray does not own.

`submit` (default): wait until GET <dashboard>/api/gcs_healthz answers "success" (every 2 s);
ask for the job's status and submit it only if the dashboard does not know the submission ID
(an ID that already exists is followed, never resubmitted, so a retried pod attaches to the
running job); stream the job's logs to stdout; read the final status and exit:

    0  SUCCEEDED     64  FAILED     65  STOPPED
    66 the job vanished: not found after it was submitted or seen (e.g. the head's GCS was wiped)
    1  any other error (transient: the Job's backoffLimit retries it)

On every exit it writes a JSON termination message (at most 4096 bytes) to
METARAY_TERMINATION_LOG (default /dev/termination-log):
{"status": <Ray job status or "">, "message": ..., "startTime": ..., "endTime": ...}.
`stop`: stop the job and wait (METARAY_DASHBOARD_WAIT_SECONDS, default 60 s) until it is
terminal; exit 0 (also when the job is unknown or already over), 1 on errors.
Input is environment only (see `read_config`); the entrypoint never passes through a shell here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

SUCCEEDED_EXIT = 0
FAILED_EXIT = 64
STOPPED_EXIT = 65
NOT_FOUND_EXIT = 66
ERROR_EXIT = 1

TERMINATION_MESSAGE_LIMIT = 4096
POLL_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 30.0
SUBMIT_TIMEOUT_SECONDS = 300.0  # a submission may upload a local working_dir first
HEALTH_TIMEOUT_SECONDS = 10.0
STOP_WAIT_DEFAULT_SECONDS = 60.0
LOG_DRAIN_SECONDS = 2.0
MAX_CONSECUTIVE_ERRORS = 10

# Tuples, not `int | float`: the stock image's Python may be older than 3.10.
_NUMBER_TYPES = (int, float)
_UNREACHABLE_TYPES = (ConnectionError, TimeoutError)

TERMINAL_EXITS = {"SUCCEEDED": SUCCEEDED_EXIT, "FAILED": FAILED_EXIT, "STOPPED": STOPPED_EXIT}

# Seams for tests (as are gcs_healthy and make_client): the clock and sleeping.
_now = time.monotonic
_sleep = time.sleep


class ConfigError(Exception):
    """The environment does not describe a valid submission."""


class SubmitterError(Exception):
    """A failure that ends the submitter with exit code 1."""


@dataclass(frozen=True)
class Config:
    address: str
    submission_id: str
    entrypoint: str
    mode: str = "submit"
    runtime_env: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    resources: dict[str, float] | None = None
    termination_log: str = "/dev/termination-log"
    wait_seconds: float | None = None
    auth_token: str | None = None


def say(message: str) -> None:
    print("metaray-submitter: " + message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Configuration


def _env(environ: dict[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value else None


def _number(environ: dict[str, str], name: str) -> float | None:
    text = _env(environ, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {text[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0")
    return value


def _json_object(environ: dict[str, str], name: str) -> dict[str, Any] | None:
    text = _env(environ, name)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{name} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return value


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, _NUMBER_TYPES)


def read_config(environ: dict[str, str]) -> Config:
    """The submission, from the environment the Job (or sidecar container) sets."""
    address = _env(environ, "RAY_DASHBOARD_ADDRESS")
    if address is None:
        raise ConfigError("RAY_DASHBOARD_ADDRESS is not set")
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = "http://" + address
    submission_id = _env(environ, "RAY_JOB_SUBMISSION_ID")
    if submission_id is None:
        raise ConfigError("RAY_JOB_SUBMISSION_ID is not set")
    mode = _env(environ, "METARAY_SUBMITTER_MODE") or "submit"
    if mode not in ("submit", "stop"):
        raise ConfigError(f"METARAY_SUBMITTER_MODE must be 'submit' or 'stop', not {mode[:40]!r}")
    entrypoint = environ.get("METARAY_ENTRYPOINT", "")
    if mode == "submit" and not entrypoint.strip():
        raise ConfigError("METARAY_ENTRYPOINT is not set")
    metadata = _json_object(environ, "METARAY_METADATA_JSON")
    if metadata is not None and not all(isinstance(v, str) for v in metadata.values()):
        raise ConfigError("METARAY_METADATA_JSON must map names to strings")
    resources = _json_object(environ, "METARAY_ENTRYPOINT_RESOURCES")
    if resources is not None and not all(_is_number(v) for v in resources.values()):
        raise ConfigError("METARAY_ENTRYPOINT_RESOURCES must map names to numbers")
    wait = _number(environ, "METARAY_DASHBOARD_WAIT_SECONDS")
    return Config(
        address=address,
        submission_id=submission_id,
        entrypoint=entrypoint,
        mode=mode,
        runtime_env=_json_object(environ, "METARAY_RUNTIME_ENV_JSON"),
        metadata=metadata,
        num_cpus=_number(environ, "METARAY_ENTRYPOINT_NUM_CPUS"),
        num_gpus=_number(environ, "METARAY_ENTRYPOINT_NUM_GPUS"),
        resources=None if resources is None else {k: float(v) for k, v in resources.items()},
        termination_log=_env(environ, "METARAY_TERMINATION_LOG") or "/dev/termination-log",
        wait_seconds=wait,
        auth_token=_env(environ, "RAY_AUTH_TOKEN"),
    )


# ---------------------------------------------------------------------------------------------
# Termination message


def rfc3339(epoch_ms: object) -> str | None:
    """Ray's millisecond epoch as `YYYY-MM-DDTHH:MM:SSZ`; None when unknown."""
    if not _is_number(epoch_ms) or not epoch_ms:
        return None
    assert isinstance(epoch_ms, _NUMBER_TYPES)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000.0))


def _elide(text: str, keep: int) -> str:
    marker = " ...[truncated]... "
    if keep <= 0:
        return ""
    if keep <= len(marker) + 2:
        return text[:keep]
    head = (keep - len(marker)) // 3
    tail = keep - len(marker) - head
    return text[:head] + marker + text[len(text) - tail :]


def termination_message(
    status: str, message: str, start_ms: object = None, end_ms: object = None
) -> str:
    """The JSON termination message, at most TERMINATION_MESSAGE_LIMIT bytes (ASCII only).

    A long `message` keeps its beginning and its (usually more telling) end.
    """
    doc: dict[str, str] = {"status": status[:64], "message": message}
    start, end = rfc3339(start_ms), rfc3339(end_ms)
    if start is not None:
        doc["startTime"] = start
    if end is not None:
        doc["endTime"] = end
    text = json.dumps(doc)
    if len(text) <= TERMINATION_MESSAGE_LIMIT:
        return text
    low, high = 0, len(message)  # the longest kept length that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        doc["message"] = _elide(message, middle)
        if len(json.dumps(doc)) <= TERMINATION_MESSAGE_LIMIT:
            low = middle
        else:
            high = middle - 1
    doc["message"] = _elide(message, low)
    return json.dumps(doc)


def write_termination_log(config_path: str, text: str) -> None:
    try:
        with open(config_path, "w", encoding="ascii") as file:
            file.write(text)
    except OSError as error:
        say(f"could not write the termination message to {config_path}: {error}")


# ---------------------------------------------------------------------------------------------
# Talking to the dashboard


def _auth_headers(config: Config) -> dict[str, str]:
    return {"authorization": "Bearer " + config.auth_token} if config.auth_token else {}


def gcs_healthy(config: Config) -> bool:
    """Whether GET <dashboard>/api/gcs_healthz answers success (as KubeRay's submitter checks)."""
    request = urllib.request.Request(
        config.address + "/api/gcs_healthz", headers=_auth_headers(config)
    )
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT_SECONDS) as response:
            return int(response.status) == 200 and b"success" in response.read(4096)
    except Exception:
        return False


def wait_for_dashboard(config: Config, seconds: float | None) -> bool:
    """Poll the GCS health every POLL_SECONDS; False when `seconds` (None: forever) ran out."""
    deadline = None if seconds is None else _now() + seconds
    attempts = 0
    while not gcs_healthy(config):
        if deadline is not None and _now() >= deadline:
            return False
        if attempts % 15 == 0:
            say(f"waiting for the Ray dashboard's GCS to become healthy at {config.address} ...")
        attempts += 1
        _sleep(POLL_SECONDS)
    return True


def make_client(config: Config) -> Any:
    """A ray.job_submission.JobSubmissionClient for the dashboard (this asks for its version).
    Ray is imported here, in the main thread; only the network calls run in `bounded`."""
    from ray.job_submission import JobSubmissionClient

    # Keep stderr to our own progress lines (Ray's client logs each websocket close at INFO).
    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)

    # Ray lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the address given to the client
    # (and KubeRay sets RAY_ADDRESS=127.0.0.1:6379, the GCS, in head pods): ours is authoritative.
    for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        if os.environ.pop(name, None) is not None:
            say(f"ignoring {name}: the dashboard address is RAY_DASHBOARD_ADDRESS")
    # Ray's client sends RAY_AUTH_TOKEN only when RAY_AUTH_MODE=token; send it whenever it is set.
    headers = _auth_headers(config) or None
    return bounded(lambda: JobSubmissionClient(config.address, headers=headers))


def bounded(function: Any, *args: Any, timeout: float = REQUEST_TIMEOUT_SECONDS) -> Any:
    """function(*args) in a daemon thread, so that a dashboard that stopped answering (Ray's
    client sets no request timeout) cannot hang the submitter; TimeoutError after `timeout`."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, function(*args)))
        except BaseException as error:
            outcome.append((False, error))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError(f"no answer from the Ray dashboard within {timeout:g} s")
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value


def is_not_found(error: BaseException) -> bool:
    """Ray's client raises RuntimeError('Request failed with status code 404: ...')."""
    return "status code 404" in str(error)


def is_duplicate(error: BaseException) -> bool:
    """Ray refuses a submission ID it already has with '... already exists. Please use a
    different submission_id.' (a 500 wrapping the agent's 400)."""
    text = str(error)
    return "already exists" in text and "submission_id" in text


def is_unreachable(error: BaseException) -> bool:
    """Connection errors and timeouts: the dashboard (or its head) is down or restarting."""
    if isinstance(error, _UNREACHABLE_TYPES):
        return True
    module = type(error).__module__
    return module.startswith("requests") or module.startswith("urllib3")


def status_name(status: object) -> str:
    return str(getattr(status, "value", status) or "")


def short_error(error: BaseException, config: Config | None = None) -> str:
    """One line about an error, never the auth token."""
    lines = str(error).strip().splitlines()
    text = type(error).__name__ + (": " + lines[0] if lines else "")
    if config is not None and config.auth_token:
        text = text.replace(config.auth_token, "<redacted>")
    return text[:500]


# ---------------------------------------------------------------------------------------------
# Logs


class LogSink:
    """Writes streamed log chunks to stdout and counts them, until closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written = 0
        self.closed = False
        self.error: BaseException | None = None

    def write(self, chunk: str) -> None:
        with self.lock:
            if self.closed:
                return
            sys.stdout.write(chunk)
            sys.stdout.flush()
            self.written += len(chunk)

    def close(self) -> None:
        with self.lock:
            self.closed = True


def start_log_tail(client: Any, submission_id: str, sink: LogSink) -> threading.Thread:
    """Follow the job's logs (Ray's websocket tail) to `sink` in a daemon thread."""

    async def follow() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            sink.write(chunk)

    def run() -> None:
        try:
            asyncio.run(follow())
        except BaseException as error:
            sink.error = error

    tail = threading.Thread(target=run, daemon=True)
    tail.start()
    return tail


def finish_logs(
    client: Any, submission_id: str, sink: LogSink, tail: threading.Thread | None
) -> None:
    """Give the stream LOG_DRAIN_SECONDS to end, then print from the job's full log whatever it
    did not show: Ray's stream lingers for seconds after the job ended, sends nothing for a job
    that was over when first seen (then there is no stream at all), and may break."""
    if tail is not None:
        tail.join(LOG_DRAIN_SECONDS)
    sink.close()
    if sink.error is not None:
        say(f"the log stream broke ({short_error(sink.error)}); printing the rest of the log")
    if tail is not None and not tail.is_alive() and sink.error is None and sink.written:
        return
    try:
        logs = str(bounded(client.get_job_logs, submission_id) or "")
    except Exception as error:
        say(f"could not read the job's log: {short_error(error)}")
        return
    sys.stdout.write(logs[sink.written :])
    sys.stdout.flush()


def _pause(tail: threading.Thread | None) -> None:
    """Wait POLL_SECONDS, or less when the log stream ends (the job is likely over then)."""
    if tail is not None and tail.is_alive():
        tail.join(POLL_SECONDS)
    else:
        _sleep(POLL_SECONDS)


# ---------------------------------------------------------------------------------------------
# Modes


def _finish(config: Config, code: int, status: str, message: str, info: Any = None) -> int:
    start = getattr(info, "start_time", None)
    end = getattr(info, "end_time", None)
    write_termination_log(config.termination_log, termination_message(status, message, start, end))
    return code


def submit_if_absent(config: Config, client: Any) -> None:
    """Status first; submit only when the dashboard does not know the submission ID."""
    try:
        info = bounded(client.get_job_info, config.submission_id)
    except Exception as error:
        if not is_not_found(error):
            raise
    else:
        say(
            f"job {config.submission_id} already exists ({status_name(info.status)}): "
            "following it, not submitting it again"
        )
        return
    say(f"submitting job {config.submission_id}")
    try:
        bounded(
            lambda: client.submit_job(
                entrypoint=config.entrypoint,
                submission_id=config.submission_id,
                runtime_env=config.runtime_env,
                metadata=config.metadata,
                entrypoint_num_cpus=config.num_cpus,
                entrypoint_num_gpus=config.num_gpus,
                entrypoint_resources=config.resources,
            ),
            timeout=SUBMIT_TIMEOUT_SECONDS,
        )
    except Exception as error:
        if is_duplicate(error):
            say(f"job {config.submission_id} was submitted meanwhile (a race): following it")
            return
        # An answer lost on the way back may hide a submission that did happen: look again.
        try:
            bounded(client.get_job_info, config.submission_id)
        except Exception:
            raise error from None
        say(f"job {config.submission_id} exists although its submission failed: following it")


def follow(config: Config, client: Any) -> int:
    """Stream the job's logs and poll its status until it is terminal or gone."""
    sink = LogSink()
    tail: threading.Thread | None = None  # started once the job is seen not to be over
    errors = 0
    last = ""
    while True:
        try:
            info = bounded(client.get_job_info, config.submission_id)
        except Exception as error:
            if is_not_found(error):
                sink.close()
                message = (
                    f"Ray job {config.submission_id} is not found any more (last seen "
                    f"{last or 'submitted'}): the Ray head may have restarted and lost it"
                )
                say(message)
                return _finish(config, NOT_FOUND_EXIT, "", message)
            errors += 1
            if errors >= MAX_CONSECUTIVE_ERRORS:
                raise
            say(f"could not read the job's status ({short_error(error, config)}); retrying")
            if not is_unreachable(error):
                _pause(tail)
            elif not wait_for_dashboard(config, config.wait_seconds):
                raise SubmitterError("the Ray dashboard did not come back") from error
            continue
        errors = 0
        status = status_name(info.status)
        if status != last:
            say(f"job {config.submission_id} is {status}")
            last = status
        if status in TERMINAL_EXITS:
            finish_logs(client, config.submission_id, sink, tail)
            message = str(getattr(info, "message", None) or "")
            return _finish(config, TERMINAL_EXITS[status], status, message, info)
        if tail is None:
            tail = start_log_tail(client, config.submission_id, sink)
        _pause(tail)


def run_submit(config: Config) -> int:
    if not wait_for_dashboard(config, config.wait_seconds):
        raise SubmitterError(f"the Ray dashboard at {config.address} did not become healthy")
    client = make_client(config)
    submit_if_absent(config, client)
    return follow(config, client)


def run_stop(config: Config) -> int:
    seconds = STOP_WAIT_DEFAULT_SECONDS if config.wait_seconds is None else config.wait_seconds
    deadline = _now() + seconds
    if not wait_for_dashboard(config, seconds):
        raise SubmitterError(f"the Ray dashboard at {config.address} did not become healthy")
    client = make_client(config)
    try:
        stopped = bounded(client.stop_job, config.submission_id)
    except Exception as error:
        if not is_not_found(error):
            raise
        say(f"job {config.submission_id} is not known to the cluster: nothing to stop")
        return _finish(config, 0, "", f"Ray job {config.submission_id} not found")
    say(f"asked job {config.submission_id} to stop" if stopped else "the job was not running")
    while True:
        try:
            info = bounded(client.get_job_info, config.submission_id)
        except Exception as error:
            if not is_not_found(error):
                raise
            return _finish(config, 0, "", f"Ray job {config.submission_id} not found")
        status = status_name(info.status)
        if status in TERMINAL_EXITS:
            say(f"job {config.submission_id} is {status}")
            message = str(getattr(info, "message", None) or "")
            return _finish(config, 0, status, message, info)
        if _now() >= deadline:
            raise SubmitterError(
                f"job {config.submission_id} is still {status} after {seconds:g} s"
            )
        _sleep(POLL_SECONDS)


def main(environ: dict[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    config: Config | None = None
    try:
        config = read_config(environ)
        say(f"{config.mode} job {config.submission_id} at {config.address}")
        return run_stop(config) if config.mode == "stop" else run_submit(config)
    except Exception as error:
        text = short_error(error, config)
        say("error: " + text)
        path = config.termination_log if config else environ.get("METARAY_TERMINATION_LOG")
        write_termination_log(path or "/dev/termination-log", termination_message("", text))
        return ERROR_EXIT


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: a log stream or a request that still hangs in a daemon thread must neither
    # hold the exit nor write while the interpreter shuts down.
    os._exit(exit_code)
