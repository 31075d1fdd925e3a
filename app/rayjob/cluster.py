"""The RayCluster a RayJob runs on: built once from ``rayClusterSpec``, then kept as created.

KubeRay ignores changes to ``rayClusterSpec`` after the cluster exists; metaray does the same by
answering the observed cluster's recorded object, changed only to suspend its workers when a
``DeleteWorkers`` policy is due.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeGuard

from pydantic import ValidationError

from app.raycluster import auth
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.names import head_service_name, is_dns1123_label
from app.raycluster.ports import dashboard_container_port
from app.raycluster.spec import JSONObject, RayClusterSpec
from app.rayjob import labels as jl
from app.rayjob.spec import SIDECAR_MODE, RayJob

RAYCLUSTER_API = "ray.io/v1"
RAYCLUSTER_KIND = "RayCluster"
# Never copied from the RayJob: it describes the RayJob as kubectl applied it.
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration",)


def ray_cluster(rayjob: RayJob, name: str, sidecar: JSONObject | None) -> JSONObject:
    """The RayCluster child: the RayJob's labels and annotations, KubeRay's three labels, and in
    SidecarMode the submitter container in the head pod."""
    spec: JSONObject = copy.deepcopy(rayjob.spec.rayClusterSpec or {})
    annotations = {k: v for k, v in rayjob.annotations.items() if k not in _NOT_COPIED}
    if rayjob.mode == SIDECAR_MODE and sidecar is not None:
        _add_sidecar(spec, rayjob, sidecar)
        annotations[jl.DISABLE_HEAD_RESTART] = "true"
    labels = {
        **rayjob.labels,
        **jl.originated(rayjob.name),
        jl.SUBMISSION_MODE: rayjob.mode,
        lbl.CONTROLLER_UID: rayjob.uid,
    }
    metadata: JSONObject = {
        "name": name,
        "namespace": rayjob.namespace,
        "labels": dict(sorted(labels.items())),
    }
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return {
        "apiVersion": RAYCLUSTER_API,
        "kind": RAYCLUSTER_KIND,
        "metadata": metadata,
        "spec": spec,
    }


def _add_sidecar(spec: JSONObject, rayjob: RayJob, sidecar: JSONObject) -> None:
    """The submitter joins the head pod, whose labels let the RayJob's hook find that pod."""
    template = spec.setdefault("headGroupSpec", {}).setdefault("template", {})
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **jl.originated(rayjob.name)}
    pod_spec = template.setdefault("spec", {})
    pod_spec["containers"] = [*(pod_spec.get("containers") or []), sidecar]


def with_workers_suspended(cluster: Mapping[str, Any]) -> JSONObject:
    """The same cluster with every worker group suspended (the ``DeleteWorkers`` policy)."""
    changed: JSONObject = copy.deepcopy(dict(cluster))
    spec = changed.get("spec")
    groups = spec.get("workerGroupSpecs") if isinstance(spec, dict) else None
    for group in groups if isinstance(groups, list) else []:
        if isinstance(group, dict):
            group["suspend"] = True
    return changed


def token_env(name: str, namespace: str, spec: Any) -> list[JSONObject]:
    """What a client of this cluster needs to hold its auth token (authOptions): the
    variables the RayCluster core gives its own containers; none without token auth."""
    try:
        parsed = RayClusterSpec.model_validate(spec)
    except ValidationError:
        return []
    return auth.env(Cluster(name, namespace, "", {}, parsed))


def dashboard_url(name: str, namespace: str, spec: Mapping[str, Any], domain: str) -> str:
    """``host:port`` of a cluster's dashboard, without a scheme, as KubeRay writes
    ``dashboardURL``: the head Service's port named ``dashboard``. Read from the cluster's raw
    spec, so that a user's cluster with fields metaray does not model still has an address."""
    head = _mapping(spec.get("headGroupSpec"))
    service = _mapping(head.get("headService"))
    service_name = _mapping(service.get("metadata")).get("name")
    if not isinstance(service_name, str) or not service_name:
        service_name = head_service_name(name)
    return f"{service_name}.{namespace}.svc.{domain}:{_dashboard_port(head, service)}"


def in_namespace(url: Any, namespace: str, domain: str) -> bool:
    """Whether ``url`` is a Service's ``host:port`` in that namespace, as metaray writes
    ``dashboardURL``. The shell calls only such dashboards: a status edited to point elsewhere
    (the API server, a metadata endpoint) must not make the hook call it."""
    if not isinstance(url, str) or url.count(":") != 1:
        return False
    host, port = url.split(":")
    service, _, rest = host.partition(".")
    return (
        rest == f"{namespace}.svc.{domain}"
        and is_dns1123_label(service)
        and port.isascii()
        and port.isdigit()
        and 0 < int(port) < 65536
    )


def _dashboard_port(head: Mapping[str, Any], service: Mapping[str, Any]) -> int:
    for port in _list(_mapping(service.get("spec")).get("ports")):
        number = _mapping(port).get("port")
        if _mapping(port).get("name") == "dashboard" and _is_int(number):
            return number
    return dashboard_container_port(head)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
