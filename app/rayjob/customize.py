"""The RayJob controller's customize hook: the related objects a RayJob's syncs need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.raycluster import labels as lbl
from app.raycluster.spec import JSONObject
from app.rayjob import labels as jl
from app.rayjob.cluster import RAYCLUSTER_API
from app.rayjob.spec import CLUSTER_SELECTOR_KEY


def customize(parent: Mapping[str, Any]) -> JSONObject:
    """The related objects a RayJob's sync needs: its submitter pods (and, in SidecarMode, its
    head pod), and the user's RayCluster in clusterSelector mode. Depends on the parent's spec
    only: Metacontroller caches the answer per generation."""
    metadata = parent.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    rules: list[JSONObject] = []
    if isinstance(name, str) and name:
        rules.append(
            {
                "apiVersion": "v1",
                "resource": "pods",
                "labelSelector": {"matchLabels": jl.originated(name)},
            }
        )
    spec = parent.get("spec")
    selector = spec.get("clusterSelector") if isinstance(spec, Mapping) else None
    selected = selector.get(CLUSTER_SELECTOR_KEY) if isinstance(selector, Mapping) else None
    if isinstance(selected, str) and selected:
        rules.append({"apiVersion": RAYCLUSTER_API, "resource": "rayclusters", "names": [selected]})
        # Its head pod: the only address of a user's cluster metaray calls (app.rayjob.address).
        rules.append(
            {
                "apiVersion": "v1",
                "resource": "pods",
                "labelSelector": {"matchLabels": lbl.head_selector(selected)},
            }
        )
    if isinstance(namespace, str) and namespace:
        rules = [{**rule, "namespace": namespace} for rule in rules]
    return {"relatedResources": rules}
