"""The Ray history server's collector (``historyServerOptions.collectorOptions``).

A sidecar ``ray-history-collector`` in the head and in every worker reads the Ray logs from the
log volume it shares with the Ray container (``/tmp/ray``) and ships the node's events to the
history server. The Ray container gets the variables that make Ray export its events to the
collector on ``localhost:8084`` (without them the collector receives nothing). metaray creates no
other object for it.
"""

from __future__ import annotations

import copy

from app.raycluster.autoscaler import LOGS_PATH, logs_volume
from app.raycluster.cluster import Cluster
from app.raycluster.env import merge_env
from app.raycluster.feature_checks import HISTORY_COLLECTOR
from app.raycluster.ports import dashboard_listen_port
from app.raycluster.spec import JSONObject

EVENTS_PORT = "8084"
# The event types the collector consumes (KubeRay's default list). Ray 2.52 reads the first
# variable, 2.53 and later the second: both are set.
EVENT_TYPES = ",".join(
    (
        "TASK_DEFINITION_EVENT",
        "TASK_LIFECYCLE_EVENT",
        "ACTOR_TASK_DEFINITION_EVENT",
        "TASK_PROFILE_EVENT",
        "DRIVER_JOB_DEFINITION_EVENT",
        "DRIVER_JOB_LIFECYCLE_EVENT",
        "ACTOR_DEFINITION_EVENT",
        "ACTOR_LIFECYCLE_EVENT",
        "NODE_DEFINITION_EVENT",
        "NODE_LIFECYCLE_EVENT",
    )
)
RAY_EVENT_ENV = (
    ("RAY_enable_ray_event", "true"),
    ("RAY_enable_core_worker_ray_event_to_aggregator", "true"),
    (
        "RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR",
        f"http://localhost:{EVENTS_PORT}/v1/events",
    ),
    ("RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES", EVENT_TYPES),
    ("RAY_DASHBOARD_AGGREGATOR_AGENT_PUBLISHER_HTTP_ENDPOINT_EXPOSABLE_EVENT_TYPES", EVENT_TYPES),
)


def enabled(cluster: Cluster) -> bool:
    options = cluster.spec.historyServerOptions
    return options is not None and options.collectorOptions is not None


def add_collector(cluster: Cluster, pod_spec: JSONObject, *, head: bool) -> None:
    """The sidecar, sharing the Ray container's log volume, and Ray's event-export variables."""
    options = cluster.spec.historyServerOptions
    collector = options.collectorOptions if options is not None else None
    if collector is None:
        return
    ray = pod_spec["containers"][0]
    logs = logs_volume(pod_spec, ray)
    events = [{"name": name, "value": value} for name, value in RAY_EVENT_ENV]
    ray["env"] = merge_env(ray.get("env"), events)
    ours: list[JSONObject] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RAY_CLUSTER_NAME", "value": cluster.name},
        {"name": "RAY_CLUSTER_NAMESPACE", "value": cluster.namespace},
        {"name": "RAY_ROLE", "value": "Head" if head else "Worker"},
        {"name": "EVENTS_PORT", "value": EVENTS_PORT},
        {"name": "FQ_RAY_IP", "value": cluster.head_fqdn},
    ]
    if head:
        # The dashboard of the collector's own pod: loopback, never an address from status.
        port = dashboard_listen_port(cluster.spec.headGroupSpec.rayStartParams)
        ours.append({"name": "RAY_DASHBOARD_ADDRESS", "value": f"http://localhost:{port}"})
    # The user's variables are appended, and replace ours of the same name (no duplicates).
    overridden = {item.get("name") for item in collector.env}
    env = [item for item in ours if item["name"] not in overridden] + copy.deepcopy(collector.env)
    container: JSONObject = {
        "name": HISTORY_COLLECTOR,
        "image": collector.image,
        "env": env,
        "volumeMounts": [{"mountPath": LOGS_PATH, "name": logs}],
    }
    if collector.imagePullPolicy is not None:
        container["imagePullPolicy"] = collector.imagePullPolicy
    if collector.resources is not None:
        container["resources"] = copy.deepcopy(collector.resources)
    pod_spec["containers"].append(container)
