"""Small builders shared by the unit tests (RayCluster manifests come from tests/loop.py)."""

from __future__ import annotations

from typing import Any

from app.core.observed import ObservedPod, parse
from app.raycluster.cluster import Cluster, Options
from app.raycluster.spec import parse_spec
from tests.loop import raycluster

UID = "0f0f0f0f-1111-2222-3333-444444444444"  # tests.loop.raycluster's default uid


def make_cluster(
    spec: dict[str, Any],
    *,
    annotations: dict[str, str] | None = None,
    options: Options | None = None,
    **parent: Any,
) -> Cluster:
    """A parsed ``Cluster`` for ``spec`` (a ``tests.loop.cluster_spec``), as sync would build it."""
    obj = raycluster(spec, **parent)
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return Cluster.from_parent(obj, parse_spec(obj), options or Options())


def head_container(spec: dict[str, Any]) -> dict[str, Any]:
    """The Ray container of the head template in ``spec``, for editing in place."""
    container: dict[str, Any] = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    return container


def worker_container(spec: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The Ray container of worker group ``index`` in ``spec``, for editing in place."""
    group = spec["workerGroupSpecs"][index]
    container: dict[str, Any] = group["template"]["spec"]["containers"][0]
    return container


def observed_pod(
    name: str,
    node_type: str | None = "worker",
    group: str | None = "workers",
    *,
    phase: str = "Running",
    ready: bool = True,
    terminating: bool = False,
    pod_ip: str = "",
    waiting: str | None = None,
    created: str | None = None,
    transition: str | None = None,
    labels: dict[str, str] | None = None,
) -> ObservedPod:
    """An observed pod with KubeRay's node-type and group labels (None leaves a label out),
    and ``labels`` besides."""
    labels = {"ray.io/cluster": "demo", **(labels or {})}
    if node_type is not None:
        labels["ray.io/node-type"] = node_type
    if group is not None:
        labels["ray.io/group"] = group
    metadata: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels}
    if created is not None:
        metadata["creationTimestamp"] = created
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:30Z"
    condition: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "False"}
    if transition is not None:
        condition["lastTransitionTime"] = transition
    status: dict[str, Any] = {"phase": phase, "conditions": [condition]}
    if pod_ip:
        status["podIP"] = pod_ip
    if waiting is not None:
        status["containerStatuses"] = [
            {"name": "ray", "ready": False, "state": {"waiting": {"reason": waiting}}}
        ]
    return parse(ObservedPod, {"metadata": metadata, "status": status})
