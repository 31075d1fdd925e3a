"""Decoding a Metacontroller sync request into the parent and the slim observed children.

A 1,000-pod request is ~9 MB, and most of it (managedFields, most of spec and status) is never
needed: msgspec decodes the bytes straight into the slim models and skips the rest without
building it. Each child's last-applied configuration is what metaray answers for a child it
keeps unchanged; it is checked (valid JSON naming that child) but never built either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from app.core import kinds
from app.core.observed import (
    Child,
    JSONObject,
    Observed,
    ObservedObject,
    ObservedPod,
    ObservedService,
    RawChild,
)

LAST_APPLIED = "metacontroller.k8s.io/last-applied-configuration"
_NO_RELATED = msgspec.Raw(b"{}")
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


class _KnownChildren(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    rename={
        "pods": kinds.POD,
        "services": kinds.SERVICE,
        "ingresses": kinds.INGRESS,
        "service_accounts": kinds.SERVICE_ACCOUNT,
        "roles": kinds.ROLE,
        "role_bindings": kinds.ROLE_BINDING,
        "jobs": kinds.JOB,
        "secrets": kinds.SECRET,
        "network_policies": kinds.NETWORK_POLICY,
        "claims": kinds.PVC,
        "issuers": kinds.ISSUER,
        "certificates": kinds.CERTIFICATE,
    },
):
    """The child types metaray registers, decoded in the same pass as the request."""

    pods: dict[str, ObservedPod] = {}
    services: dict[str, ObservedService] = {}
    ingresses: dict[str, ObservedObject] = {}
    service_accounts: dict[str, ObservedObject] = {}
    roles: dict[str, ObservedObject] = {}
    role_bindings: dict[str, ObservedObject] = {}
    jobs: dict[str, ObservedObject] = {}
    # The token Secret (authOptions): only its metadata is decoded; its text, token included,
    # stays in the last-applied configuration that is answered back unchanged.
    secrets: dict[str, ObservedObject] = {}
    network_policies: dict[str, ObservedObject] = {}
    claims: dict[str, ObservedObject] = {}
    # None: the request has no key for the type (not registered, see kinds.OPTIONAL).
    issuers: dict[str, ObservedObject] | None = None
    certificates: dict[str, ObservedObject] | None = None


class _KnownRequest(msgspec.Struct, frozen=True):
    parent: dict[str, Any]
    children: _KnownChildren = msgspec.field(default_factory=_KnownChildren)
    # Decoded only for the hooks that read related objects (RayJob's).
    related: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_RELATED)
    finalizing: bool = False


class _Request(msgspec.Struct, frozen=True):
    parent: dict[str, Any]
    # Child types metaray does not know: each child is decoded in a second pass.
    children: dict[str, dict[str, msgspec.Raw]] = {}
    related: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_RELATED)
    finalizing: bool = False


class _CustomizeRequest(msgspec.Struct, frozen=True):
    parent: dict[str, Any]


class _Name(msgspec.Struct):
    name: str


class _Identity(msgspec.Struct):
    apiVersion: str
    kind: str
    metadata: _Name


_KNOWN = msgspec.json.Decoder(_KnownRequest)
_CUSTOMIZE = msgspec.json.Decoder(_CustomizeRequest)
_RELATED = msgspec.json.Decoder(dict[str, dict[str, msgspec.Raw]])
_REQUEST = msgspec.json.Decoder(_Request)
_POD = msgspec.json.Decoder(ObservedPod)
_SERVICE = msgspec.json.Decoder(ObservedService)
_OBJECT = msgspec.json.Decoder(ObservedObject)
_IDENTITY = msgspec.json.Decoder(_Identity)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What the core is given: the parent as sent, the observed children, and the related
    objects a customize hook asked for (read-only: never answered, never deleted)."""

    parent: dict[str, Any]
    observed: Observed
    finalizing: bool = False
    related: Observed = field(default_factory=Observed)


def decode(body: bytes, *, related: bool = False, raycluster: bool = True) -> SyncRequest:
    """The request; its ``related`` objects too when ``related`` (a controller with a
    customize hook), else they are skipped unread. ``raycluster``: the children are the
    RayCluster controller's types, decoded in one pass (else in two: the RayJob controller's)."""
    try:
        parent, observed, raw_related, finalizing = _decode(body, raycluster)
        objects = _observed(_RELATED.decode(raw_related)) if related else None
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise BadRequest(f"not a Metacontroller sync request: {error}") from None
    except RecursionError:
        raise BadRequest("not a Metacontroller sync request: nested too deeply") from None
    _check_children(observed)
    applied = _last_applied(observed)
    missing = [key for key in observed.keys() if key not in applied]  # noqa: SIM118
    if missing:
        applied |= _stripped(body, missing)
    return SyncRequest(
        parent=parent,
        observed=Observed(
            observed.pods, observed.services, observed.others, applied, observed.unregistered
        ),
        finalizing=finalizing,
        related=objects if objects is not None else Observed(),
    )


