"""Offline rendering of a RayService: its answer once its first cluster serves.

There is no cluster and no Ray offline, so the walk plays both: it syncs, writes the status (the
pending cluster's name, two-phase), syncs again (the RayCluster is asked for), lets that
cluster's head be ready with the head Service its RayCluster controller makes, and lets Ray
Serve report every application of ``serveConfigV2`` RUNNING as configured, until the answer
stops changing (the head and serve Services select the cluster, which is now active).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import yaml

from app.core import labels as lbl
from app.core.desired import Desired
from app.core.time import stamp
from app.hooks.request import BadRequest, SyncRequest, decode
from app.raycluster.names import head_service_name
from app.rayservice import sync as rayservice
from app.rayservice.serve import DEFAULT_APP, Application, ServeView

RAYCLUSTER = "RayCluster.ray.io/v1"
SERVICE = "Service.v1"
# Enough syncs for: status written, cluster asked for, config applied, traffic moved.
MAX_SYNCS = 8


def render_rayservice(
    parent: dict[str, Any],
    now: datetime,
    options: rayservice.Options,
    fail: Callable[[str], Exception],
) -> Desired:
    desired = _sync(parent, {}, {}, now, options, fail)
    for _ in range(MAX_SYNCS):
        parent = {**parent, "status": desired.status}
        clusters = {
            c["metadata"]["name"]: _ready(c, parent, now)
            for c in _plain(desired.children)
            if c.get("kind") == "RayCluster"
        }
        others: dict[str, dict[str, Any]] = {}
        for c in _plain(desired.children):
            if c.get("kind") != "RayCluster":
                others.setdefault(f"{c['kind']}.{c['apiVersion']}", {})[c["metadata"]["name"]] = c
        again = _sync(parent, clusters, others, now, options, fail)
        if _plain(again.children) == _plain(desired.children) and again.status == desired.status:
            return again
        desired = again
    return desired


def _sync(
    parent: dict[str, Any],
    clusters: dict[str, Any],
    others: dict[str, dict[str, Any]],
    now: datetime,
    options: rayservice.Options,
    fail: Callable[[str], Exception],
) -> Desired:
    heads = {head_service_name(name): _head_service(c) for name, c in clusters.items()}
    body = {
        "parent": parent,
        # Gateway and HTTPRoute too where the answer has them (an incremental RayService).
        "children": {RAYCLUSTER: clusters, SERVICE: {}, **others},
        "related": {SERVICE: heads},
    }
    try:
        request: SyncRequest = decode(orjson.dumps(body), related=True, raycluster=False)
    except BadRequest as error:
        raise fail(str(error)) from None
    targets = rayservice.watched(request.observed, request.related, options)
    config = _serve_config(parent)
    views = {name: _running(target.url, config) for name, target in targets.items()}
    return rayservice.sync(request.parent, request.observed, request.related, now, options, views)


def _ready(cluster: dict[str, Any], parent: dict[str, Any], now: datetime) -> dict[str, Any]:
    meta = {**cluster["metadata"], "uid": f"render-{cluster['metadata']['name']}"}
    meta["ownerReferences"] = [
        {"kind": "RayService", "name": parent["metadata"]["name"], "controller": True}
    ]
    ready = {
        "type": "HeadPodReady",
        "status": "True",
        "reason": "HeadPodRunningAndReady",
        "message": "",
        "lastTransitionTime": stamp(now),
    }
    return {**cluster, "metadata": meta, "status": {"state": "ready", "conditions": [ready]}}


def _head_service(cluster: dict[str, Any]) -> dict[str, Any]:
    """The head Service metaray's RayCluster controller makes for the cluster, owned by it."""
    name = cluster["metadata"]["name"]
    labels = cluster["metadata"].get("labels") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": head_service_name(name),
            "namespace": cluster["metadata"]["namespace"],
            "labels": {
                lbl.CLUSTER: name,
                lbl.NODE_TYPE: lbl.HEAD,
                lbl.ORIGINATED_NAME: labels.get(lbl.ORIGINATED_NAME, ""),
                lbl.ORIGINATED_CRD: "RayService",
            },
            "ownerReferences": [
                {
                    "kind": "RayCluster",
                    "apiVersion": "ray.io/v1",
                    "name": name,
                    "uid": cluster["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"ports": [{"name": "dashboard", "port": 8265}]},
    }


def _serve_config(parent: dict[str, Any]) -> dict[str, Any]:
    text = (parent.get("spec") or {}).get("serveConfigV2")
    try:
        loaded = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _running(url: str, config: dict[str, Any]) -> ServeView:
    """Ray Serve running every application exactly as configured."""
    apps = tuple(
        (str(app.get("name") or DEFAULT_APP), Application("RUNNING", deployed=app))
        for app in config.get("applications") or []
        if isinstance(app, dict)
    )
    return ServeView(url, apps)


def as_plain(desired: Desired) -> dict[str, Any]:
    """Children and status as plain JSON data (the status's enums as their strings)."""
    plain: dict[str, Any] = orjson.loads(
        orjson.dumps({"children": desired.children, "status": desired.status}, default=_raw)
    )
    return plain


def _plain(children: list[Any]) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = orjson.loads(orjson.dumps(children, default=_raw))
    return loaded


def _raw(value: Any) -> Any:
    return orjson.Fragment(value.text)
