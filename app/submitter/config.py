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

import json
import math
import sys
import time
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
