"""Head and worker pods, built from the user's pod templates with what Ray needs added."""

from __future__ import annotations

import copy

from app.raycluster import fault_tolerance as ft
from app.raycluster import gcs_storage
from app.raycluster import labels as lbl
from app.raycluster.auth import add_auth
from app.raycluster.autoscaler import add_autoscaler
from app.raycluster.cluster import (
    FT_ANNOTATION,
    OVERWRITE_CMD_ANNOTATION,
    VERSION_ANNOTATION,
    Cluster,
    metaray_version,
)
from app.raycluster.command import (
    METRICS_PORT,
    ULIMIT,
    container_resources,
    group_resources,
    ray_start,
    start_params,
)
from app.raycluster.env import head_service_env, merge_env, ray_env
from app.raycluster.history_server import add_collector
from app.raycluster.probes import add_probes
from app.raycluster.rollout import HASH_ANNOTATION, template_hash
from app.raycluster.spec import JSONObject, WorkerGroupSpec
from app.raycluster.tls import add_tls

SHM_VOLUME = "shared-mem"
SHM_PATH = "/dev/shm"
WAIT_GCS = "wait-gcs-ready"
WAIT_GCS_RESOURCES = {"cpu": "200m", "memory": "256Mi"}


def head_pod_template(cluster: Cluster) -> JSONObject:
    """The head pod without its name: the same for every head this spec creates."""
    head = cluster.spec.headGroupSpec
    return _build(cluster, None, head.template, head.rayStartParams, head.resources, head.labels)


def worker_pod_template(cluster: Cluster, group: WorkerGroupSpec) -> JSONObject:
    """A worker pod of ``group`` without its name: shared by every pod the group creates."""
    return _build(
        cluster, group, group.template, group.rayStartParams, group.resources, group.labels
    )


def named(pod: JSONObject, name: str, labels: tuple[tuple[str, str], ...] = ()) -> JSONObject:
    """``pod`` with ``name`` and this pod's own ``labels`` (its replica index, say) over the
    template's; the rest is shared, not copied (the result is only serialised)."""
    metadata = {"name": name, **pod["metadata"]}
    if labels:
        metadata["labels"] = dict(sorted({**metadata["labels"], **dict(labels)}.items()))
    return {**pod, "metadata": metadata}


def _build(
    cluster: Cluster,
    group: WorkerGroupSpec | None,
    template: JSONObject,
    user_params: dict[str, str],
    resource_overrides: dict[str, str],
    group_labels: dict[str, str],
) -> JSONObject:
    head = group is None
    pod_spec: JSONObject = copy.deepcopy(template.get("spec") or {})
    ray: JSONObject = pod_spec["containers"][0]
    # wait-gcs-ready gets the user's env and mounts only, not what metaray adds (KubeRay v1.7).
    user_ray: JSONObject = copy.deepcopy(ray)
    if head and cluster.ft_enabled:
        user_params = {**ft.head_params(cluster), **user_params}
    params = start_params(
        user_params,
        head=head,
        head_address=cluster.head_address,
        resources=group_resources(container_resources(ray), resource_overrides),
        labels=group_labels,
        autoscaling=cluster.autoscaling,
    )
    start = ray_start(params, head=head)
    if not cluster.overwrite_command:
        _wrap_command(ray, start)
    ray["env"] = merge_env(ray.get("env"), _env(cluster, head, start))
    _add_metrics_port(ray)
    if "plasma-directory" not in params:
        _add_shared_memory(pod_spec, ray)
    add_probes(ray, params, head=head, ray_version=cluster.spec.rayVersion)
    if not head and cluster.options.wait_gcs_init_container:
        pod_spec["initContainers"] = [
            *pod_spec.get("initContainers", []),
            _wait_gcs_container(cluster, user_ray),
        ]
    for init in pod_spec.get("initContainers", []):
        init["env"] = merge_env(init.get("env"), head_service_env(cluster))
    if cluster.autoscaling and _autoscaler_version(cluster) == "v2":
        pod_spec["restartPolicy"] = "Never"
    if head and cluster.autoscaling:
        add_autoscaler(cluster, pod_spec)
    if head and gcs_storage.rocksdb(cluster):
        gcs_storage.add_storage(cluster, pod_spec)
    add_collector(cluster, pod_spec, head=head)
    # Last: they wire the sidecars and init containers added above.
    add_tls(cluster, pod_spec, head=head)
    add_auth(cluster, pod_spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(cluster, group, template, group_labels),
        "spec": pod_spec,
    }


