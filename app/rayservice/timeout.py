"""``ray.io/initializing-timeout``, as KubeRay: a RayService whose Ready condition stays
False/Initializing for longer than the annotation says gives up — both cluster names are
cleared, Ready becomes False/InitializingTimeout, a Warning ``RayServiceInitializingTimeout`` is
sent, and every cluster is deleted after ``rayClusterDeletionDelaySeconds``. That is terminal:
a spec change does not recover it; delete and re-create the RayService, or suspend and resume.

The time is measured from the Ready condition's ``lastTransitionTime`` in the observed status,
so a restart of metaray neither restarts nor forgets it. The deletions are two-phase like every
other: listed with a deadline in ``rayClustersToDelete`` first, deleted by a later sync whose
parent holds the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from app.core.desired import Desired
from app.core.events import NORMAL, Event
from app.core.observed import Child, Observed, ObservedObject
from app.core.time import later, parse_time, stamp
from app.raycluster.spec import JSONObject
from app.raycluster.status import condition
from app.rayservice.plan import ACTIVE, PENDING, TO_DELETE, listed
from app.rayservice.spec import INITIALIZING_TIMEOUT, RayService, timeout_seconds
from app.rayservice.status import INITIALIZING, Condition, conditions_of, finish, previous_condition

TIMED_OUT = "InitializingTimeout"
REASON = "RayServiceInitializingTimeout"


def timed_out(previous: Mapping[str, Any]) -> bool:
    ready = previous_condition(previous, Condition.READY)
    return ready is not None and ready.get("reason") == TIMED_OUT


def deadline(rs: RayService, previous: Mapping[str, Any]) -> datetime | None:
    """When an initializing RayService gives up; None without the annotation or once Ready
    is anything but False/Initializing."""
    value = rs.annotations.get(INITIALIZING_TIMEOUT)
    seconds = timeout_seconds(value) if value is not None else None
    ready = previous_condition(previous, Condition.READY)
    if seconds is None or ready is None or ready.get("reason") != INITIALIZING:
        return None
    since = parse_time(ready.get("lastTransitionTime"))
    return None if since is None else since + timedelta(seconds=seconds)


def give_up(
    rs: RayService, previous: Mapping[str, Any], clusters: list[str], now: datetime
) -> tuple[JSONObject, str]:
    """The status that gives up (every cluster listed for deletion), and the Event's message."""
    ready = previous_condition(previous, Condition.READY) or {}
    since = parse_time(ready.get("lastTransitionTime")) or now
    value = rs.annotations.get(INITIALIZING_TIMEOUT, "")
    configured = go_duration(timeout_seconds(value) or 0.0)
    message = (
        f"RayService failed to become ready within the configured timeout of {configured}. "
        f"Time spent initializing: {go_duration((now - since).total_seconds())}"
    )
    status = dict(previous)
    status[ACTIVE], status[PENDING] = {}, {}
    status["numServeEndpoints"], status["serviceStatus"] = 0, ""
    status["conditions"] = [
        condition(Condition.READY, "False", TIMED_OUT, message, previous, stamp(now)),
        *(c for c in conditions_of(previous) if c.get("type") != Condition.READY),
    ]
    status[TO_DELETE] = _entries(rs, previous, clusters, now)
    return status, message


def after(
    rs: RayService,
    previous: Mapping[str, Any],
    observed: Observed,
    clusters: Mapping[str, Any],
    now: datetime,
) -> tuple[list[Child], JSONObject, list[str], list[datetime]]:
    """A RayService that gave up: the clusters kept until their deadline (those listed in the
    observed status and due are left out, i.e. deleted), the Services echoed, the status, the
    clusters deleted by this answer and the deadlines still ahead."""
    before = listed(previous)
    status = dict(previous)
    live = [n for n, c in clusters.items() if c.metadata.deletionTimestamp is None]
    entries = _entries(rs, previous, live, now)
    status[TO_DELETE] = [e for e in entries if e["name"] in clusters]
    if not status[TO_DELETE]:
        status.pop(TO_DELETE)
    deleted, ahead = [], []
    for entry in entries:
        due = parse_time(entry["deleteAfter"])
        if entry["name"] in before and due is not None and due <= now:
            deleted.append(entry["name"])
        elif due is not None and due > now:
            ahead.append(due)
    kept = [
        child
        for key, child in sorted(observed.applied.items())
        if key[1] not in deleted or key[0] != "RayCluster.ray.io/v1"
    ]
    return kept, status, [n for n in deleted if n in live], ahead


def _entries(
    rs: RayService, previous: Mapping[str, Any], clusters: list[str], now: datetime
) -> list[JSONObject]:
    before = listed(previous)
    due = stamp(later(now, rs.deletion_delay) or now)
    names = sorted(set(before) | set(clusters))
    return [{"deleteAfter": before.get(n, due), "name": n} for n in names]


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for whole and fractional seconds: 90 -> ``1m30s``."""
    whole = int(seconds)
    fraction = round(seconds - whole, 3)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs + fraction:g}s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def gave_up(
    rs: RayService,
    previous: Mapping[str, Any],
    observed: Observed,
    clusters: Mapping[str, ObservedObject],
    now: datetime,
) -> Desired:
    """Terminal after ``ray.io/initializing-timeout``: the clusters go once their time has come."""
    kept, status, deleted, ahead = after(rs, previous, observed, clusters, now)
    events = [
        Event(NORMAL, "DeletedRayCluster", f"Deleted RayCluster {rs.namespace}/{n}")
        for n in deleted
    ]
    resync = max((min(ahead) - now).total_seconds(), 0.0) + 1 if ahead else None
    return Desired(
        kept, finish(previous, status, rs.generation, now), tuple(events), resync_after=resync
    )
