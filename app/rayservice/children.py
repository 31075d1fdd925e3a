"""A RayService's children: its RayClusters (built from ``rayClusterConfig``), and the head and
serve Services that send traffic to the active one."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from app.core import labels as lbl
from app.core.observed import Child
from app.raycluster import service as cluster_service
from app.raycluster.cluster import Cluster, Options
from app.raycluster.command import DASHBOARD_AGENT_PORT
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import JSONObject, RayClusterSpec, parse_spec
from app.rayservice import names
from app.rayservice.proxy import SERVE_LABEL

RAYCLUSTER_API = "ray.io/v1"
RAYCLUSTER_KIND = "RayCluster"
RAYSERVICE_CRD = "RayService"
SERVE_SELECTOR_LABEL = "ray.io/serve"
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration",)


def originated(rayservice: str) -> dict[str, str]:
    return {lbl.ORIGINATED_NAME: rayservice, lbl.ORIGINATED_CRD: RAYSERVICE_CRD}


def ray_cluster(
    name: str,
    namespace: str,
    rs_name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    config: Mapping[str, Any],
    goal: str,
) -> JSONObject:
    """The RayCluster child. Its pods carry ``ray.io/serve`` (the serve Service selects on it:
    workers ``"true"``, gated by their readiness probe; the head ``"false"`` until a reading of
    its Serve proxy says otherwise, as KubeRay: app.rayservice.head_label) and the RayService's
    labels, and its head Service the RayService's labels (so that the RayService's customize
    hook finds them)."""
    spec: JSONObject = copy.deepcopy(dict(config))
    head = spec.setdefault("headGroupSpec", {})
    _label_template(head, {**originated(rs_name), SERVE_LABEL: "false"})
    custom = head.setdefault("headService", {})
    meta = custom.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **originated(rs_name)}
    port = _serve_port(head)
    for group in spec.get("workerGroupSpecs") or []:
        _label_template(group, {SERVE_LABEL: "true"})
        _proxy_readiness(group, port)
    kept = {k: v for k, v in annotations.items() if k not in _NOT_COPIED}
    kept |= {
        names.HASH: goal,
        names.HASH_VERSION: names.HASH_VERSION_VALUE,
        names.WORKER_GROUPS: str(len(spec.get("workerGroupSpecs") or [])),
    }
    return {
        "apiVersion": RAYCLUSTER_API,
        "kind": RAYCLUSTER_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(sorted({**labels, **originated(rs_name)}.items())),
            "annotations": dict(sorted(kept.items())),
        },
        "spec": spec,
    }


def _label_template(group: JSONObject, labels: Mapping[str, str]) -> None:
    template = group.setdefault("template", {})
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}


def _serve_port(head: Mapping[str, Any]) -> int:
    """The head container's ``serve`` port: where every node's Serve proxy listens."""
    # Also read from an observed cluster's spec, which may hold anything: every level checked.
    template = head.get("template")
    pod = template.get("spec") if isinstance(template, Mapping) else None
    containers = pod.get("containers") if isinstance(pod, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    ports = first.get("ports") if isinstance(first, Mapping) else None
    for port in ports if isinstance(ports, list) else []:
        if isinstance(port, dict) and port.get("name") == "serve":
            number = port.get("containerPort")
            if isinstance(number, int):
                return number
    return int(cluster_service.DEFAULT_PORTS["serve"])


def head_serve_port(cluster_spec: Mapping[str, Any]) -> int:
    """Where the head's Serve proxy listens, from a RayCluster's spec."""
    head = cluster_spec.get("headGroupSpec")
    return _serve_port(head if isinstance(head, Mapping) else {})


def _proxy_readiness(group: JSONObject, serve_port: int) -> None:
    """KubeRay's worker readiness for a RayService: the raylet and the node's Serve proxy, one
    failure enough. A worker without a healthy proxy (none started, or draining because it
    holds no replica) is then no endpoint of the serve Service, and gets no request it would
    refuse. Only where the user set no readinessProbe (theirs wins, as in KubeRay)."""
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers or not isinstance(containers[0], dict):
        return
    ray = containers[0]
    if "readinessProbe" in ray:
        return
    params = group.get("rayStartParams") or {}
    agent = params.get("dashboard-agent-listen-port", DASHBOARD_AGENT_PORT)
    checks = [
        f"wget --tries 1 -T 2 -q -O- http://localhost:{agent}/api/local_raylet_healthz",
        f"wget --tries 1 -T 2 -q -O- http://localhost:{serve_port}/-/healthz",
    ]
    ray["readinessProbe"] = {
        "exec": {"command": ["bash", "-c", " && ".join(f"{c} | grep success" for c in checks)]},
        "initialDelaySeconds": 10,
        "timeoutSeconds": 2,
        "periodSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": 1,
    }


def with_appended_groups(applied: Mapping[str, Any], built: JSONObject) -> JSONObject:
    """The live cluster with the worker groups the goal appends, its own groups untouched (the
    autoscaler's replicas stay; KubeRay overwrites them), re-stamped with the goal's hash."""
    changed: JSONObject = copy.deepcopy(dict(applied))
    groups = list(changed.get("spec", {}).get("workerGroupSpecs") or [])
    wanted = built["spec"].get("workerGroupSpecs") or []
    changed["spec"]["workerGroupSpecs"] = groups + copy.deepcopy(wanted[len(groups) :])
    annotations = dict(changed["metadata"].get("annotations") or {})
    for key in (names.HASH, names.HASH_VERSION, names.WORKER_GROUPS):
        annotations[key] = built["metadata"]["annotations"][key]
    changed["metadata"]["annotations"] = dict(sorted(annotations.items()))
    return changed


def head_service(
    rs_name: str, namespace: str, target: str, spec: RayClusterSpec, options: Options
) -> JSONObject:
    """The RayService's head Service: the target cluster's head Service, renamed."""
    built = cluster_service.head_service(Cluster(target, namespace, "", {}, spec, options))
    labels = {
        **originated(rs_name),
        lbl.NODE_TYPE: lbl.HEAD,
        lbl.IDENTIFIER: f"{rs_name}-{lbl.HEAD}",
    }
    built["metadata"] = {
        "name": names.head_service(rs_name),
        "namespace": namespace,
        "labels": dict(sorted(labels.items())),
    }
    return built


def serve_ports(spec: RayClusterSpec) -> list[JSONObject]:
    """The head container's ports named ``serve`` or ``serve-*`` (8000 when it names none)."""
    containers = (spec.headGroupSpec.template.get("spec") or {}).get("containers") or [{}]
    declared = containers[0].get("ports") or []
    if not declared:
        return [{"name": "serve", "port": cluster_service.DEFAULT_PORTS["serve"]}]
    found = [
        {"name": p["name"], "port": p["containerPort"]}
        for p in declared
        if isinstance(p, dict)
        and isinstance(p.get("name"), str)
        and (p["name"] == "serve" or p["name"].startswith("serve-"))
        and isinstance(p.get("containerPort"), int)
    ]
    return sorted(found, key=lambda p: str(p["name"]))


def serve_service(
    rs_name: str,
    namespace: str,
    target: str,
    spec: RayClusterSpec,
    custom: Mapping[str, Any] | None,
) -> JSONObject:
    """``<rs>-serve-svc`` (or the user's ``serveService``): the target cluster's Serve
    proxies; the selector is always metaray's, user ports win over same-named ones."""
    base: JSONObject = copy.deepcopy(dict(custom or {}))
    meta = base.get("metadata") or {}
    user_spec = base.get("spec") or {}
    user_ports = [p for p in user_spec.get("ports") or [] if isinstance(p, dict)]
    taken = {p.get("name") for p in user_ports}
    ports = user_ports + [p for p in serve_ports(spec) if p["name"] not in taken]
    labels = {
        **(meta.get("labels") or {}),
        **originated(rs_name),
        SERVE_SELECTOR_LABEL: f"{rs_name}-serve",
    }
    metadata: JSONObject = {
        "name": names.serve_service(rs_name, custom),
        "namespace": namespace,
        "labels": dict(sorted(labels.items())),
    }
    if meta.get("annotations"):
        metadata["annotations"] = dict(sorted(meta["annotations"].items()))
    service_type = user_spec.get("type") or spec.headGroupSpec.serviceType or "ClusterIP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            **user_spec,
            "ports": ports,
            "selector": {lbl.CLUSTER: target, SERVE_SELECTOR_LABEL: "true"},
            "type": service_type,
        },
    }


def cluster_spec_of(applied: Child | None, fallback: RayClusterSpec) -> RayClusterSpec:
    """The head part of a live cluster's spec as created (the Services copy its ports)."""
    spec = applied.get("spec") if applied is not None else None
    if not isinstance(spec, Mapping):
        return fallback
    head = {"headGroupSpec": spec.get("headGroupSpec")}
    try:
        return parse_spec({"apiVersion": RAYCLUSTER_API, "metadata": {"name": "c"}, "spec": head})
    except InvalidSpec:
        return fallback


def selected_cluster(service: Child | None) -> str | None:
    """The cluster a Service's selector names (as metaray last asked for it)."""
    spec = service.get("spec") if service is not None else None
    selector = spec.get("selector") if isinstance(spec, Mapping) else None
    value = selector.get(lbl.CLUSTER) if isinstance(selector, Mapping) else None
    return value if isinstance(value, str) else None
