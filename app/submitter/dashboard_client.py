"""The submitter script's dealings with the Ray dashboard: its health, Ray's client, calls bounded
in time, and what Ray's errors mean. A part of the one script ``app.submitter.source()`` joins:
the imports of ``app.submitter.config`` are globals of that script."""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from typing import Any

from app.submitter.config import (
    _UNREACHABLE_TYPES,
    HEALTH_TIMEOUT_SECONDS,
    POLL_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
    Config,
    _now,
    _sleep,
    say,
)

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
