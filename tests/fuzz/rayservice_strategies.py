"""Generators of RayService sync requests: valid RayServices in every phase, with the children
and related objects Metacontroller would send and the Serve poller's views (hostile variants:
``rayservice_hostile.py``; related objects and views: ``rayservice_objects.py``).

``rayservice_worlds``: a RayService (a sample from ``samples/ray-service.*.yaml`` or a generated
one; upgradeStrategy absent, NewCluster, None or incremental) in one phase (first deploy,
pending cluster named or up, serving, upgrading, cut-over done with the old cluster awaiting
its delay, suspend staged, suspending, suspended or resumed, timing out, timed out), its
observed RayClusters (built as the core builds them, with and without status, now and then
terminating), its Services (and Gateway and HTTPRoute when incremental), the related head
Services, head pods (for the head-pod serve label), EndpointSlices and token Secrets its
customize hook asks for; and the Serve views (applications RUNNING, DEPLOYING, UNHEALTHY or
none, the config asked for or another, never answered, failing, at an address metaray did not
derive). ``damage`` corrupts the status a
quarter of the time and mutates the body a third of the time.
"""

from __future__ import annotations

import copy
import functools
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from app.core.time import stamp
from app.rayservice import children as built
from app.rayservice import names
from app.rayservice import sync as rayservice_sync
from app.rayservice.serve import ServeView
from app.rayservice.spec import RayService, parse_rayservice
from tests.fuzz.rayjob_strategies import NOW, as_observed
from tests.fuzz.rayservice_objects import (
    GATEWAY,
    HEAD_READY,
    HTTPROUTE,
    OPTIONS,
    RAYCLUSTER,
    SECRET,
    SERVICE,
    SLICE,
    cluster_status,
    endpoint_slice,
    gateway_object,
    head_pod,
    head_service,
    route_object,
    serve_views,
    token_secret,
)
from tests.fuzz.strategies import mutations, one_in, paths
from tests.rayservice.loop import SERVE_CONFIG, rayservice_object

POD = "Pod.v1"
SAMPLES_DIR = Path(__file__).parents[2] / "samples"
IMAGES = ("rayproject/ray:2.52.0", "rayproject/ray:2.53.0")
OTHER_CONFIG = SERVE_CONFIG.replace("price: 3", "price: 7")
PHASES = (
    "first deploy",
    "pending named",
    "pending up",
    "serving",
    "upgrading",
    "awaiting delay",
    "staging suspend",
    "suspending",
    "suspended",
    "timing out",
    "timed out",
)
NAMES = st.sampled_from(["svc", "rayservice-sample", "s", "x" * 47])
UIDS = st.sampled_from(["uid-rs-1", "e3e70682-c209-4cac", ""])
TIMEOUT = "ray.io/initializing-timeout"


