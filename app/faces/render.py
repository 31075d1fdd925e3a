"""Offline rendering: run the core on a manifest file, with no cluster and no Metacontroller."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from app.core import kinds
from app.core.desired import Desired
from app.faces.render_rayservice import as_plain, render_rayservice
from app.hooks.request import BadRequest, SyncRequest, decode
from app.raycluster.cluster import Options
from app.raycluster.sync import sync
from app.raycronjob import sync as raycronjob
from app.raycronjob.runs import RAYJOB
from app.rayjob import sync as rayjob
from app.rayjob.options import Options as RayJobOptions
from app.rayservice import sync as rayservice


class RenderError(ValueError):
    """The input files cannot be rendered."""


class _PlainDumper(yaml.SafeDumper):
    """Writes shared sub-objects out in full: a reader wants no YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: Any) -> str:
    return yaml.dump(
        document, Dumper=_PlainDumper, sort_keys=True, default_flow_style=False, width=100
    )


def render(
    manifest: Path,
    observed: Path | None,
    options: Options,
    job_options: RayJobOptions,
    *,
    now: datetime,
    entropy: bytes,
) -> dict[str, Any]:
    """The children and status metaray would answer, as one document.

    Pods that wait for children metaray creates first (the token Secret of authOptions, the
    Certificates of tlsOptions) are shown as they will be once those exist: the answer is
    computed again with them observed (the Certificates issued and Ready). A RayJob without
    ``--observed`` is shown as it will be once its cluster is ready: its status written, its
    RayCluster created and ready, its submitter and Service created. A RayService is shown as
    it will be once its first cluster serves (app.faces.render_rayservice).
    """
    parent = _the_parent(_load(manifest))
    children = _as_children(_load(observed) if observed is not None else [])
    if parent["kind"] == "RayCronJob":
        return _raycronjob_walk(parent, children.get(RAYJOB, {}), now)
    if parent["kind"] == "RayJob":
        if observed is not None:
            desired = _rayjob(_request(parent, children), now, job_options)
        else:
            desired = _rayjob_walk(parent, now, job_options)
        return {"children": desired.children, "status": desired.status}
    if parent["kind"] == "RayService":
        # Shown as metaray answers with the config/gateway-api overlay installed: an
        # incremental RayService renders its Gateway and HTTPRoute (nothing else differs).
        service_options = rayservice.Options(cluster=options, gateway_api=True)
        desired = render_rayservice(parent, now, service_options, RenderError)
        return as_plain(desired)
    desired = _answer(parent, children, options, entropy)
    gating = [
        c
        for c in desired.children
        if isinstance(c, dict)
        and c.get("kind") in GATING
        and c["metadata"]["name"] not in children[f"{c['kind']}.{c['apiVersion']}"]
    ]
    if gating:
        for child in gating:
            key = f"{child['kind']}.{child['apiVersion']}"
            children[key][child["metadata"]["name"]] = _as_issued(child)
        desired = _answer(parent, children, options, entropy)
    return {"children": desired.children, "status": desired.status}


PARENTS = ("RayCluster", "RayJob", "RayCronJob", "RayService")
# Children that new pods wait for.
GATING = ("Secret", "Certificate")


