"""The entry point of the core: one RayCluster and its observed children in, desired state out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.raycluster.clock import newest, parent_timestamps
from app.raycluster.cluster import Cluster, Options
from app.raycluster.events import NORMAL, WARNING, Event
from app.raycluster.observed import POD_KEY, Observed
from app.raycluster.pods import head_pod_template, named, worker_pod_template
from app.raycluster.scaling import Plan, plan_pods
from app.raycluster.service import head_service
from app.raycluster.spec import InvalidSpec, JSONObject, parse_spec
from app.raycluster.status import FAILED, compute_status, observed_fields, stamp


@dataclass(frozen=True, slots=True)
class Desired:
    """The complete desired children, the parent's status, and the events to report."""

    children: list[JSONObject]
    status: JSONObject
    events: tuple[Event, ...] = ()
    plan: Plan | None = None


def sync(parent: Mapping[str, Any], observed: Observed, options: Options | None = None) -> Desired:
    previous = parent.get("status")
    previous = previous if isinstance(previous, Mapping) else {}
    clock = newest([*parent_timestamps(parent), *_child_timestamps(observed)])
    try:
        spec = parse_spec(parent)
    except InvalidSpec as invalid:
        return _unchanged(parent, observed, invalid, previous, clock)
    cluster = Cluster.from_parent(parent, spec, options or Options())
    plan = plan_pods(cluster, observed.pods)
    children = [head_service(cluster), *_pods(cluster, observed, plan)]
    children += [
        observed.applied[(kind, obj.metadata.name)]
        for kind, objs in sorted(observed.others.items())
        for obj in objs
    ]
    status = compute_status(cluster, observed, previous, clock)
    return Desired(children, status, _events(cluster, observed, plan), plan)


def _pods(cluster: Cluster, observed: Observed, plan: Plan) -> list[JSONObject]:
    pods = [observed.applied[(POD_KEY, name)] for name in plan.keep]
    templates: dict[str | None, JSONObject] = {}
    for creation in plan.create:
        if creation.group not in templates:
            group = None if creation.group is None else cluster.group(creation.group)
            templates[creation.group] = (
                head_pod_template(cluster) if group is None else worker_pod_template(cluster, group)
            )
        pods.append(named(templates[creation.group], creation.name))
    return sorted(pods, key=lambda pod: str(pod["metadata"]["name"]))


def _events(cluster: Cluster, observed: Observed, plan: Plan) -> tuple[Event, ...]:
    ns = cluster.namespace
    events = []
    if not any(s.name == cluster.head_service_name for s in observed.services):
        events.append(
            Event(
                NORMAL, "CreatedService", f"Created head Service {ns}/{cluster.head_service_name}"
            )
        )
    for created in plan.create:
        if created.group is None:
            events.append(Event(NORMAL, "CreatedHeadPod", f"Created head Pod {ns}/{created.name}"))
        else:
            events.append(
                Event(
                    NORMAL,
                    "CreatedWorkerPod",
                    f"Created worker Pod {ns}/{created.name} in group {created.group}",
                )
            )
    terminating = {pod.name for pod in observed.pods if pod.terminating}
    for removed in plan.remove:
        if removed.name in terminating:
            continue  # already on its way out: reported when it was deleted
        role = "head" if removed.group is None else "worker"
        reason = "DeletedHeadPod" if removed.group is None else "DeletedWorkerPod"
        events.append(
            Event(NORMAL, reason, f"Deleted {role} Pod {ns}/{removed.name}: {removed.why}")
        )
    for group, name in plan.unknown_deletes:
        events.append(
            Event(
                WARNING,
                "InvalidWorkersToDelete",
                f"workersToDelete of group {group} names {name}, "
                "which is not a pod of that group; ignored",
            )
        )
    return tuple(events)


def _unchanged(
    parent: Mapping[str, Any],
    observed: Observed,
    invalid: InvalidSpec,
    previous: Mapping[str, Any],
    clock: str | None,
) -> Desired:
    """Every child exactly as metaray last asked for it, and a status that says what is wrong."""
    children = [observed.applied[key] for key in sorted(observed.keys())]
    metadata = parent.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    service_name = next(
        (s.name for s in observed.services), f"{name}-head-svc" if isinstance(name, str) else ""
    )
    status: JSONObject = {
        key: previous[key]
        for key in (
            "desiredWorkerReplicas",
            "minWorkerReplicas",
            "maxWorkerReplicas",
            "desiredCPU",
            "desiredMemory",
            "desiredGPU",
            "desiredTPU",
            "conditions",
        )
        if key in previous
    }
    status |= {"state": FAILED, "reason": f"Invalid RayCluster spec: {invalid}"}
    status |= observed_fields(service_name, observed)
    message = f"Invalid RayCluster spec, nothing changed: {invalid}"
    return Desired(
        children,
        stamp(status, previous, clock),
        (Event(WARNING, "InvalidRayClusterSpec", message),),
    )


def _child_timestamps(observed: Observed) -> list[str | None]:
    stamps: list[str | None] = []
    for pod in observed.pods:
        stamps += pod.timestamps()
    for service in observed.services:
        stamps.append(service.metadata.creationTimestamp)
    return stamps
