"""The RayJob's own head Service, ``<rayjob>-head-svc``: the current cluster's head under a
name that outlives retries (KubeRay v1.5+)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.raycluster import labels as lbl
from app.raycluster import service
from app.raycluster.cluster import Cluster, Options
from app.raycluster.problems import InvalidSpec
from app.raycluster.spec import JSONObject, RayClusterSpec, parse_spec
from app.rayjob import labels as jl
from app.rayjob.cluster import RAYCLUSTER_API
from app.rayjob.names import head_service_name
from app.rayjob.spec import RayJob


def head_service(
    rayjob: RayJob, cluster: str, spec: Mapping[str, Any], options: Options
) -> JSONObject:
    """A copy of the cluster's head Service (ports, type, headless), renamed, selecting the
    head of the cluster the RayJob runs on now."""
    built = service.head_service(
        Cluster(cluster, rayjob.namespace, rayjob.uid, {}, _spec(rayjob, cluster, spec), options)
    )
    labels = {
        **jl.originated(rayjob.name),
        lbl.NODE_TYPE: lbl.HEAD,
        lbl.IDENTIFIER: f"{rayjob.name}-{lbl.HEAD}",
        lbl.CONTROLLER_UID: rayjob.uid,
    }
    built["metadata"] = {
        "name": head_service_name(rayjob.name),
        "namespace": rayjob.namespace,
        "labels": dict(sorted(labels.items())),
    }
    return built


# What the head Service is built from: the rest of the spec need not be read (or checked).
_SERVICE_FIELDS = ("headGroupSpec", "headServiceAnnotations")


def _spec(rayjob: RayJob, cluster: str, spec: Mapping[str, Any]) -> RayClusterSpec:
    """The head of the cluster's spec as it was created, checked as the RayCluster core checks
    it; the RayJob's own where that one cannot be read."""
    head = {key: spec[key] for key in _SERVICE_FIELDS if key in spec}
    try:
        return parse_spec(
            {"apiVersion": RAYCLUSTER_API, "metadata": {"name": cluster}, "spec": head}
        )
    except InvalidSpec:
        assert rayjob.cluster_spec is not None  # only called for a RayJob with a cluster of its own
        return rayjob.cluster_spec
