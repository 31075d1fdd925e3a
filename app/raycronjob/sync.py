"""The RayCronJob controller's sync hook: which runs (RayJobs) exist, which is created next.

Pure: the RayCronJob, its observed RayJobs and the shell's clock in; the desired RayJobs, the
status, Event intents and the next tick (``resyncAfterSeconds``) out.

Two-phase, because Metacontroller may sync a parent whose status is a write or two old and
writes the status from what it synced:

1. *Decide*: the newest tick in (watermark, now] is due; if nothing forbids it, the answer
   records it as ``status.pendingScheduleTime`` and creates nothing.
2. *Create*: a sync whose observed parent holds that tick answers its RayJob, as long as the
   tick is newer than every run observed and than ``status.lastScheduleTime``. Once the run is
   observed, ``lastScheduleTime`` moves to its tick and the pending tick is dropped.

The watermark is the newest of the creation time, ``lastScheduleTime`` and the ticks of the
observed runs, so a replayed or stale sync cannot create a tick's run twice: the newest run is
never deleted by metaray (history limits spare it), so its tick stays observed. A running run
is deleted only for ``concurrencyPolicy: Replace``, and only once a newer run created under
that policy (it says so in an annotation) is observed: the children decide, never a stale
status. An invalid spec keeps every RayJob as last asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from app.core.desired import Desired
from app.core.events import NORMAL, WARNING, Event
from app.core.observed import Child, Observed
from app.core.time import parse_time, stamp
from app.raycluster.problems import InvalidSpec
from app.raycronjob.runs import RAYJOB, RAYJOB_API, Outcome, Run, observe, rayjob
from app.raycronjob.spec import ConcurrencyPolicy, RayCronJob, parse_raycronjob

LAST = "lastScheduleTime"
PENDING = "pendingScheduleTime"
SUCCESS = "lastSuccessfulTime"


def sync(parent: Mapping[str, Any], observed: Observed, now: datetime) -> Desired:
    previous = parent.get("status")
    previous = previous if isinstance(previous, Mapping) else {}
    jobs = observed.of_kind(RAYJOB)
    runs = [observe(job) for job in jobs]
    namespace = _namespace(parent)
    try:
        cron = parse_raycronjob(parent)
    except InvalidSpec as invalid:
        status = _status(previous, runs, namespace, _time(previous, PENDING))
        status["message"] = str(invalid)
        event = Event(WARNING, "InvalidRayCronJobSpec", f"Invalid RayCronJob spec: {invalid}")
        return Desired(_echo(observed, (r.name for r in runs)), status, (event,))
    anchor = _anchor(parent, previous, runs, now)
    watermark = max([anchor, *_known(_time(previous, LAST)), *_ticks(runs)])
    pending = _time(previous, PENDING)
    events: list[Event] = []
    create: datetime | None = None
    resync: list[datetime] = []
    if pending is not None and pending > watermark:
        create, pending = _act(cron, anchor, pending, now, events, resync)
    elif pending is not None:
        pending = None  # its run has been observed
    if create is None and pending is None:
        pending = _decide(cron, watermark, runs, now, events)
    kept, gone = _keep(cron, runs)
    children = _echo(observed, (r.name for r in kept))
    if create is not None:
        child = rayjob(cron, create)
        children.append(child)
        name = child["metadata"]["name"]
        message = f"Created RayJob {cron.namespace}/{name} for the tick {stamp(create)}"
        events.append(Event(NORMAL, "CreatedRayJob", message))
    for run, why in gone:
        message = f"Deleted RayJob {cron.namespace}/{run.name}: {why}"
        events.append(Event(NORMAL, "DeletedRayJob", message))
    status = _status(previous, kept, cron.namespace, pending)
    if not cron.spec.suspend:
        upcoming = cron.schedule.following(anchor, now)
        resync += _known(upcoming)
    return Desired(children, status, tuple(events), resync_after=_seconds_until(resync, now))


def _act(
    cron: RayCronJob,
    anchor: datetime,
    pending: datetime,
    now: datetime,
    events: list[Event],
    resync: list[datetime],
) -> tuple[datetime | None, datetime | None]:
    """(the tick to create now, the pending tick to keep) for a decided, uncreated tick."""
    when = stamp(pending)
    if cron.spec.suspend:
        events.append(
            Event(NORMAL, "SuspendedRayCronJob", f"Not running the tick {when}: suspended")
        )
        return None, None
    if not cron.schedule.is_tick(anchor, pending):
        events.append(
            Event(NORMAL, "ScheduleChanged", f"Not running the tick {when}: no longer scheduled")
        )
        return None, None
    if _too_late(cron, pending, now):
        events.append(_missed(pending))
        return None, None
    if pending > now:  # decided by a replica whose clock runs ahead: wait for the tick
        resync.append(pending)
        return None, pending
    return pending, pending


def _decide(
    cron: RayCronJob, watermark: datetime, runs: list[Run], now: datetime, events: list[Event]
) -> datetime | None:
    """The tick to record as pending, if one is due and may run."""
    due = cron.schedule.latest(watermark, now)
    if due is None:
        return None
    when = stamp(due)
    if cron.spec.suspend:
        events.append(
            Event(NORMAL, "SuspendedRayCronJob", f"Not running the tick {when}: suspended")
        )
        return None
    if _too_late(cron, due, now):
        events.append(_missed(due))
        return None
    active = sorted(r.name for r in runs if r.active)
    if cron.policy == ConcurrencyPolicy.FORBID and active:
        message = f"Not running the tick {when} yet: RayJob {active[-1]} is still active"
        events.append(Event(NORMAL, "JobAlreadyActive", message))
        return None
    return due


def _too_late(cron: RayCronJob, tick: datetime, now: datetime) -> bool:
    deadline = cron.spec.startingDeadlineSeconds
    return deadline is not None and (now - tick).total_seconds() > deadline


def _missed(tick: datetime) -> Event:
    message = f"Missed the tick {stamp(tick)}: past startingDeadlineSeconds"
    return Event(WARNING, "MissedSchedule", message)


def _keep(cron: RayCronJob, runs: list[Run]) -> tuple[list[Run], list[tuple[Run, str]]]:
    """The runs to keep, and those to delete with why: active runs replaced by a newer one,
    finished runs beyond their history limit. The newest run is always kept (the watermark)."""
    dated = [r for r in runs if r.tick is not None]
    newest = max(dated, key=_tick).name if dated else None
    replacing = [r.tick for r in dated if r.replaces and r.outcome != Outcome.GONE]
    gone: list[tuple[Run, str]] = []
    for run in dated:
        if run.active and run.name != newest and any(t > _tick(run) for t in replacing if t):
            gone.append((run, "replaced by a newer run (concurrencyPolicy Replace)"))
    limits = (
        (Outcome.SUCCEEDED, cron.spec.successfulJobsHistoryLimit, "successfulJobsHistoryLimit"),
        (Outcome.FAILED, cron.spec.failedJobsHistoryLimit, "failedJobsHistoryLimit"),
    )
    for outcome, limit, field in limits:
        if limit is None:
            continue
        finished = sorted((r for r in dated if r.outcome == outcome), key=_tick, reverse=True)
        for run in finished[limit:]:
            if run.name != newest:
                gone.append((run, f"beyond {field} ({limit})"))
    names = {run.name for run, _ in gone}
    return [r for r in runs if r.name not in names], sorted(gone, key=lambda g: g[0].name)


def _status(
    previous: Mapping[str, Any], runs: list[Run], namespace: str, pending: datetime | None
) -> dict[str, Any]:
    """From the observed runs and what the status already held; never a desired run."""
    status: dict[str, Any] = {}
    last = max([*_known(_time(previous, LAST)), *_ticks(runs)], default=None)
    if last is not None:
        status[LAST] = stamp(last)
    if pending is not None and (last is None or pending > last):
        status[PENDING] = stamp(pending)
    ended = [r.ended for r in runs if r.outcome == Outcome.SUCCEEDED and r.ended is not None]
    success = max([*_known(_time(previous, SUCCESS)), *ended], default=None)
    if success is not None:
        status[SUCCESS] = stamp(success)
    active = sorted(r.name for r in runs if r.active)
    if active:
        status["active"] = [
            {"apiVersion": RAYJOB_API, "kind": "RayJob", "name": n, "namespace": namespace}
            for n in active
        ]
    return status


def _anchor(
    parent: Mapping[str, Any], previous: Mapping[str, Any], runs: list[Run], now: datetime
) -> datetime:
    """When the schedule starts: the creation time (the first run is the first tick after it,
    as in KubeRay); failing that, the oldest time the status or the runs know, else now."""
    metadata = parent.get("metadata")
    created = (
        parse_time(metadata.get("creationTimestamp")) if isinstance(metadata, Mapping) else None
    )
    if created is not None:
        return created
    return min([*_known(_time(previous, LAST)), *_ticks(runs)], default=now)


def _echo(observed: Observed, names: Iterable[str]) -> list[Child]:
    return [observed.applied[(RAYJOB, n)] for n in sorted(names) if (RAYJOB, n) in observed.applied]


def _namespace(parent: Mapping[str, Any]) -> str:
    metadata = parent.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return namespace if isinstance(namespace, str) and namespace else "default"


def _time(status: Mapping[str, Any], key: str) -> datetime | None:
    return parse_time(status.get(key))


def _ticks(runs: Iterable[Run]) -> list[datetime]:
    return [r.tick for r in runs if r.tick is not None]


def _tick(run: Run) -> datetime:
    assert run.tick is not None
    return run.tick


def _known(moment: datetime | None) -> list[datetime]:
    return [] if moment is None else [moment]


def _seconds_until(moments: list[datetime], now: datetime) -> int | None:
    """Whole seconds to the first moment, at least 1 (a tick is never looked at early)."""
    if not moments:
        return None
    return max(1, math.ceil((min(moments) - now).total_seconds()))
