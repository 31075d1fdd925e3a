"""The related objects and Serve views of a generated RayService world: the head Services
metaray's RayCluster controller makes (and look-alikes it does not), EndpointSlices, token
Secrets, and the poller's word on each cluster's Serve applications."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from app.core.time import stamp
from app.rayservice import children as built
from app.rayservice.options import Options
from app.rayservice.serve import Application, Deployment, ServeView
from tests.fuzz.rayjob_strategies import NOW
from tests.fuzz.strategies import JSON_VALUES, one_in

RAYCLUSTER = "RayCluster.ray.io/v1"
SERVICE = "Service.v1"
SLICE = "EndpointSlice.discovery.k8s.io/v1"
SECRET = "Secret.v1"
GATEWAY = "Gateway.gateway.networking.k8s.io/v1"
HTTPROUTE = "HTTPRoute.gateway.networking.k8s.io/v1"
OPTIONS = Options(gateway_api=True)
DOMAIN = OPTIONS.cluster.cluster_domain

# -- related objects ------------------------------------------------------------------------
HEAD_READY = {
    "state": "ready",
    "conditions": [{"type": "HeadPodReady", "status": "True", "reason": "HeadPodRunningAndReady"}],
}


def cluster_status(draw: st.DrawFn) -> dict[str, Any] | None:
    chosen = draw(st.sampled_from([HEAD_READY, HEAD_READY, HEAD_READY, {"state": ""}, None]))
    return copy.deepcopy(chosen)  # mutations must not reach the constant


def head_service(cluster: dict[str, Any], rs_name: str, hostile: str) -> dict[str, Any]:
    """What metaray's RayCluster controller makes for a cluster (or, ``hostile``, a look-alike
    owned by something else, or with no dashboard port)."""
    name = cluster["metadata"]["name"]
    uid = cluster["metadata"]["uid"] if hostile != "foreign" else "someone-else"
    port = {"name": "dashboard" if hostile != "no-port" else "http", "port": 8265}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{name}-head-svc",
            "namespace": "default",
            "labels": {
                "ray.io/cluster": name,
                "ray.io/node-type": "head",
                **built.originated(rs_name),
            },
            "ownerReferences": [
                {"kind": "RayCluster", "name": name, "uid": uid, "controller": True}
            ],
        },
        "spec": {"ports": [port, {"name": "serve", "port": 8000}]},
    }


def endpoint_slice(service: str, targets: list[str], ready: bool) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-abcde",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "endpoints": [
            {"addresses": ["10.0.0.9"], "conditions": {"ready": ready}, "targetRef": {"uid": t}}
            for t in targets
        ],
    }


def head_pod(cluster: dict[str, Any], rs_name: str, serve: str, running: bool) -> dict[str, Any]:
    """The cluster's head pod as its controller makes it, labelled ``ray.io/serve``."""
    name = cluster["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-head",
            "namespace": "default",
            "uid": f"pod-{name}",
            "labels": {
                "ray.io/cluster": name,
                "ray.io/node-type": "head",
                "ray.io/serve": serve,
                **built.originated(rs_name),
            },
            "ownerReferences": [
                {"kind": "RayCluster", "uid": cluster["metadata"]["uid"], "controller": True}
            ],
        },
        "spec": {"containers": [{"name": "ray-head"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.5"} if running else {"phase": "Pending"},
    }


def token_secret(cluster: dict[str, Any], rs_name: str) -> dict[str, Any]:
    name = cluster["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"ray.io/cluster": name, **built.originated(rs_name)},
            "ownerReferences": [
                {"kind": "RayCluster", "uid": cluster["metadata"]["uid"], "controller": True}
            ],
        },
        "data": {"auth_token": "dG9rZW4="},
    }


def gateway_object(rs_name: str) -> dict[str, Any]:
    """The Gateway and HTTPRoute of an incremental upgrade as metaray last asked for them
    (written out here: what the core reads is their shape, not its builder's arguments)."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": f"{rs_name}-gateway", "namespace": "default"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }


def route_object(
    rs_name: str, weights: dict[str, int], moved: datetime | None, generation: int
) -> dict[str, Any]:
    annotations = {"metaray.io/rayservice-generation": str(generation)}
    if moved is not None:
        annotations["metaray.io/traffic-migrated-at"] = stamp(moved)
    refs = [
        {
            "kind": "Service",
            "name": f"{c}-serve-svc",
            "namespace": "default",
            "port": 8000,
            "weight": w,
        }
        for c, w in weights.items()
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": f"{rs_name}-httproute",
            "namespace": "default",
            "annotations": annotations,
        },
        "spec": {
            "parentRefs": [{"name": f"{rs_name}-gateway", "namespace": "default"}],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}
            ],
        },
    }


def url_of(cluster: str) -> str:
    return f"{cluster}-head-svc.default.svc.{DOMAIN}:8265"


# -- the Serve views ---------------------------------------------------------------------------
APP_STATUSES = st.sampled_from(
    ["RUNNING", "RUNNING", "DEPLOYING", "UNHEALTHY", "DEPLOY_FAILED", "running", ""]
)
# A deployed_app_config as Ray (or whatever answers at the dashboard's port) may report it.
ODD = st.one_of(
    st.sampled_from([{"name": "old"}, None, [], "x", {"name": math.nan}, {"x": 2**70}]),
    JSON_VALUES,
)


@st.composite
def serve_views(draw: st.DrawFn, cluster: str, config: dict[str, Any] | None) -> ServeView | None:
    """The poller's word on one cluster: none, never answered, failing, no applications, or
    applications in some state running the config asked for or another one."""
    kind = draw(
        st.sampled_from(["ready", "apps", "apps", "none", "unanswered", "failing", "empty"])
    )
    if kind == "none":
        return None
    url = url_of(cluster) if kind == "ready" or not one_in(draw, 8) else "evil.example.com:8265"
    if kind == "unanswered":
        return ServeView(url)
    if kind == "empty":
        return ServeView(url, ())
    perfect = kind == "ready" and config is not None
    wanted = config if config is not None and (perfect or not one_in(draw, 4)) else {}
    apps = []
    common = draw(APP_STATUSES)
    for app in wanted.get("applications") or [{"name": "fruit", "import_path": "old"}]:
        deployed = {**app, "runtime_env": {}} if perfect or not one_in(draw, 5) else draw(ODD)
        status = "RUNNING" if perfect else draw(APP_STATUSES) if one_in(draw, 4) else common
        deployments = (("Ingress", Deployment("HEALTHY" if status == "RUNNING" else status)),)
        apps.append(
            (str(app.get("name") or "default"), Application(status, "", deployments, deployed))
        )
    failing = stamp(NOW - timedelta(seconds=5)) if kind == "failing" else None
    # Ray's answer as the shell parses it (Python's json: NaN and Infinity too).
    capacity = draw(st.sampled_from([None, None, 0.0, 50.0, 100.0, 30, math.nan, math.inf, 1e300]))
    return ServeView(url, tuple(apps), failing, "timed out" if failing else "", capacity)
