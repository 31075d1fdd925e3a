"""What one hook answer does to its parent, in the terms the logs and metrics report it.

A RayCluster answer is told in pods (observed, answered, created and deleted with a reason);
a RayJob answer (the ``rayjob_*`` hooks) in the children it adds and deletes (its RayCluster,
submitter Job and Service), with the ``jobDeploymentStatus`` as its state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.core import kinds
from app.core.desired import Desired
from app.core.observed import Child, Observed, RawChild
from app.hooks.request import SyncRequest
from app.raycluster.reasons import GROUP_REMOVED, SUSPENDED, TEMPLATE_CHANGED, WORKERS_TO_DELETE

OK = "ok"
INVALID_SPEC = "invalid_spec"
BAD_REQUEST = "bad_request"
ERROR = "error"
# Why a pod left the answer, as a metric label: from the plan's Removal.why.
_DELETE_REASONS = {
    WORKERS_TO_DELETE: "workers_to_delete",
    GROUP_REMOVED: "group_removed",
    SUSPENDED: "suspended",
    TEMPLATE_CHANGED: "template_changed",
}
CLUSTER_DELETED = "cluster_deleted"
RAYCLUSTER = "RayCluster"
RAYJOB = "RayJob"
RAYJOB_HOOK_PREFIX = "rayjob_"
# A RayCronJob answer (the ``raycronjob_*`` hooks) is told like a RayJob's: in children.
RAYCRONJOB = "RayCronJob"
RAYCRONJOB_HOOK_PREFIX = "raycronjob_"
RAYSERVICE = "RayService"
RAYSERVICE_HOOK_PREFIX = "rayservice_"
# The RayJob core's Warning reasons for a spec it cannot act on (answered unchanged).
_INVALID_REASONS = frozenset(
    {
        "InvalidRayClusterSpec",
        "InvalidRayJobSpec",
        "InvalidRayJobMetadata",
        "InvalidRayCronJobSpec",
        "InvalidRayServiceSpec",
        "InvalidRayServiceMetadata",
    }
)


def kind_of(hook: str) -> str:
    """The parent kind a hook answers for: ``rayjob_*`` a RayJob, ``raycronjob_*`` a
    RayCronJob, ``rayservice_*`` a RayService, any other a RayCluster."""
    if hook.startswith(RAYCRONJOB_HOOK_PREFIX):
        return RAYCRONJOB
    if hook.startswith(RAYSERVICE_HOOK_PREFIX):
        return RAYSERVICE
    return RAYJOB if hook.startswith(RAYJOB_HOOK_PREFIX) else RAYCLUSTER


@dataclass(frozen=True, slots=True)
class Identity:
    """The parent an answer is about; empty strings where the request lacks a field."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int | None = None

    @classmethod
    def of(cls, parent: Mapping[str, Any]) -> Identity:
        meta = parent.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        generation = meta.get("generation")
        name, namespace, uid = (str(meta.get(key) or "") for key in ("name", "namespace", "uid"))
        return cls(name, namespace, uid, generation if isinstance(generation, int) else None)


@dataclass(frozen=True, slots=True)
class Answer:
    hook: str
    cluster: Identity
    observed_pods: int
    desired_pods: int
    created: tuple[tuple[str, str], ...]  # (kind, name) of children the answer adds
    deleted: tuple[tuple[str, str], ...]  # (pod name, reason label) of pods it leaves out
    state: str
    outcome: str
    finalized: bool | None
    kind: str = RAYCLUSTER  # the parent's kind: RayCluster or RayJob
    # RayJob answers: (kind, name) of the live children they leave out (RayCluster, Job).
    deleted_children: tuple[tuple[str, str], ...] = ()
    observed_children: int = 0
    desired_children: int = 0
    delete_parent: bool = False  # the parent itself is due for deletion (DeleteSelf)


