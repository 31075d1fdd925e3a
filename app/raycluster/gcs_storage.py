"""Embedded GCS fault tolerance (``gcsFaultToleranceOptions.backend: rocksdb``).

The head keeps the GCS state in RocksDB on a PersistentVolumeClaim instead of an external
Redis, so that a new head resumes from the same volume. The claim is the user's
(``storage.claimName``, never created nor deleted by metaray) or ``<cluster>-gcs-pvc``, created
once and never resized: a spec that asks for another size, class or access modes only gets a
Warning. It is kept while the cluster exists, even after the option is removed (it holds the
cluster's state), and goes with the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.core import kinds
from app.core.events import WARNING, Event
from app.core.observed import Child, Observed
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.feature_checks import GCS_STORAGE_PATH, GCS_STORAGE_VOLUME
from app.raycluster.spec import GcsStorage, JSONObject

DEFAULT_SIZE = "1Gi"
DEFAULT_ACCESS_MODES = ("ReadWriteOnce",)


def rocksdb(cluster: Cluster) -> bool:
    options = cluster.spec.gcsFaultToleranceOptions
    return options is not None and options.backend == "rocksdb"


def _storage(cluster: Cluster) -> GcsStorage:
    options = cluster.spec.gcsFaultToleranceOptions
    return (options.storage if options else None) or GcsStorage()


def pvc_name(cluster: Cluster) -> str:
    return f"{cluster.name}-gcs-pvc"


def claim_name(cluster: Cluster) -> str:
    return _storage(cluster).claimName or pvc_name(cluster)


def head_env() -> list[JSONObject]:
    return [
        {"name": "RAY_gcs_storage", "value": "rocksdb"},
        {"name": "RAY_gcs_storage_path", "value": GCS_STORAGE_PATH},
    ]


def add_storage(cluster: Cluster, pod_spec: JSONObject) -> None:
    """Mount the claim into the head's Ray container at /data/gcs."""
    mount: JSONObject = {"mountPath": GCS_STORAGE_PATH, "name": GCS_STORAGE_VOLUME}
    sub_path = _storage(cluster).subPath
    if sub_path:
        mount["subPath"] = sub_path
    pod_spec["containers"][0].setdefault("volumeMounts", []).append(mount)
    claim = {"claimName": claim_name(cluster)}
    volume = {"name": GCS_STORAGE_VOLUME, "persistentVolumeClaim": claim}
    pod_spec.setdefault("volumes", []).append(volume)


def pvc_child(cluster: Cluster, observed: Observed) -> Child | None:
    """The claim to answer: the observed one unchanged (never resized), else a new one; none
    for the user's own claim. Once created it is kept for as long as the cluster exists."""
    kept = observed.applied.get((kinds.PVC, pvc_name(cluster)))
    if kept is not None:
        return kept
    if not rocksdb(cluster) or _storage(cluster).claimName is not None:
        return None
    return _pvc(cluster)


def _pvc(cluster: Cluster) -> JSONObject:
    storage = _storage(cluster)
    spec: JSONObject = {
        "accessModes": list(storage.accessModes or DEFAULT_ACCESS_MODES),
        "resources": {"requests": {"storage": storage.size or DEFAULT_SIZE}},
    }
    if storage.storageClassName is not None:
        spec["storageClassName"] = storage.storageClassName
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": pvc_name(cluster),
            "namespace": cluster.namespace,
            "labels": lbl.data_labels(cluster.name, cluster.uid),
        },
        "spec": spec,
    }


def events(cluster: Cluster, observed: Observed, built: Iterable[Child]) -> list[Event]:
    """A Warning when the spec asks the existing claim for another size, class or modes."""
    if not rocksdb(cluster) or _storage(cluster).claimName is not None:
        return []
    kept = observed.applied.get((kinds.PVC, pvc_name(cluster)))
    if kept is None:
        return []
    wanted, current = _pvc(cluster)["spec"], kept.get("spec") or {}
    if wanted == current:
        return []
    message = (
        f"PersistentVolumeClaim {cluster.namespace}/{pvc_name(cluster)} differs from "
        "gcsFaultToleranceOptions.storage (size, storageClassName or accessModes); metaray "
        "never changes an existing claim"
    )
    return [Event(WARNING, "GCSStorageClaimDrift", message)]