def _env(cluster: Cluster, head: bool, start: str) -> list[JSONObject]:
    env = ray_env(cluster, head=head, start_command=start)
    if cluster.ft_enabled:
        env += ft.head_env(cluster) if head else ft.worker_env()
    version = _autoscaler_version(cluster)
    if head and cluster.autoscaling and version is not None:
        env.append({"name": "RAY_enable_autoscaler_v2", "value": str(version == "v2").lower()})
    return env


def _autoscaler_version(cluster: Cluster) -> str | None:
    options = cluster.spec.autoscalerOptions
    return None if options is None else options.version


def _metadata(
    cluster: Cluster,
    group: WorkerGroupSpec | None,
    template: JSONObject,
    group_labels: dict[str, str],
) -> JSONObject:
    meta = template.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    annotations[HASH_ANNOTATION] = template_hash(cluster, group)
    if group is None:
        annotations[VERSION_ANNOTATION] = metaray_version()
        annotations[FT_ANNOTATION] = "true" if cluster.ft_enabled else "false"
        if cluster.ft_enabled:
            annotations |= ft.head_annotations(cluster)
    if cluster.overwrite_command:
        annotations[OVERWRITE_CMD_ANNOTATION] = "true"
    metadata: JSONObject = {
        "namespace": cluster.namespace,
        "labels": lbl.pod_labels(
            cluster.name,
            cluster.uid,
            None if group is None else group.groupName,
            meta.get("labels") or {},
            group_labels,
        ),
    }
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return metadata


def _wrap_command(ray: JSONObject, start: str) -> None:
    """Run ``ray start`` through bash after the user's own command, unless it already does."""
    user = " ".join(str(part) for part in [*ray.get("command", []), *ray.get("args", [])])
    if "ray start" in user:
        return
    script = f"{ULIMIT}; {start}"
    ray["command"] = ["/bin/bash", "-c", "--"]
    ray["args"] = [f"{user} && {script}" if user else script]


def _add_metrics_port(ray: JSONObject) -> None:
    ports = ray.setdefault("ports", [])
    if not any(port.get("name") == "metrics" for port in ports):
        ports.append({"containerPort": METRICS_PORT, "name": "metrics"})


def _add_shared_memory(pod_spec: JSONObject, ray: JSONObject) -> None:
    """Ray's object store lives in /dev/shm: back it with memory sized like the container."""
    mounts = ray.setdefault("volumeMounts", [])
    if any(mount.get("mountPath") == SHM_PATH for mount in mounts):
        return
    mounts.append({"mountPath": SHM_PATH, "name": SHM_VOLUME})
    volumes = pod_spec.setdefault("volumes", [])
    if any(volume.get("name") == SHM_VOLUME for volume in volumes):
        return
    resources = ray.get("resources") or {}
    size = (resources.get("limits") or {}).get("memory") or (resources.get("requests") or {}).get(
        "memory"
    )
    empty_dir: JSONObject = {"medium": "Memory"}
    if size is not None:
        empty_dir["sizeLimit"] = str(size)
    volumes.append({"emptyDir": empty_dir, "name": SHM_VOLUME})


def _wait_gcs_container(cluster: Cluster, ray: JSONObject) -> JSONObject:
    """Holds the worker back until the head's GCS answers, so Ray does not start too early.

    ``ray`` is the user's Ray container as written in the template: its env and mounts are
    copied (a user's TLS or proxy settings), metaray's additions (Ray's env, /dev/shm) are not.
    Quiet for the first two minutes; after that each failed check's own output is shown, which
    is what one needs to see why the GCS cannot be reached.
    """
    address = cluster.head_address
    script = (
        "SECONDS=0; "
        "while true; do "
        f'if [ "$SECONDS" -le 120 ]; then out=/dev/null; else out=/dev/stderr; fi; '
        f'if ray health-check --address {address} >"$out" 2>&1; then '
        'echo "GCS is ready."; break; fi; '
        f'echo "$SECONDS s: waiting for the GCS at {address} to answer."; '
        "sleep 5; done"
    )
    container: JSONObject = {
        "name": WAIT_GCS,
        "image": ray.get("image"),
        "command": ["/bin/bash", "-c", "--"],
        "args": [script],
        "resources": {"limits": dict(WAIT_GCS_RESOURCES), "requests": dict(WAIT_GCS_RESOURCES)},
    }
    for key in ("imagePullPolicy", "securityContext", "env", "volumeMounts"):
        if key in ray:
            container[key] = copy.deepcopy(ray[key])
    return container
