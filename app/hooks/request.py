"""Decoding a Metacontroller sync request into the parent and the slim observed children.

Children are decoded straight from the bytes into slim models: a 1,000-pod request is ~9 MB,
and most of it (managedFields, status details) is never needed. Each child's last-applied
configuration is what metaray answers for a child it keeps unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.raycluster.observed import (
    POD_KEY,
    SERVICE_KEY,
    JSONObject,
    Observed,
    ObservedObject,
    ObservedPod,
    ObservedService,
)

LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
# Set by the API server or by Metacontroller, never part of what metaray asked for.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "ownerReferences",
)


class BadRequest(ValueError):
    """The body is not a sync request; nothing may be changed on its account."""


class _Children(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, dict[str, ObservedObject]]

    pods: dict[str, ObservedPod] = Field(default={}, alias=POD_KEY)
    services: dict[str, ObservedService] = Field(default={}, alias=SERVICE_KEY)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    parent: dict[str, Any]
    children: _Children = _Children()
    finalizing: bool = False


class SyncRequest(BaseModel):
    """What the core is given: the parent as sent, and the observed children."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    parent: dict[str, Any]
    observed: Observed
    finalizing: bool = False


def decode(body: bytes) -> SyncRequest:
    try:
        request = _Request.model_validate_json(body)
    except ValidationError as error:
        raise BadRequest(_describe(error)) from None
    children = request.children
    others = {
        kind: tuple(objects.values())
        for kind, objects in sorted((children.model_extra or {}).items())
    }
    observed = Observed(
        pods=tuple(children.pods.values()),
        services=tuple(children.services.values()),
        others=others,
    )
    applied = _last_applied(observed)
    missing = [key for key in observed.keys() if key not in applied]  # noqa: SIM118
    if missing:
        applied |= _stripped(body, missing)
    return SyncRequest(
        parent=request.parent,
        observed=Observed(observed.pods, observed.services, others, applied),
        finalizing=request.finalizing,
    )


def _describe(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"not a Metacontroller sync request: {where}: {first['msg']}{more}"


def _last_applied(observed: Observed) -> dict[tuple[str, str], JSONObject]:
    """Each child's last-applied configuration, where it is one and names that child."""
    found: dict[tuple[str, str], JSONObject] = {}
    metas = [(POD_KEY, pod.metadata) for pod in observed.pods]
    metas += [(SERVICE_KEY, service.metadata) for service in observed.services]
    metas += [(kind, obj.metadata) for kind, objs in observed.others.items() for obj in objs]
    for kind, meta in metas:
        text = meta.annotations.get(LAST_APPLIED)
        if text is None:
            continue
        try:
            config = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if _names(config, meta.name):
            found[(kind, meta.name)] = config
    return found


def _names(config: Any, name: str) -> bool:
    if not isinstance(config, dict) or not isinstance(config.get("kind"), str):
        return False
    metadata = config.get("metadata")
    return isinstance(metadata, dict) and metadata.get("name") == name


def _stripped(body: bytes, keys: list[tuple[str, str]]) -> dict[tuple[str, str], JSONObject]:
    """The observed objects without status and server-set metadata (rare: a full decode)."""
    children: Mapping[str, Mapping[str, Any]] = orjson.loads(body)["children"]
    wanted = set(keys)
    found: dict[tuple[str, str], JSONObject] = {}
    for kind, objects in children.items():
        for obj in objects.values():
            name = obj["metadata"]["name"]
            if (kind, name) in wanted:
                found[(kind, name)] = strip(obj)
    return found


def strip(obj: Mapping[str, Any]) -> JSONObject:
    metadata = {k: v for k, v in obj["metadata"].items() if k not in SERVER_METADATA}
    annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k != LAST_APPLIED
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    result = {k: v for k, v in obj.items() if k != "status"}
    result["metadata"] = metadata
    return result