@functools.cache
def samples() -> tuple[dict[str, Any], ...]:
    """The RayServices of ``samples/`` (their specs are the realistic ones)."""
    found = []
    for path in sorted(SAMPLES_DIR.glob("ray-service.*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "RayService":
                found.append(doc)
    return tuple(found)


def _image(spec: dict[str, Any], image: str) -> None:
    spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = image


@st.composite
def rayservice_specs(draw: st.DrawFn, incremental: bool | None = None) -> dict[str, Any]:
    """A spec metaray accepts (with the Gateway API overlay installed)."""
    if incremental is None:
        incremental = one_in(draw, 6)
    if not incremental and one_in(draw, 3):
        spec = copy.deepcopy(draw(st.sampled_from(samples()))["spec"])
    else:
        spec = rayservice_object()["spec"]
        if one_in(draw, 6):
            spec["rayClusterConfig"]["authOptions"] = {"mode": "token"}
    if incremental:
        spec["rayClusterConfig"]["enableInTreeAutoscaling"] = True
        options = {"gatewayClassName": "istio", "stepSizePercent": draw(st.sampled_from([10, 50]))}
        options |= {"intervalSeconds": draw(st.sampled_from([1, 30])), "maxSurgePercent": 50}
        spec["upgradeStrategy"] = {
            "type": "NewClusterWithIncrementalUpgrade",
            "clusterUpgradeOptions": options,
        }
    else:
        strategy = draw(st.sampled_from([None, None, "NewCluster", "None"]))
        if strategy is not None:
            spec["upgradeStrategy"] = {"type": strategy}
    if one_in(draw, 2):
        spec["rayClusterDeletionDelaySeconds"] = draw(st.sampled_from([0, 3, 60, 3600]))
    if one_in(draw, 6):
        spec["excludeHeadPodFromServeSvc"] = True
    if one_in(draw, 6):
        spec["serveService"] = {
            "metadata": {"name": "custom-serve", "labels": {"team": "a"}},
            "spec": {"ports": [{"name": "serve", "port": 9000}]},
        }
    variant = draw(st.sampled_from(["same", "same", "same", "other", "none"]))
    if variant == "other" and "serveConfigV2" in spec:
        spec["serveConfigV2"] = OTHER_CONFIG
    elif variant == "none":
        spec.pop("serveConfigV2", None)
    return spec


def parent_of(spec: dict[str, Any], name: str, uid: str, status: Any = None) -> dict[str, Any]:
    parent: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "generation": 2,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
    }
    if status is not None:
        parent["status"] = status
    return parent


def request(parent: Any, children: dict[str, Any], related: dict[str, Any]) -> dict[str, Any]:
    return {
        "controller": {
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "metaray-rayservice"},
        },
        "parent": parent,
        "children": children,
        "related": related,
        "finalizing": False,
    }


# -- the status ------------------------------------------------------------------------------
def _condition(kind: str, status: str, reason: str, since: str) -> dict[str, Any]:
    return {
        "lastTransitionTime": since,
        "message": reason,
        "reason": reason,
        "status": status,
        "type": kind,
    }


def _side(cluster: str | None, apps: bool) -> dict[str, Any]:
    if cluster is None:
        return {}
    side: dict[str, Any] = {"rayClusterName": cluster}
    if apps:
        side["applicationStatuses"] = {"fruit": {"status": "RUNNING"}}
    return side


def status_of(
    active: str | None,
    pending: str | None,
    listed: dict[str, str],
    conditions: list[dict[str, Any]],
    endpoints: int = 0,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "activeServiceStatus": _side(active, True),
        "pendingServiceStatus": _side(pending, False),
        "conditions": conditions,
        "numServeEndpoints": endpoints,
        "serviceStatus": "Running" if endpoints else "",
        "observedGeneration": 1,
        "lastUpdateTime": stamp(NOW - timedelta(seconds=30)),
    }
    if listed:
        status["rayClustersToDelete"] = [
            {"deleteAfter": when, "name": n} for n, when in sorted(listed.items())
        ]
    return status


