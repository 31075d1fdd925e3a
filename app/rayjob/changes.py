"""The Events a RayJob's answer tells of: the children it creates and deletes."""

from __future__ import annotations

from app.core.events import NORMAL, Event
from app.core.observed import Child, Observed
from app.rayjob.cluster import RAYCLUSTER_KIND
from app.rayjob.kinds import JOB, RAYCLUSTER, SERVICE
from app.rayjob.spec import RayJob

_CREATED = {
    RAYCLUSTER: "CreatedRayCluster",
    JOB: "CreatedRayJobSubmitter",
    SERVICE: "CreatedService",
}
_DELETED = {RAYCLUSTER: "DeletedRayCluster", JOB: "DeletedRayJobSubmitter"}


def changes(rayjob: RayJob, observed: Observed, children: list[Child]) -> list[Event]:
    """Created and Deleted events, from the difference between observed and answered."""
    answered = {(_key(c), str(c["metadata"]["name"])) for c in children}
    events = []
    for kind, name in sorted(answered - set(observed.keys())):
        if kind in _CREATED:
            what = _what(kind)
            events.append(
                Event(NORMAL, _CREATED[kind], f"Created {what} {rayjob.namespace}/{name}")
            )
    live = {
        (k, o.name)
        for k in _DELETED
        for o in observed.of_kind(k)
        if not o.metadata.deletionTimestamp
    }
    for kind, name in sorted(live - answered):
        events.append(
            Event(NORMAL, _DELETED[kind], f"Deleted {_what(kind)} {rayjob.namespace}/{name}")
        )
    return events


def _what(kind: str) -> str:
    return {RAYCLUSTER: RAYCLUSTER_KIND, JOB: "submitter Job", SERVICE: "Service"}[kind]


def _key(child: Child) -> str:
    return f"{child['kind']}.{child['apiVersion']}"
