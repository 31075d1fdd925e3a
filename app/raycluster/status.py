"""The RayCluster status, computed from the observed children only.

Timestamps move only when what they stamp changes, and then take the request's newest
timestamp, so an unchanged cluster gets a byte-identical status and no needless write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.core.observed import Observed, ObservedPod, ObservedService
from app.core.time import EPOCH
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.network_policy import dns_condition
from app.raycluster.resources import desired_resources
from app.raycluster.spec import INT32_MAX, JSONObject

READY = "ready"
SUSPENDED = "suspended"
FAILED = "failed"
HEAD_POD_READY = "HeadPodReady"
PROVISIONED = "RayClusterProvisioned"
SUSPENDING = "RayClusterSuspending"
SUSPENDED_CONDITION = "RayClusterSuspended"
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def compute_status(
    cluster: Cluster, observed: Observed, previous: Mapping[str, Any], clock: str | None
) -> JSONObject:
    spec = cluster.spec
    groups = {group.groupName for group in spec.workerGroupSpecs}
    live = [
        pod
        for pod in observed.pods
        if not pod.terminating
        and not pod.finished
        and pod.cluster == cluster.name
        and (pod.node_type == lbl.HEAD or (pod.node_type == lbl.WORKER and pod.group in groups))
    ]
    workers = [pod for pod in live if pod.node_type == lbl.WORKER]
    head = _head_pod(live)
    desired_workers = 0 if spec.suspend else sum(g.target for g in spec.workerGroupSpecs)
    all_ready = (
        not spec.suspend
        and head is not None
        and len(live) == desired_workers + 1
        and all(pod.ready for pod in live)
    )
    status: JSONObject = {}
    if spec.suspend and not observed.pods:
        status["state"] = SUSPENDED
    elif all_ready:
        status["state"] = READY
    status |= {
        "availableWorkerReplicas": sum(1 for pod in workers if pod.running),
        "readyWorkerReplicas": sum(1 for pod in workers if pod.ready),
        "desiredWorkerReplicas": desired_workers,
        "minWorkerReplicas": _saturate(g.minReplicas * g.numOfHosts for g in spec.workerGroupSpecs),
        "maxWorkerReplicas": _saturate(g.maxReplicas * g.numOfHosts for g in spec.workerGroupSpecs),
        **desired_resources(spec, 0 if spec.suspend else 1),
    }
    status |= observed_fields(cluster.name, cluster.head_service_name, observed)
    wanted = _head_and_provisioned(head, all_ready, spec.suspend, previous)
    if spec.suspend or any(c.get("type") == SUSPENDED_CONDITION for c in _previous(previous)):
        wanted |= _suspension(spec.suspend, bool(observed.pods))
    wanted |= dns_condition(cluster)
    status["conditions"] = [
        condition(kind, *wanted[kind], previous, clock) for kind in sorted(wanted)
    ]
    return stamp(status, previous, clock)


def observed_fields(cluster: str | None, service_name: str, observed: Observed) -> JSONObject:
    """Endpoints and head addresses: what any status can say without reading the spec."""
    live = [
        pod
        for pod in observed.pods
        if not pod.terminating and not pod.finished and pod.cluster == cluster
    ]
    head = _head_pod(live)
    service = next((s for s in observed.services if s.name == service_name), None)
    fields: JSONObject = {}
    if service is not None:
        endpoints = _endpoints(service)
        if endpoints:
            fields["endpoints"] = endpoints
    head_info: JSONObject = {}
    if head is not None:
        head_info["podName"] = head.name
        if head.status.podIP:
            head_info["podIP"] = head.status.podIP
    if service is not None:
        head_info["serviceName"] = service.name
        ip = service.spec.clusterIP
        # A headless Service has no IP of its own: clients reach the head pod's.
        service_ip = head_info.get("podIP", "") if ip in ("", "None") else ip
        if service_ip:
            head_info["serviceIP"] = service_ip
    if head_info:
        fields["head"] = head_info
    return fields


def stamp(status: JSONObject, previous: Mapping[str, Any], clock: str | None) -> JSONObject:
    """Set ``lastUpdateTime``: kept while nothing else changed, else the request's time."""
    ignored = ("lastUpdateTime", "observedGeneration")
    before = {k: v for k, v in previous.items() if k not in ignored}
    if before == status and isinstance(previous.get("lastUpdateTime"), str):
        status["lastUpdateTime"] = previous["lastUpdateTime"]
    else:
        status["lastUpdateTime"] = clock or EPOCH
    return status


