"""The head Service (how clients, workers and dashboards reach the Ray head), and the headless
worker Service of clusters with multi-host groups."""

from __future__ import annotations

import copy
from typing import Any

from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.command import METRICS_PORT
from app.raycluster.ports import DASHBOARD, DEFAULT_DASHBOARD_PORT
from app.raycluster.spec import JSONObject

DEFAULT_PORTS = {
    "client": 10001,
    "gcs-server": 6379,
    DASHBOARD: DEFAULT_DASHBOARD_PORT,
    "metrics": METRICS_PORT,
    "serve": 8000,
}


def head_service(cluster: Cluster) -> JSONObject:
    """KubeRay master's head Service, or the user's ``headService`` with our rules over it."""
    head = cluster.spec.headGroupSpec
    custom: JSONObject = copy.deepcopy(head.headService or {})
    custom_meta = custom.get("metadata") or {}
    custom_spec = custom.get("spec") or {}
    template_labels = (head.template.get("metadata") or {}).get("labels") or {}
    app_name = template_labels.get(lbl.APP_NAME, lbl.APP_NAME_VALUE)
    labels = {
        **(custom_meta.get("labels") or {}),
        **lbl.head_service_labels(cluster.name, cluster.uid, app_name),
    }
    annotations = {**(custom_meta.get("annotations") or {}), **cluster.spec.headServiceAnnotations}
    service_type = custom_spec.get("type") or head.serviceType or "ClusterIP"
    spec: JSONObject = {
        **custom_spec,
        "ports": _ports(custom_spec.get("ports") or [], head.template),
        "selector": lbl.head_selector(cluster.name),
        "type": service_type,
    }
    if service_type == "ClusterIP" and "clusterIP" not in custom_spec:
        # Headless, as KubeRay since v1.2: clients reach the head pod's own IP.
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    metadata: JSONObject = {
        "name": cluster.head_service_name,
        "namespace": cluster.namespace,
        "labels": dict(sorted(labels.items())),
    }
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def _ports(custom: list[Any], template: JSONObject) -> list[JSONObject]:
    """The user's Service ports, then the head container's, then metrics; one per name/port."""
    containers = (template.get("spec") or {}).get("containers") or [{}]
    wanted: list[JSONObject] = [dict(port) for port in custom if isinstance(port, dict)]
    from_container = _container_ports(containers[0].get("ports") or [])
    if not from_container and not wanted:
        from_container = [{"name": name, "port": port} for name, port in DEFAULT_PORTS.items()]
    if not any(port["name"] == "metrics" for port in from_container) and not any(
        port.get("name") == "metrics" for port in wanted
    ):
        from_container.append({"name": "metrics", "port": METRICS_PORT})
    names = {port.get("name") for port in wanted}
    numbers = {port.get("port") for port in wanted}
    for port in sorted(from_container, key=lambda item: str(item["name"])):
        if port["name"] not in names and port["port"] not in numbers:
            wanted.append({**port, "appProtocol": "tcp"})
    return wanted


def _container_ports(ports: list[Any]) -> list[JSONObject]:
    found = []
    for port in ports:
        if not isinstance(port, dict) or not isinstance(port.get("containerPort"), int):
            continue
        number = port["containerPort"]
        found.append({"name": port.get("name") or f"{number}-port", "port": number})
    return found


def headless_service_name(cluster: str) -> str:
    return f"{cluster}-headless"


def headless_service(cluster: Cluster) -> JSONObject | None:
    """KubeRay's ``<cluster>-headless``, only while some group has ``numOfHosts > 1``: DNS for
    every worker, ready or not, so the hosts of a multi-host replica can find each other."""
    if not any(group.numOfHosts > 1 for group in cluster.spec.workerGroupSpecs):
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": headless_service_name(cluster.name),
            "namespace": cluster.namespace,
            "labels": lbl.headless_service_labels(cluster.name, cluster.uid),
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {lbl.CLUSTER: cluster.name, lbl.NODE_TYPE: lbl.WORKER},
            "type": "ClusterIP",
        },
    }