# -- a whole world -------------------------------------------------------------------------------
class _World:
    """The children and related objects of one request, as they are added."""

    def __init__(self, draw: st.DrawFn, parent: dict[str, Any], rs: RayService) -> None:
        self.draw, self.parent, self.rs = draw, parent, rs
        self.children: dict[str, dict[str, Any]] = {RAYCLUSTER: {}, SERVICE: {}}
        self.related: dict[str, dict[str, Any]] = {SERVICE: {}, SLICE: {}, SECRET: {}}
        self.serial = 0
        self.clusters: dict[str, dict[str, Any]] = {}

    def add(self, key: str, applied: dict[str, Any], status: Any) -> dict[str, Any]:
        self.serial += 1
        obj = self.draw(as_observed(applied, self.parent, self.serial, status))
        obj["metadata"]["ownerReferences"][0]["kind"] = "RayService"
        self.children.setdefault(key, {})[f"default/{applied['metadata']['name']}"] = obj
        return obj

    def cluster(self, name: str, rs: RayService) -> None:
        if name in self.clusters:
            return
        # The core's own builder, as its sync calls it (the builder's arguments move).
        applied = rayservice_sync._cluster(rs, name)
        obj = self.add(RAYCLUSTER, applied, cluster_status(self.draw))
        self.clusters[name] = obj
        if obj.get("status") == HEAD_READY or one_in(self.draw, 6):
            hostile = self.draw(st.sampled_from(["", "", "", "", "foreign", "no-port"]))
            svc = head_service(obj, self.rs.name, hostile)
            self.related[SERVICE][f"default/{svc['metadata']['name']}"] = svc
        if self.draw(st.booleans()):
            serve = self.draw(st.sampled_from(["true", "false", "maybe"]))
            pod = head_pod(obj, self.rs.name, serve, obj.get("status") == HEAD_READY)
            self.related.setdefault(POD, {})[f"default/{pod['metadata']['name']}"] = pod
        auth = rs.spec.rayClusterConfig.get("authOptions") or {}
        if auth.get("mode") == "token" and not one_in(self.draw, 4):
            self.related[SECRET][f"default/{name}"] = token_secret(obj, self.rs.name)

    def services(self, target: str, endpoints: bool) -> None:
        """The head and serve Services selecting ``target``, as metaray built them."""
        rs = self.rs
        spec = rs.cluster_spec
        head = built.head_service(rs.name, rs.namespace, target, spec, OPTIONS.cluster)
        serve = built.serve_service(rs.name, rs.namespace, target, spec, rs.spec.serveService)
        for service in (head, serve):
            self.add(SERVICE, service, {"loadBalancer": {}})
        serve_name = serve["metadata"]["name"]
        uid = self.clusters.get(target, {}).get("metadata", {}).get("uid", "x")
        ready = endpoints and not one_in(self.draw, 4)
        self.related[SLICE][f"default/{serve_name}-abcde"] = endpoint_slice(
            serve_name, [uid], ready
        )


def _variant(spec: dict[str, Any], name: str, uid: str) -> RayService:
    """The RayService as it was before its cluster spec changed (another image)."""
    old = copy.deepcopy(spec)
    _image(old, IMAGES[1] if "2.52.0" in str(old["rayClusterConfig"]) else IMAGES[0])
    return parse_rayservice(parent_of(old, name, uid), gateway_api=True)


