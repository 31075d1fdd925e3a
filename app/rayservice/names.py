"""Names of a RayService's children, and the goal hash that says which cluster spec a child
RayCluster was built from.

Cluster names are ``<rayservice>-<5 characters>``, a pure function of the RayService's uid, the
goal hash and a salt: a stale parent replayed to the hook names the same cluster again, never
a second one. The salt is the lowest one whose name is neither the active cluster nor a cluster
still terminating (a goal that comes back after its cluster was deleted gets a fresh name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from app.raycluster.names import suffix
from app.raycluster.spec import RayClusterSpec

HASH = "ray.io/hash-without-replicas-and-workers-to-delete"
HASH_VERSION = "metaray.io/hash-version"
WORKER_GROUPS = "ray.io/num-worker-groups"
HASH_VERSION_VALUE = "1"
# Goals looked at when asking whether a named (not yet created) cluster stands for a goal.
MAX_SALT = 16

# Changed by the autoscaler, by Kueue or by the RayService itself: never a reason for a new
# cluster (KubeRay's list).
_MUTED_GROUP = ("replicas", "minReplicas", "maxReplicas", "scaleStrategy", "suspend")
_MUTED_POD = ("tolerations", "schedulingGates")


def head_service(rayservice: str) -> str:
    return f"{rayservice}-head-svc"


def serve_service(rayservice: str, custom: Mapping[str, Any] | None) -> str:
    """``<rs>-serve-svc``, or the name of the user's ``serveService``."""
    metadata = (custom or {}).get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) and name else f"{rayservice}-serve-svc"


def cluster_name(rayservice: str, uid: str, goal: str, salt: int) -> str:
    return f"{rayservice}-{suffix(uid, f'rayservice-cluster/{goal}', salt)}"


def new_cluster_name(rayservice: str, uid: str, goal: str, avoid: Collection[str]) -> str:
    """The first name for this goal that is not in ``avoid`` (the active cluster, clusters
    still terminating)."""
    salt = 0
    while (name := cluster_name(rayservice, uid, goal, salt)) in avoid:
        salt += 1
    return name


def names_for(rayservice: str, uid: str, goal: str) -> frozenset[str]:
    return frozenset(cluster_name(rayservice, uid, goal, salt) for salt in range(MAX_SALT))


def goal_hash(spec: RayClusterSpec, groups: int | None = None) -> str:
    """Canonical JSON of the defaulted cluster spec without the muted fields (and with only the
    first ``groups`` worker groups, to recognise groups appended to a live cluster)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data.pop("suspend", None)
    data.pop("upgradeStrategy", None)
    workers = data.get("workerGroupSpecs") or []
    if groups is not None:
        workers = workers[:groups]
    data["workerGroupSpecs"] = [
        _without_pod_fields({k: v for k, v in g.items() if k not in _MUTED_GROUP}) for g in workers
    ]
    data["headGroupSpec"] = _without_pod_fields(data["headGroupSpec"])
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _without_pod_fields(group: dict[str, Any]) -> dict[str, Any]:
    template = dict(group.get("template") or {})
    pod = {k: v for k, v in (template.get("spec") or {}).items() if k not in _MUTED_POD}
    template["spec"] = pod
    return {**group, "template": template}
