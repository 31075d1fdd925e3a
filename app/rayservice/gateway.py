"""The Gateway API objects of an incremental upgrade (``NewClusterWithIncrementalUpgrade``): the
Gateway ``<rs>-gateway``, the HTTPRoute ``<rs>-httproute`` that splits traffic between the
active and the pending cluster by weight, and each cluster's own serve Service
``<cluster>-serve-svc`` that the route's backends name. Built as KubeRay builds them; what
metaray reads back (weights, the time of the last traffic step, the readiness the Gateway
controller reports) comes from the observed children only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.observed import Child, Observed, ObservedObject
from app.core.time import parse_time, stamp
from app.raycluster.names import MAX_LABEL
from app.raycluster.spec import JSONObject, RayClusterSpec
from app.rayservice import children

GROUP = "gateway.networking.k8s.io"
API = f"{GROUP}/v1"
GATEWAY = f"Gateway.{API}"
HTTPROUTE = f"HTTPRoute.{API}"
LISTENER = {"name": "http", "protocol": "HTTP", "port": 80}  # KubeRay's one listener
# When metaray last moved traffic, kept on the route it moved (a stale parent's older status
# then never makes a step come early).
MIGRATED_AT = "metaray.io/traffic-migrated-at"
# The RayService generation whose sync last wrote the route: an older one (a stale parent)
# moves nothing.
GENERATION = "metaray.io/rayservice-generation"


def gateway_name(rayservice: str) -> str:
    return f"{rayservice}-gateway"


def route_name(rayservice: str) -> str:
    return f"{rayservice}-httproute"


def cluster_serve_service(cluster: str) -> str:
    """``<cluster>-serve-svc``; a name too long for a Service (only a cluster metaray did not
    name can have one) keeps its front and ends with a hash of the whole, so it stays unique."""
    name = f"{cluster}-serve-svc"
    if len(name) <= MAX_LABEL:
        return name
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"{cluster[: MAX_LABEL - len('-serve-svc') - 9]}-{digest}-serve-svc"


def gateway(rs_name: str, namespace: str, class_name: str) -> JSONObject:
    return {
        "apiVersion": API,
        "kind": "Gateway",
        "metadata": {
            "name": gateway_name(rs_name),
            "namespace": namespace,
            "labels": children.originated(rs_name),
        },
        "spec": {"gatewayClassName": class_name, "listeners": [dict(LISTENER)]},
    }


@dataclass(frozen=True, slots=True)
class Backend:
    cluster: str
    port: int
    weight: int


def route(
    rs_name: str,
    namespace: str,
    backends: Iterable[Backend],
    migrated_at: datetime | None,
    generation: int,
) -> JSONObject:
    """One rule, every path, the clusters' serve Services by weight (active first)."""
    annotations = {GENERATION: str(generation)}
    if migrated_at is not None:
        annotations[MIGRATED_AT] = stamp(migrated_at)
    metadata: JSONObject = {
        "name": route_name(rs_name),
        "namespace": namespace,
        "labels": children.originated(rs_name),
        "annotations": dict(sorted(annotations.items())),
    }
    refs = [
        {
            "kind": "Service",
            "name": cluster_serve_service(b.cluster),
            "namespace": namespace,
            "port": b.port,
            "weight": b.weight,
        }
        for b in backends
    ]
    return {
        "apiVersion": API,
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": {
            "parentRefs": [{"name": gateway_name(rs_name), "namespace": namespace}],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}
            ],
        },
    }


def cluster_service(rs_name: str, namespace: str, cluster: str, spec: RayClusterSpec) -> JSONObject:
    """A cluster's own serve Service: its Serve proxies, labelled for the RayService (so that
    the customize hook finds its EndpointSlices, which copy the Service's labels)."""
    built = children.serve_service(rs_name, namespace, cluster, spec, None)
    built["metadata"]["name"] = cluster_serve_service(cluster)
    return built


def serve_port(spec: RayClusterSpec) -> int:
    """The port the route sends to: the head container's ``serve`` port (8000 without one)."""
    ports = children.serve_ports(spec)
    named = next((p for p in ports if p["name"] == "serve"), ports[0] if ports else None)
    return int(named["port"]) if named is not None else 8000


@dataclass(frozen=True, slots=True)
class Observation:
    """What the observed Gateway API children say: the weight metaray last gave each cluster
    (by its serve Service), when it last moved traffic, and whether the Gateway controller
    accepted and programmed the Gateway and accepted the route with every backend resolved."""

    weights: Mapping[str, int]
    migrated_at: datetime | None
    ready: bool
    route_seen: bool
    order: tuple[str, ...] = ()  # the backends' clusters, the active one first
    generation: int = 0  # of the RayService that last wrote the route

    def weight(self, cluster: str | None) -> int:
        return self.weights.get(cluster, 0) if cluster is not None else 0


NOTHING = Observation({}, None, False, False)


def observe(rs_name: str, observed: Observed, clusters: Iterable[str]) -> Observation:
    applied = observed.applied.get((HTTPROUTE, route_name(rs_name)))
    by_service = {cluster_serve_service(c): c for c in clusters}
    weights: dict[str, int] = {}
    order: list[str] = []
    migrated_at = None
    generation = 0
    if applied is not None:
        for ref in _backend_refs(applied):
            cluster = by_service.get(str(ref.get("name")))
            weight = ref.get("weight", 1)
            if cluster is not None and type(weight) is int:
                weights[cluster] = weight
                order.append(cluster)
        annotations = (applied.get("metadata") or {}).get("annotations") or {}
        migrated_at = parse_time(annotations.get(MIGRATED_AT))
        written = str(annotations.get(GENERATION, ""))
        generation = int(written) if written.isdigit() else 0
    gateways = {o.name: o for o in observed.of_kind(GATEWAY)}
    routes = {o.name: o for o in observed.of_kind(HTTPROUTE)}
    found_gateway = gateways.get(gateway_name(rs_name))
    found_route = routes.get(route_name(rs_name))
    ready = (
        found_gateway is not None
        and _true(found_gateway.status.get("conditions"), "Accepted", "Programmed")
        and found_route is not None
        and _route_accepted(found_route, gateway_name(rs_name))
    )
    return Observation(weights, migrated_at, ready, applied is not None, tuple(order), generation)


def _backend_refs(route_child: Child) -> list[Mapping[str, Any]]:
    spec = route_child.get("spec")
    rules = spec.get("rules") if isinstance(spec, Mapping) else None
    refs: list[Mapping[str, Any]] = []
    for rule in rules if isinstance(rules, list) else []:
        found = rule.get("backendRefs") if isinstance(rule, Mapping) else None
        refs += [r for r in found if isinstance(r, Mapping)] if isinstance(found, list) else []
    return refs


def _route_accepted(found: ObservedObject, parent: str) -> bool:
    parents = found.status.get("parents")
    for entry in parents if isinstance(parents, list) else []:
        if not isinstance(entry, Mapping):
            continue
        ref = entry.get("parentRef")
        if isinstance(ref, Mapping) and ref.get("name") == parent:
            return _true(entry.get("conditions"), "Accepted", "ResolvedRefs")
    return False


def _true(conditions: Any, *kinds: str) -> bool:
    found = {
        c.get("type"): c.get("status")
        for c in (conditions if isinstance(conditions, list) else [])
        if isinstance(c, Mapping) and isinstance(c.get("type"), str)  # a key: hashable
    }
    return all(found.get(kind) == "True" for kind in kinds)