@st.composite
def rayservice_worlds(
    draw: st.DrawFn, *, damage: bool = True, phase: str | None = None
) -> tuple[dict[str, Any], dict[str, ServeView]]:
    """A RayService sync request in one phase, and the Serve views of its clusters."""
    name, uid = draw(NAMES), draw(UIDS)
    spec = draw(rayservice_specs())
    phase = phase or draw(st.sampled_from(PHASES))
    if phase == "timing out" or (phase == "first deploy" and one_in(draw, 4)):
        annotations = {TIMEOUT: draw(st.sampled_from(["30s", "10m", "600"]))}
    else:
        annotations = {}
    parent = parent_of(spec, name, uid)
    if annotations:
        parent["metadata"]["annotations"] = annotations
    if one_in(draw, 3):
        parent["metadata"]["labels"] = {"team": "a"}
    rs = parse_rayservice(parent, gateway_api=True)
    old = _variant(spec, name, uid)
    goal, before = names.goal_hash(rs.cluster_spec), names.goal_hash(old.cluster_spec)
    new_name = names.cluster_name(name, uid, goal, 0)
    old_name = names.cluster_name(name, uid, before, 0)
    world = _World(draw, parent, rs)
    past, ahead = stamp(NOW - timedelta(seconds=5)), stamp(NOW + timedelta(seconds=50))
    since = stamp(NOW - timedelta(seconds=draw(st.sampled_from([1, 60, 7200]))))
    ready = _condition("Ready", "True", "NonZeroServeEndpoints", since)
    initializing = _condition("Ready", "False", "Initializing", since)
    upgrade = _condition("UpgradeInProgress", "False", "NoPendingCluster", since)
    active = pending = None
    listed: dict[str, str] = {}
    conditions = [ready, upgrade]
    if phase in ("first deploy", "timing out"):
        conditions = [] if one_in(draw, 2) and phase == "first deploy" else [initializing]
    elif phase in ("pending named", "pending up"):
        pending = new_name
        conditions = [initializing]
        if phase == "pending up":
            world.cluster(new_name, rs)
    elif phase in ("serving", "staging suspend"):
        active = new_name
        world.cluster(new_name, rs)
    elif phase == "upgrading":
        active, pending = old_name, new_name if not one_in(draw, 4) else None
        world.cluster(old_name, old)
        if pending is not None and draw(st.booleans()):
            world.cluster(new_name, rs)
    elif phase == "awaiting delay":
        active = new_name
        world.cluster(new_name, rs)
        world.cluster(old_name, old)
        listed[old_name] = draw(st.sampled_from([past, ahead]))
    elif phase in ("suspending", "suspended", "timed out"):
        kind = {"suspending": "Suspending", "suspended": "Suspended"}.get(phase)
        reason = "InitializingTimeout" if kind is None else "SuspendInProgress"
        conditions = [_condition("Ready", "False", reason, since)]
        if kind is not None:
            conditions.append(_condition(kind, "True", reason, since))
        if phase != "suspended":
            for cluster in draw(st.lists(st.sampled_from([old_name, new_name]), unique=True)):
                world.cluster(cluster, rs if cluster == new_name else old)
                listed[cluster] = draw(st.sampled_from([past, ahead]))
    if phase in ("staging suspend", "suspending") or (phase == "suspended" and draw(st.booleans())):
        spec["suspend"] = True
    if active is not None and active in world.clusters:
        world.services(active, endpoints=phase != "upgrading" or draw(st.booleans()))
    if rs.strategy == "NewClusterWithIncrementalUpgrade" and active in world.clusters:
        _gateway_children(draw, world, active, pending)
    if damage and one_in(draw, 3):  # a status from another moment: real names, other roles
        roles = [None, old_name, new_name, f"{name}-zzzzz"]
        active, pending = draw(st.sampled_from(roles)), draw(st.sampled_from(roles))
        for cluster in draw(st.lists(st.sampled_from(roles[1:]), max_size=2)):
            listed[cluster] = draw(st.sampled_from([past, ahead, "not a time"]))
    status = status_of(active, pending, listed, conditions, 1 if ready in conditions else 0)
    if phase != "first deploy" or draw(st.booleans()):
        parent["status"] = status
    views = {
        cluster: view
        for cluster in sorted(world.clusters)
        if (view := draw(serve_views(cluster, rs.serve_config))) is not None
    }
    body = request(parent, world.children, world.related)
    if damage and one_in(draw, 4):
        draw(mutations(body, [("parent", "status", *p) for p in paths(status)], most=2))
    if damage and one_in(draw, 3):
        draw(mutations(body, list(paths(body)), most=2))
        for where in ("children", "related"):
            if where in body:  # a mutation may have deleted it
                body[where] = as_served(body[where])
    return body, views


def as_served(value: Any) -> Any:
    """An observed object as an API server serves it: a JSON integer beyond 64 bits cannot be
    stored as one and comes back as a float (a corrupted parent keeps it: the hook must refuse
    or store-proof it; a child echoed with it would differ only in that rounding)."""
    if isinstance(value, dict):
        return {k: as_served(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_served(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


def _gateway_children(draw: st.DrawFn, world: _World, active: str, pending: str | None) -> None:
    rs = world.rs
    world.children.setdefault(GATEWAY, {})
    world.children.setdefault(HTTPROUTE, {})
    ok = not one_in(draw, 5)  # now and then the Gateway controller has not accepted them yet
    programmed = [{"type": t, "status": str(ok)} for t in ("Accepted", "Programmed")]
    world.add(GATEWAY, gateway_object(rs.name), {"conditions": programmed})
    weight = draw(st.sampled_from([0, 10, 50, 100])) if pending in world.clusters else 0
    weights = {active: 100 - weight}
    if pending in world.clusters and pending is not None:
        weights[pending] = weight
    moved = draw(st.sampled_from([NOW - timedelta(seconds=60), NOW, None]))
    resolved = [{"type": t, "status": str(ok)} for t in ("Accepted", "ResolvedRefs")]
    parents = [{"parentRef": {"name": f"{rs.name}-gateway"}, "conditions": resolved}]
    route = route_object(rs.name, weights, moved, rs.generation)
    world.add(HTTPROUTE, route, {"parents": parents})