def _as_issued(child: dict[str, Any]) -> dict[str, Any]:
    if child["kind"] != "Certificate":
        return child
    return {**child, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def _answer(
    parent: dict[str, Any], children: dict[str, Any], options: Options, entropy: bytes
) -> Desired:
    request = _request(parent, children)
    return sync(request.parent, request.observed, options, entropy=entropy)


def _request(parent: dict[str, Any], children: dict[str, dict[str, Any]]) -> SyncRequest:
    try:
        return decode(orjson.dumps({"parent": parent, "children": children}))
    except BadRequest as error:
        raise RenderError(str(error)) from None


def _rayjob(request: SyncRequest, now: datetime, options: RayJobOptions) -> Desired:
    return rayjob.sync(request.parent, request.observed, request.related, now, options)


def _rayjob_walk(parent: dict[str, Any], now: datetime, options: RayJobOptions) -> Desired:
    """Sync, write the status, sync again, then let the created children exist (owned by the
    RayJob, as Metacontroller makes them) and the created cluster be ready."""
    desired = _rayjob(_request(parent, {}), now, options)
    for _ in range(3):
        parent = {**parent, "status": desired.status}
        created = orjson.loads(orjson.dumps(desired.children, default=_raw))
        desired = _rayjob(_request(parent, _as_created(parent, created)), now, options)
    return desired


def _as_created(
    parent: dict[str, Any], children: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The children as the API server would hold them: the parent their controller (which is
    how metaray tells its own objects from a user's), a RayCluster ready."""
    owner = {
        "apiVersion": parent.get("apiVersion", ""),
        "kind": parent.get("kind", ""),
        "name": parent["metadata"].get("name", ""),
        "uid": parent["metadata"].get("uid", ""),
        "controller": True,
    }
    observed: dict[str, dict[str, Any]] = {}
    for child in children:
        metadata = {**child["metadata"], "ownerReferences": [owner]}
        made = {**child, "metadata": metadata}
        if child.get("kind") == "RayCluster":
            made["status"] = {"state": "ready"}
        observed.setdefault(kinds.key_of(made), {})[metadata["name"]] = made
    return observed


def _raycronjob_walk(parent: dict[str, Any], runs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What a RayCronJob has created at ``now``: sync until nothing changes (the tick decided,
    then its RayJob created and observed). Without a creationTimestamp the RayCronJob is taken
    as created long before, so the latest tick at or before ``now`` is the one shown."""
    metadata = parent["metadata"]
    metadata.setdefault("creationTimestamp", "1970-01-01T00:00:00Z")
    events: list[str] = []
    for _ in range(4):
        request = _request(parent, {RAYJOB: runs})
        desired = raycronjob.sync(request.parent, request.observed, now)
        events += [f"{e.type} {e.reason}: {e.message}" for e in desired.events]
        answered = orjson.loads(orjson.dumps(desired.children, default=_raw))
        if desired.status == parent.get("status") and len(answered) == len(runs):
            break
        parent = {**parent, "status": desired.status}
        runs = {c["metadata"]["name"]: runs.get(c["metadata"]["name"], c) for c in answered}
    document = {"children": answered, "status": desired.status, "events": events}
    if desired.resync_after is not None:
        document["resyncAfterSeconds"] = desired.resync_after
    return document


def _raw(value: Any) -> Any:
    return orjson.Fragment(value.text)


def _load(path: Path) -> list[Any]:
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except (OSError, yaml.YAMLError) as error:
        raise RenderError(f"cannot read {path}: {error}") from None
    flat: list[Any] = []
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind", "").endswith("List"):
            flat.extend(doc.get("items") or [])
        else:
            flat.append(doc)
    return flat


def _the_parent(documents: list[Any]) -> dict[str, Any]:
    """The one RayCluster, RayJob, RayCronJob or RayService of a manifest (a ConfigMap may
    stand beside it)."""
    parents = [d for d in documents if isinstance(d, dict) and d.get("kind") in PARENTS]
    if len(parents) != 1:
        raise RenderError(
            "expected exactly one RayCluster, RayJob, RayCronJob or RayService in the manifest,"
            f" found {len(parents)}"
        )
    parent = dict(parents[0])
    metadata = dict(parent.get("metadata") or {})
    metadata.setdefault("namespace", "default")
    # Offline there is no API server to assign a uid: derive a stable one from the name.
    metadata.setdefault("uid", f"render-{metadata.get('namespace')}-{metadata.get('name')}")
    parent["metadata"] = metadata
    return parent


def _as_children(objects: list[Any]) -> dict[str, dict[str, Any]]:
    # Every type metaray manages, as Metacontroller registered with config/mtls/ sends them.
    children: dict[str, dict[str, Any]] = {kind: {} for kind in sorted(kinds.MANAGED)}
    for obj in objects:
        if not isinstance(obj, dict):
            raise RenderError("observed objects must be Kubernetes objects")
        version = obj.get("apiVersion", "v1")
        key = f"{obj.get('kind')}.{version}"
        name = (obj.get("metadata") or {}).get("name")
        children.setdefault(key, {})[str(name)] = obj
    return children