def _head_pod(live: Sequence[ObservedPod]) -> ObservedPod | None:
    heads = sorted((pod for pod in live if pod.node_type == lbl.HEAD), key=lambda p: p.name)
    return heads[0] if heads else None


def _endpoints(service: ObservedService) -> dict[str, str]:
    endpoints = {}
    for port in service.spec.ports:
        if not port.name:
            continue
        value = port.nodePort or port.targetPort or port.port
        endpoints[port.name] = str(value)
    return dict(sorted(endpoints.items()))


def _saturate(values: Iterable[int]) -> int:
    return min(sum(values), INT32_MAX)


_Condition = tuple[str, str, str]


def _head_and_provisioned(
    head: ObservedPod | None, all_ready: bool, suspend: bool, previous: Mapping[str, Any]
) -> dict[str, _Condition]:
    if head is None:
        head_ready = ("False", "HeadPodNotFound", "No running head pod is observed")
    elif head.ready:
        head_ready = (
            "True",
            "HeadPodRunningAndReady",
            f"Head pod {head.name} is running and ready",
        )
    else:
        head_ready = ("False", _not_ready_reason(head), f"Head pod {head.name} is not ready")
    provisioned_before = any(
        c.get("type") == PROVISIONED and c.get("status") == "True" for c in _previous(previous)
    )
    provisioned: _Condition
    if suspend:
        provisioned = ("False", "RayClusterSuspended", "The cluster is suspended")
    elif all_ready or provisioned_before:
        provisioned = (
            "True",
            "AllPodRunningAndReadyFirstTime",
            "All Ray pods were running and ready",
        )
    else:
        provisioned = ("False", "RayClusterPodsProvisioning", "Ray pods are being provisioned")
    return {HEAD_POD_READY: head_ready, PROVISIONED: provisioned}


def _suspension(suspend: bool, pods_left: bool) -> dict[str, _Condition]:
    """Suspending while a suspended cluster still has pods, Suspended once it has none."""
    if not suspend:
        return {
            SUSPENDING: ("False", "Resumed", "The cluster is not suspended"),
            SUSPENDED_CONDITION: ("False", "Resumed", "The cluster is not suspended"),
        }
    if pods_left:
        return {
            SUSPENDING: ("True", "DeletingPods", "Deleting the cluster's pods to suspend it"),
            SUSPENDED_CONDITION: ("False", "DeletingPods", "Pods are still being deleted"),
        }
    return {
        SUSPENDING: ("False", "AllPodsDeleted", "Every pod of the cluster is gone"),
        SUSPENDED_CONDITION: ("True", "AllPodsDeleted", "The cluster is suspended: no pods"),
    }


def condition(
    kind: str,
    status: str,
    reason: str,
    message: str,
    previous: Mapping[str, Any],
    clock: str | None,
) -> JSONObject:
    """A metav1.Condition whose lastTransitionTime moves only when its status does."""
    before = next((c for c in _previous(previous) if c.get("type") == kind), None)
    moved = before is None or before.get("status") != status
    since = before.get("lastTransitionTime") if before is not None and not moved else None
    return {
        "lastTransitionTime": since if isinstance(since, str) else (clock or EPOCH),
        "message": message,
        "reason": reason,
        "status": status,
        "type": kind,
    }


def _previous(previous: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    conditions = previous.get("conditions")
    if not isinstance(conditions, list):
        return []
    return [c for c in conditions if isinstance(c, Mapping)]


def _not_ready_reason(pod: ObservedPod) -> str:
    for container in pod.status.containerStatuses:
        state = container.state
        if container.ready or state is None:
            continue
        for detail in (state.waiting, state.terminated):
            if detail is not None and detail.reason and _REASON.match(detail.reason):
                return detail.reason
    return "HeadPodNotReady"
