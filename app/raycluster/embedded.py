"""A RayCluster spec embedded in another resource (a RayJob's ``rayClusterSpec``, a RayService's
``rayClusterConfig``), checked by this core as the cluster it becomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import RayClusterSpec, parse_spec


def parse_embedded(
    owner: Mapping[str, Any], field: str, spec: Any
) -> tuple[RayClusterSpec | None, list[Problem]]:
    """The embedded spec at ``field`` (e.g. ``spec.rayClusterSpec``) of ``owner``, or its
    problems with paths in the owner. The cluster is checked under the longest name it can get,
    ``<owner>-<5 characters>``; a problem with that name is left out: the owner's own name
    rule says it better."""
    metadata = owner.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": f"{name}-xxxxx" if isinstance(name, str) else "invalid"},
        "spec": spec,
    }
    try:
        return parse_spec(cluster), []
    except InvalidSpec as invalid:
        return None, [
            Problem(_in_owner(field, p.path), p.message)
            for p in invalid.problems
            if p.path != "metadata.name"
        ]


def _in_owner(field: str, path: str) -> str:
    """A RayCluster problem's path, as a path in the owner."""
    if path == "spec" or path.startswith(("spec.", "spec[")):
        return field + path[len("spec") :]
    return f"{field} ({path})"