def decode_customize(body: bytes) -> dict[str, Any]:
    """The parent of a customize request (``{controller, parent}``)."""
    try:
        return _CUSTOMIZE.decode(body).parent
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise BadRequest(f"not a Metacontroller customize request: {error}") from None
    except RecursionError:
        raise BadRequest("not a Metacontroller customize request: nested too deeply") from None


def _decode(body: bytes, raycluster: bool) -> tuple[dict[str, Any], Observed, msgspec.Raw, bool]:
    """One pass when every child type is one the RayCluster controller registers; two passes
    otherwise (the RayJob controller's RayCluster children, a type registered by hand)."""
    known = _known(body) if raycluster else None
    if known is None:
        request = _REQUEST.decode(body)
        return request.parent, _observed(request.children), request.related, request.finalizing
    children = known.children
    others = {
        kind: tuple(objects.values())
        for kind, objects in (
            (kinds.INGRESS, children.ingresses),
            (kinds.JOB, children.jobs),
            (kinds.ROLE, children.roles),
            (kinds.ROLE_BINDING, children.role_bindings),
            (kinds.SERVICE_ACCOUNT, children.service_accounts),
            (kinds.SECRET, children.secrets),
            (kinds.NETWORK_POLICY, children.network_policies),
            (kinds.PVC, children.claims),
            (kinds.ISSUER, children.issuers or {}),
            (kinds.CERTIFICATE, children.certificates or {}),
        )
        if objects
    }
    missing = {kinds.ISSUER: children.issuers, kinds.CERTIFICATE: children.certificates}
    observed = Observed(
        tuple(children.pods.values()),
        tuple(children.services.values()),
        dict(sorted(others.items())),
        unregistered=frozenset(kind for kind, objects in missing.items() if objects is None),
    )
    return known.parent, observed, known.related, known.finalizing


def _known(body: bytes) -> _KnownRequest | None:
    """The one-pass decode, or None when a child type is not one it knows."""
    try:
        return _KNOWN.decode(body)
    except msgspec.ValidationError:
        return None


def _observed(children: Mapping[str, Mapping[str, msgspec.Raw]]) -> Observed:
    pods = tuple(_POD.decode(raw) for raw in children.get(kinds.POD, {}).values())
    services = tuple(_SERVICE.decode(raw) for raw in children.get(kinds.SERVICE, {}).values())
    others = {
        kind: tuple(_OBJECT.decode(raw) for raw in objects.values())
        for kind, objects in sorted(children.items())
        if kind not in (kinds.POD, kinds.SERVICE)
    }
    return Observed(pods, services, others, unregistered=kinds.OPTIONAL - set(children))


def _check_children(observed: Observed) -> None:
    """Every child is of the type it is listed under, and listed once."""
    seen: set[tuple[str, str]] = set()
    children: list[tuple[str, ObservedPod | ObservedService | ObservedObject]]
    children = [(kinds.POD, pod) for pod in observed.pods]
    children += [(kinds.SERVICE, service) for service in observed.services]
    children += [(kind, obj) for kind, objs in observed.others.items() for obj in objs]
    for key, child in children:
        actual = f"{child.kind}.{child.apiVersion}"
        if actual != key:
            raise BadRequest(f"child {child.metadata.name!r} listed under {key} is a {actual}")
        if (key, child.metadata.name) in seen:
            raise BadRequest(f"child {key} {child.metadata.name!r} is listed twice")
        seen.add((key, child.metadata.name))


def _last_applied(observed: Observed) -> dict[tuple[str, str], Child]:
    """Each child's last-applied configuration, where it is one and names that child."""
    found: dict[tuple[str, str], Child] = {}
    metas = [(kinds.POD, pod.metadata) for pod in observed.pods]
    metas += [(kinds.SERVICE, service.metadata) for service in observed.services]
    metas += [(kind, obj.metadata) for kind, objs in observed.others.items() for obj in objs]
    for kind, meta in metas:
        text = meta.annotations.get(LAST_APPLIED)
        if text is not None and _describes(text, kind, meta.name):
            found[(kind, meta.name)] = RawChild(meta.name, text)
    return found


def _describes(text: str, key: str, name: str) -> bool:
    """Whether ``text`` is a JSON object of type ``key`` (kind and apiVersion) named ``name``:
    only then does answering it keep that very child."""
    try:
        identity = _IDENTITY.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return False
    return identity.metadata.name == name and f"{identity.kind}.{identity.apiVersion}" == key


def _stripped(body: bytes, keys: list[tuple[str, str]]) -> dict[tuple[str, str], JSONObject]:
    """The observed objects without status and server-set metadata (rare: a full decode)."""
    wanted = set(keys)
    found: dict[tuple[str, str], JSONObject] = {}
    try:
        children: Mapping[str, Mapping[str, Any]] = orjson.loads(body)["children"]
    except orjson.JSONDecodeError as error:
        # Bytes msgspec skipped unread (a lone surrogate escape, an integer beyond 64 bits in a
        # field no model reads) are read whole here for the first time.
        raise BadRequest(f"not a Metacontroller sync request: {error}") from None
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
