"""What the Ray dashboards say and where they are: addresses, a Ray job's info, the outcomes a
request is counted under. No I/O: shared by the job poller (``poller.py``) and the Serve poller
(``serve.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from app.rayjob.dashboard import STATES, JobInfo

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_BODY = 1 << 20  # a job's info is a few KiB; a larger answer is garbage
REFUSAL_BYTES = 1024  # of a refused submission's answer, kept for the RayJob's status
GET, SUBMIT, STOP = "get", "submit", "stop"
OK, NOT_FOUND, ERROR, TIMEOUT = "ok", "not_found", "error", "timeout"


class Counters(Protocol):
    """What the client reports (``app.shell.observability.metrics.DashboardMetrics``)."""

    def request(self, call: str, outcome: str, seconds: float) -> None: ...

    def watched(self, count: int) -> None: ...

    def refused(self) -> None: ...


class NoCounters:
    def request(self, call: str, outcome: str, seconds: float) -> None:
        pass

    def watched(self, count: int) -> None:
        pass

    def refused(self) -> None:
        pass


def base_url(url: str) -> str:
    """``status.dashboardURL`` is ``host:port`` (no scheme, as KubeRay writes it)."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def shown(url: str) -> str:
    """The url for a log line: without user information (it may hold a password)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def job_path(job_id: str) -> str:
    return f"/api/jobs/{quote(job_id, safe='')}"


def stamp_ms(value: Any) -> str | None:
    """Ray's milliseconds since the epoch as RFC 3339 seconds; None for 0, absent or junk."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        moment = datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime(FORMAT)


def job_info(body: bytes) -> JobInfo | None:
    """The fields metaray reads from ``GET /api/jobs/<id>``, or None when it is garbage."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("status") not in STATES:
        return None
    message = data.get("message")
    return JobInfo(
        status=data["status"],
        message=message if isinstance(message, str) else "",
        start_time=stamp_ms(data.get("start_time")),
        end_time=stamp_ms(data.get("end_time")),
    )


def said(body: bytes) -> str:
    """The start of a dashboard's answer, as text for a status message (Ray explains a refused
    submission in it: a bad runtime env, a resource no node has); the core caps it again."""
    return body[:REFUSAL_BYTES].decode("utf-8", "replace").strip()
