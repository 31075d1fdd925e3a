"""GCS fault tolerance: the head keeps its state in an external Redis, so a new head resumes.

Turned on by the RayCluster annotation ``ray.io/ft-enabled: "true"`` (KubeRay v0.6; the user
puts ``RAY_REDIS_ADDRESS`` in the head's env) or by ``gcsFaultToleranceOptions`` (KubeRay v1.x;
metaray injects the address and credentials). When such a cluster is deleted, a Job removes its
data from Redis before the cluster goes.
"""

from __future__ import annotations

import copy

from app.raycluster import gcs_storage
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.spec import JSONObject, RedisCredential

STORAGE_NAMESPACE_ANNOTATION = "ray.io/external-storage-namespace"
RECONNECT_TIMEOUT = ("RAY_gcs_rpc_server_reconnect_timeout_s", "600")
CLEANUP_NODE_TYPE = "redis-cleanup"
CLEANUP_RESOURCES = {"cpu": "200m", "memory": "256Mi"}
# The script the cleanup Job runs with the head's image and environment: it deletes every key
# of this cluster's storage namespace, and fails (so the Job retries) when Ray reports an error.
CLEANUP_SCRIPT = """\
import os, sys
from urllib.parse import urlparse
from ray._private.gcs_utils import cleanup_redis_storage
first = os.environ.get("RAY_REDIS_ADDRESS", "").split(",")[0].strip()
url = urlparse(first if "://" in first else "redis://" + first)
extra = {"username": os.environ["REDIS_USERNAME"]} if os.environ.get("REDIS_USERNAME") else {}
done = cleanup_redis_storage(
    host=url.hostname, port=url.port or 6379,
    password=os.environ.get("REDIS_PASSWORD", url.password or ""),
    use_ssl=url.scheme == "rediss",
    storage_namespace=os.environ["RAY_external_storage_namespace"], **extra)
print("Removed this cluster's GCS data from Redis." if done else "Redis cleanup failed.")
sys.exit(0 if done else 1)
"""


def storage_namespace(cluster: Cluster) -> str:
    """Where in Redis this cluster's GCS keeps its data: the option, the annotation, or the uid."""
    options = cluster.spec.gcsFaultToleranceOptions
    if options is not None and options.externalStorageNamespace:
        return options.externalStorageNamespace
    return cluster.annotations.get(STORAGE_NAMESPACE_ANNOTATION) or cluster.uid


def _credential(name: str, credential: RedisCredential) -> JSONObject:
    if credential.valueFrom is not None:
        return {"name": name, "valueFrom": copy.deepcopy(credential.valueFrom)}
    return {"name": name, "value": credential.value or ""}


def head_env(cluster: Cluster) -> list[JSONObject]:
    """Variables the head's Ray container needs for a fault-tolerant GCS."""
    if gcs_storage.rocksdb(cluster):
        return gcs_storage.head_env()
    env: list[JSONObject] = [
        {"name": "RAY_external_storage_namespace", "value": storage_namespace(cluster)}
    ]
    options = cluster.spec.gcsFaultToleranceOptions
    if options is not None:
        env.append({"name": "RAY_REDIS_ADDRESS", "value": options.redisAddress or ""})
        if options.redisUsername is not None:
            env.append(_credential("REDIS_USERNAME", options.redisUsername))
        if options.redisPassword is not None:
            env.append(_credential("REDIS_PASSWORD", options.redisPassword))
    return env


def worker_env() -> list[JSONObject]:
    """Workers wait up to 10 minutes for a restarted head instead of exiting at once."""
    name, value = RECONNECT_TIMEOUT
    return [{"name": name, "value": value}]


def head_params(cluster: Cluster) -> dict[str, str]:
    """``ray start`` flags the head needs: the password comes from the injected variable."""
    options = cluster.spec.gcsFaultToleranceOptions
    if options is not None and options.redisPassword is not None:
        return {"redis-password": "$REDIS_PASSWORD"}
    return {}


def head_annotations(cluster: Cluster) -> dict[str, str]:
    if gcs_storage.rocksdb(cluster):
        return {}  # no Redis, no storage namespace
    return {STORAGE_NAMESPACE_ANNOTATION: storage_namespace(cluster)}


def cleanup_job_name(cluster: Cluster) -> str:
    # Job names become pod labels (at most 63 characters); cluster names have at most 53.
    return f"{cluster.name}-cleanup"


def cleanup_job(cluster: Cluster, head_pod: JSONObject) -> JSONObject:
    """A Job that runs the cleanup script with the head's image, env and mounts."""
    ray: JSONObject = head_pod["spec"]["containers"][0]
    container: JSONObject = {
        "name": "redis-cleanup",
        "image": ray.get("image"),
        "command": ["python", "-c", CLEANUP_SCRIPT],
        "env": [
            *copy.deepcopy(ray.get("env") or []),
            # Give Redis a minute to answer before the attempt counts as failed.
            {"name": "RAY_redis_db_connect_retries", "value": "120"},
            {"name": "RAY_redis_db_connect_wait_milliseconds", "value": "500"},
        ],
        "resources": {"limits": dict(CLEANUP_RESOURCES), "requests": dict(CLEANUP_RESOURCES)},
    }
    for key in ("imagePullPolicy", "envFrom", "volumeMounts", "securityContext"):
        if key in ray:
            container[key] = copy.deepcopy(ray[key])
    head_spec = head_pod["spec"]
    pod_spec: JSONObject = {"containers": [container], "restartPolicy": "Never"}
    mounted = {mount.get("name") for mount in container.get("volumeMounts", [])}
    volumes = [v for v in head_spec.get("volumes", []) if v.get("name") in mounted]
    if volumes:
        pod_spec["volumes"] = copy.deepcopy(volumes)
    for key in ("imagePullSecrets", "serviceAccountName", "nodeSelector", "tolerations"):
        if key in head_spec:
            pod_spec[key] = copy.deepcopy(head_spec[key])
    labels = {lbl.CLUSTER: cluster.name, lbl.NODE_TYPE: CLEANUP_NODE_TYPE}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": cleanup_job_name(cluster),
            "namespace": cluster.namespace,
            "labels": {**labels, lbl.CONTROLLER_UID: cluster.uid},
        },
        "spec": {
            "backoffLimit": 5,
            "activeDeadlineSeconds": 600,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
