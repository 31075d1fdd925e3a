"""The entry points of the core: one RayCluster and its observed children in, desired state out.

``sync`` answers Metacontroller's sync hook, ``finalize`` its finalize hook (a RayCluster being
deleted). Both are pure: the same input always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.core import kinds
from app.core.desired import Desired
from app.core.events import NORMAL, WARNING, Event
from app.core.observed import Child, Observed, RawChild
from app.core.status import previous_status
from app.core.time import newest, parent_timestamps
from app.raycluster import auth, gcs_storage, tls
from app.raycluster import labels as lbl
from app.raycluster.autoscaler import rbac
from app.raycluster.cluster import Cluster, Options
from app.raycluster.fault_tolerance import cleanup_job, cleanup_job_name, storage_namespace
from app.raycluster.ingress import head_ingress
from app.raycluster.network_policy import events as network_policy_events
from app.raycluster.network_policy import network_policies
from app.raycluster.pods import head_pod_template, named, worker_pod_template
from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.scaling import Plan, plan_pods
from app.raycluster.service import head_service, headless_service
from app.raycluster.spec import JSONObject, parse_spec
from app.raycluster.status import FAILED, compute_status, observed_fields, stamp


@dataclass(frozen=True, slots=True)
class _Request:
    parent: Mapping[str, Any]
    observed: Observed
    previous: Mapping[str, Any]
    clock: str | None


def _request(parent: Mapping[str, Any], observed: Observed) -> _Request:
    stamps = [*parent_timestamps(parent), *_child_timestamps(observed)]
    return _Request(parent, observed, previous_status(parent), newest(stamps))


def sync(
    parent: Mapping[str, Any],
    observed: Observed,
    options: Options | None = None,
    *,
    entropy: bytes | None = None,
) -> Desired:
    """``entropy``: fresh random bytes from the shell, used only to create a token Secret."""
    request = _request(parent, observed)
    try:
        spec = parse_spec(parent)
        cluster = Cluster.from_parent(parent, spec, options or Options())
        _check_registered(cluster, observed)
    except InvalidSpec as invalid:
        return _unchanged(request, invalid)
    plan = plan_pods(cluster, observed.pods)
    if auth.waiting_for_secret(cluster, observed) or tls.waiting_for_certificates(
        cluster, observed
    ):
        # Two phases: the Secret and Certificates first; pods that read them once observed.
        plan = replace(plan, create=())
    built = _built(cluster, observed, entropy)
    children = [*built, *_pods(cluster, observed, plan), *_unmanaged(observed)]
    status = compute_status(cluster, observed, request.previous, request.clock)
    events = (
        *_created(cluster, observed, built),
        *_pod_events(cluster, observed, plan),
        *network_policy_events(cluster, observed, built, request.previous),
        *tls.events(cluster, observed, built),
        *gcs_storage.events(cluster, observed, built),
    )
    return Desired(children, status, events, plan)


def _check_registered(cluster: Cluster, observed: Observed) -> None:
    """Children of a type Metacontroller was not told about would fail every sync."""
    if tls.enabled(cluster) and observed.unregistered:
        raise InvalidSpec(
            [
                Problem(
                    "spec.tlsOptions.enabled",
                    "needs cert-manager and its Issuers and Certificates registered as children "
                    "(install metaray with config/mtls/, see the README)",
                )
            ]
        )


def finalize(
    parent: Mapping[str, Any],
    observed: Observed,
    options: Options | None = None,
    *,
    entropy: bytes | None = None,
) -> Desired:
    """A RayCluster is being deleted: clean its GCS data out of Redis first, if it has any."""
    request = _request(parent, observed)
    try:
        spec = parse_spec(parent)
    except InvalidSpec as invalid:
        answer = _unchanged(request, invalid)
        skipped = Event(WARNING, "RedisCleanupSkipped", "Invalid spec: no Redis cleanup attempted")
        return replace(answer, events=(*answer.events, skipped), finalized=True)
    cluster = Cluster.from_parent(parent, spec, options or Options())
    status = compute_status(cluster, observed, request.previous, request.clock)
    everything = _echo(observed, sorted(observed.keys()))
    if not cluster.ft_enabled or gcs_storage.rocksdb(cluster):
        return Desired(everything, status, finalized=True)  # nothing kept in Redis
    return _clean_up(cluster, observed, status)


def _clean_up(cluster: Cluster, observed: Observed, status: JSONObject) -> Desired:
    """Delete every pod, wait for the head to be gone, then run the cleanup Job to success."""
    kept = _echo(
        observed, [k for k in sorted(observed.keys()) if k[0] not in (kinds.POD, kinds.JOB)]
    )
    ns, name = cluster.namespace, cleanup_job_name(cluster)
    if any(pod.node_type == "head" for pod in observed.pods):
        return Desired(kept, status, finalized=False)
    job = next((j for j in observed.of_kind(kinds.JOB) if j.name == name), None)
    if job is None:
        created = Event(NORMAL, "CreatedRedisCleanupJob", f"Created Redis cleanup Job {ns}/{name}")
        return Desired(
            [*kept, cleanup_job(cluster, head_pod_template(cluster))],
            status,
            (created,),
            finalized=False,
        )
    echoed = [*kept, observed.applied[(kinds.JOB, name)]]
    if job.has_condition("Complete") or job.status.get("succeeded", 0):
        return Desired(echoed, status, finalized=True)
    if job.has_condition("Failed"):
        failed = Event(
            WARNING,
            "RedisCleanupFailed",
            f"Redis cleanup Job {ns}/{name} failed: the GCS data under storage namespace "
            f"{storage_namespace(cluster)} is left in Redis",
        )
        return Desired(echoed, status, (failed,), finalized=True)
    return Desired(echoed, status, finalized=False)


def _built(cluster: Cluster, observed: Observed, entropy: bytes | None) -> list[Child]:
    """Every non-pod child the spec asks for."""
    children: list[Child] = [head_service(cluster)]
    headless = headless_service(cluster)
    if headless is not None:
        children.append(headless)
    secret = auth.secret_child(cluster, observed, entropy)
    if secret is not None:
        children.append(secret)
    if cluster.spec.headGroupSpec.enableIngress:
        children.append(head_ingress(cluster))
    if cluster.autoscaling:
        children += rbac(cluster)
    children += network_policies(cluster)
    children += tls.children(cluster, observed)
    claim = gcs_storage.pvc_child(cluster, observed)
    if claim is not None:
        children.append(claim)
    return children


def _pods(cluster: Cluster, observed: Observed, plan: Plan) -> list[Child]:
    pods = _echo(observed, [(kinds.POD, name) for name in plan.keep])
    templates: dict[str | None, JSONObject] = {}
    for creation in plan.create:
        if creation.group not in templates:
            group = None if creation.group is None else cluster.group(creation.group)
            templates[creation.group] = (
                head_pod_template(cluster) if group is None else worker_pod_template(cluster, group)
            )
        pods.append(named(templates[creation.group], creation.name, creation.labels))
    return sorted(pods, key=_name)


def _name(child: Child) -> str:
    return child.name if isinstance(child, RawChild) else str(child["metadata"]["name"])


def _unmanaged(observed: Observed) -> list[Child]:
    """Children of types metaray does not build are kept exactly as they are."""
    return _echo(observed, [k for k in sorted(observed.keys()) if k[0] not in kinds.MANAGED])


def _echo(observed: Observed, keys: Iterable[tuple[str, str]]) -> list[Child]:
    return [observed.applied[key] for key in keys]


def _created(cluster: Cluster, observed: Observed, built: list[Child]) -> list[Event]:
    existing = set(observed.keys())
    events = []
    for child in built:
        name, kind = child["metadata"]["name"], child["kind"]
        if (kinds.key_of(child), name) not in existing:
            message = f"Created {kind} {cluster.namespace}/{name}"
            events.append(Event(NORMAL, f"Created{kind}", message))
    return events


def _pod_events(cluster: Cluster, observed: Observed, plan: Plan) -> list[Event]:
    ns = cluster.namespace
    events = []
    for created in plan.create:
        if created.group is None:
            events.append(Event(NORMAL, "CreatedHeadPod", f"Created head Pod {ns}/{created.name}"))
        else:
            message = f"Created worker Pod {ns}/{created.name} in group {created.group}"
            events.append(Event(NORMAL, "CreatedWorkerPod", message))
    terminating = {pod.name for pod in observed.pods if pod.terminating}
    for removed in plan.remove:
        if removed.name in terminating:
            continue  # already on its way out: reported when it was deleted
        role, reason = (
            ("head", "DeletedHeadPod") if removed.group is None else ("worker", "DeletedWorkerPod")
        )
        events.append(
            Event(NORMAL, reason, f"Deleted {role} Pod {ns}/{removed.name}: {removed.why}")
        )
    for group, name in plan.unknown_deletes:
        message = (
            f"workersToDelete of group {group} names {name}, which is not a pod of that "
            "group; ignored"
        )
        events.append(Event(WARNING, "InvalidWorkersToDelete", message))
    return events


def _unchanged(request: _Request, invalid: InvalidSpec) -> Desired:
    """Every child exactly as metaray last asked for it, and a status that says what is wrong."""
    observed, previous = request.observed, request.previous
    children = _echo(observed, sorted(observed.keys()))
    metadata = request.parent.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    service_name = next(
        (s.name for s in observed.services if s.metadata.labels.get(lbl.NODE_TYPE) == lbl.HEAD),
        f"{name}-head-svc" if isinstance(name, str) else "",
    )
    carried = (
        "desiredWorkerReplicas",
        "minWorkerReplicas",
        "maxWorkerReplicas",
        "desiredCPU",
        "desiredMemory",
        "desiredGPU",
        "desiredTPU",
        "conditions",
    )
    status: JSONObject = {key: previous[key] for key in carried if key in previous}
    status |= {"state": FAILED, "reason": f"Invalid RayCluster spec: {invalid}"}
    status |= observed_fields(name if isinstance(name, str) else None, service_name, observed)
    message = f"Invalid RayCluster spec, nothing changed: {invalid}"
    event = Event(WARNING, "InvalidRayClusterSpec", message)
    return Desired(children, stamp(status, previous, request.clock), (event,))


def _child_timestamps(observed: Observed) -> list[str | None]:
    stamps: list[str | None] = []
    for pod in observed.pods:
        stamps += pod.timestamps()
    for service in observed.services:
        stamps.append(service.metadata.creationTimestamp)
    return stamps
