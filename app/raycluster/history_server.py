"""The Ray history server's collector (``historyServerOptions.collectorOptions``).

A sidecar ``ray-history-collector`` in the head and in every worker reads the Ray logs from the
log volume it shares with the Ray container (``/tmp/ray``) and ships the node's events to the
history server. metaray creates no other object for it.
"""

from __future__ import annotations

import copy

from app.raycluster.autoscaler import LOGS_PATH, logs_volume
from app.raycluster.cluster import Cluster
from app.raycluster.feature_checks import HISTORY_COLLECTOR
from app.raycluster.spec import JSONObject

EVENTS_PORT = "8084"


def enabled(cluster: Cluster) -> bool:
    options = cluster.spec.historyServerOptions
    return options is not None and options.collectorOptions is not None


def add_collector(cluster: Cluster, pod_spec: JSONObject, *, head: bool) -> None:
    """The sidecar, sharing the Ray container's log volume."""
    options = cluster.spec.historyServerOptions
    collector = options.collectorOptions if options is not None else None
    if collector is None:
        return
    logs = logs_volume(pod_spec, pod_spec["containers"][0])
    ours: list[JSONObject] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RAY_CLUSTER_NAME", "value": cluster.name},
        {"name": "RAY_CLUSTER_NAMESPACE", "value": cluster.namespace},
        {"name": "RAY_ROLE", "value": "head" if head else "worker"},
        {"name": "EVENTS_PORT", "value": EVENTS_PORT},
        {"name": "FQ_RAY_IP", "value": cluster.head_fqdn},
    ]
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
