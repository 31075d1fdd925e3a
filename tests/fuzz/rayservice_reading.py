"""How the RayService oracle reads a request and an answer: the status's sides and listings,
the Services' selectors, the route's weights, label validity, and each cluster's dashboard
address derived (independently of the core) from the head Service metaray owns for it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.time import parse_time
from app.rayservice.serve import ServeView
from tests.fuzz.rayjob_oracle import observed
from tests.fuzz.rayservice_objects import OPTIONS, RAYCLUSTER, SERVICE

TO_DELETE = "rayClustersToDelete"
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def mapping_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def condition_of(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    items = status.get("conditions")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return item
    return None


def is_true(status: Mapping[str, Any], kind: str) -> bool:
    found = condition_of(status, kind)
    return found is not None and found.get("status") == "True"


def side(status: Mapping[str, Any], key: str) -> str | None:
    name = mapping_of(status.get(key)).get("rayClusterName")
    return name if isinstance(name, str) and name else None


def listed(status: Mapping[str, Any]) -> dict[str, str]:
    """``rayClustersToDelete`` as metaray reads it: entries with a name and a time."""
    entries = status.get(TO_DELETE)
    found = {}
    for entry in entries if isinstance(entries, list) else []:
        name, when = mapping_of(entry).get("name"), mapping_of(entry).get("deleteAfter")
        if isinstance(name, str) and isinstance(when, str) and parse_time(when) is not None:
            found[name] = when
    return found


def selector_of(child: Any) -> str | None:
    value = mapping_of(mapping_of(mapping_of(child).get("spec")).get("selector")).get(
        "ray.io/cluster"
    )
    return value if isinstance(value, str) else None


def weighted(route: Any) -> set[str]:
    """The serve Services an HTTPRoute (as recorded) sends traffic to."""
    found = set()
    for rule in mapping_of(mapping_of(route).get("spec")).get("rules") or []:
        for ref in mapping_of(rule).get("backendRefs") or []:
            weight = mapping_of(ref).get("weight", 1)
            if not (type(weight) is int and weight == 0):
                found.add(str(mapping_of(ref).get("name")))
    return found


def valid_label(key: Any, value: Any) -> bool:
    if not isinstance(key, str) or not isinstance(value, str) or len(value) > 63:
        return False
    prefix, _, name = key.rpartition("/")
    ok_prefix = not prefix or (
        len(prefix) <= 253 and all(DNS_LABEL.match(p) for p in prefix.split("."))
    )
    return (
        ok_prefix
        and 0 < len(name) <= 63
        and bool(LABEL_VALUE.match(name))
        and bool(LABEL_VALUE.match(value))
    )


def labels_valid(labels: Any) -> bool:
    return isinstance(labels, Mapping) and all(valid_label(k, v) for k, v in labels.items())


def derived_urls(request: Mapping[str, Any]) -> dict[str, str]:
    """Each live observed cluster's dashboard, derived independently of the core: the related
    head Service named for it, owned (controller) by its uid, labelled for it, port
    ``dashboard``."""
    found = {}
    related = mapping_of(request.get("related"))
    services = [s for s in mapping_of(related.get(SERVICE)).values() if isinstance(s, Mapping)]
    for seen in observed(request):
        meta = seen.obj["metadata"]
        if seen.key != RAYCLUSTER or seen.terminating:
            continue
        for service in services:
            smeta = mapping_of(service.get("metadata"))
            owners = smeta.get("ownerReferences")
            owned = any(
                mapping_of(o).get("controller") is True
                and mapping_of(o).get("kind") == "RayCluster"
                and mapping_of(o).get("uid") == meta.get("uid")
                for o in (owners if isinstance(owners, list) else [])
            )
            labels = mapping_of(smeta.get("labels"))
            if smeta.get("name") != f"{seen.name}-head-svc" or not owned:
                continue
            if (
                labels.get("ray.io/cluster") != seen.name
                or labels.get("ray.io/node-type") != "head"
            ):
                continue
            ports = mapping_of(service.get("spec")).get("ports")
            port = next(
                (
                    mapping_of(p).get("port")
                    for p in ports or []
                    if mapping_of(p).get("name") == "dashboard"
                ),
                None,
            )
            namespace = meta.get("namespace") or ""
            domain = OPTIONS.cluster.cluster_domain
            found[seen.name] = f"{seen.name}-head-svc.{namespace}.svc.{domain}:{port}"
    return found


@dataclasses.dataclass
class Judged:
    """What one answer is judged against."""

    request: Mapping[str, Any]
    answer: bytes
    now: datetime
    views: Mapping[str, ServeView]
    intents: tuple[Any, ...] = ()