def summarize(hook: str, request: SyncRequest, desired: Desired) -> Answer:
    created = _created(request.observed, desired)
    invalid = any(event.reason in _INVALID_REASONS for event in desired.events)
    if kind_of(hook) != RAYCLUSTER:
        return _rayjob(hook, request, desired, created, invalid)
    state = desired.status.get("state")
    return Answer(
        hook=hook,
        cluster=Identity.of(request.parent),
        observed_pods=len(request.observed.pods),
        desired_pods=_answered_pods(request.observed, desired, created),
        created=created,
        deleted=_deleted(hook, request.observed, desired),
        state=state if isinstance(state, str) else "",
        outcome=INVALID_SPEC if invalid else OK,
        finalized=desired.finalized,
    )


def _rayjob(
    hook: str,
    request: SyncRequest,
    desired: Desired,
    created: tuple[tuple[str, str], ...],
    invalid: bool,
) -> Answer:
    """A RayJob (or RayService) answer: children rather than pods, and jobDeploymentStatus
    (serviceStatus) as its state."""
    observed = request.observed
    kind = kind_of(hook)
    state = desired.status.get("serviceStatus" if kind == RAYSERVICE else "jobDeploymentStatus")
    return Answer(
        hook=hook,
        cluster=Identity.of(request.parent),
        observed_pods=len(observed.pods),
        desired_pods=0,
        created=created,
        deleted=(),
        state=state if isinstance(state, str) else "",
        outcome=INVALID_SPEC if invalid else OK,
        finalized=desired.finalized,
        kind=kind,
        deleted_children=_deleted_children(observed, desired),
        observed_children=_count(observed),
        desired_children=len(desired.children),
        delete_parent=desired.delete_parent,
    )


def _deleted_children(observed: Observed, desired: Desired) -> tuple[tuple[str, str], ...]:
    """(kind, name) of live observed children other than pods the answer leaves out."""
    answered = {
        (f"{child['kind']}.{child['apiVersion']}", _name(child)) for child in desired.children
    }
    return tuple(
        (obj.kind or key.split(".", 1)[0], obj.name)
        for key, objects in sorted(observed.others.items())
        for obj in objects
        if obj.metadata.deletionTimestamp is None and (key, obj.name) not in answered
    )


def _created(observed: Observed, desired: Desired) -> tuple[tuple[str, str], ...]:
    existing = set(observed.keys())
    created = []
    for child in desired.children:
        if isinstance(child, RawChild):
            continue  # an observed child answered as it was: never a new one
        name = str(child["metadata"]["name"])
        if (kinds.key_of(child), name) not in existing:
            created.append((str(child["kind"]), name))
    return tuple(created)


def _answered_pods(observed: Observed, desired: Desired, created: Iterable[tuple[str, str]]) -> int:
    names = {_name(child) for child in desired.children}
    kept = sum(1 for pod in observed.pods if pod.name in names)
    return kept + sum(1 for kind, _ in created if kind == "Pod")


def _deleted(hook: str, observed: Observed, desired: Desired) -> tuple[tuple[str, str], ...]:
    """Live pods the answer leaves out (a terminating pod was counted when it was deleted)."""
    answered = {_name(child) for child in desired.children}
    reasons = {r.name: deletion_reason(r.why) for r in desired.plan.remove} if desired.plan else {}
    fallback = CLUSTER_DELETED if hook == "finalize" else "other"
    return tuple(
        (pod.name, reasons.get(pod.name, fallback))
        for pod in observed.pods
        if not pod.terminating and pod.name not in answered
    )


def _name(child: Child) -> str:
    # A RawChild knows its name without parsing the (large) JSON text it keeps.
    return child.name if isinstance(child, RawChild) else str(child["metadata"]["name"])


def deletion_reason(why: str) -> str:
    """workers_to_delete, failed, surplus, suspended, group_removed or template_changed."""
    if why in _DELETE_REASONS:
        return _DELETE_REASONS[why]
    if why.startswith("its phase is"):
        return "failed"  # Failed or Succeeded: a finished pod is replaced
    if why.startswith("surplus"):
        return "surplus"
    return "other"


def _count(observed: Observed) -> int:
    others = sum(len(objects) for objects in observed.others.values())
    return len(observed.pods) + len(observed.services) + others
