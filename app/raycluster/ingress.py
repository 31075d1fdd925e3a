"""The head Ingress (``headGroupSpec.enableIngress``): the dashboard from outside the cluster."""

from __future__ import annotations

import copy

from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.ports import dashboard_container_port
from app.raycluster.spec import JSONObject

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
# Copied from the RayCluster to the Ingress: every annotation except these.
_NOT_COPIED = (CLASS_ANNOTATION, "kubectl.kubernetes.io/last-applied-configuration")


def ingress_name(cluster: Cluster) -> str:
    return f"{cluster.name}-head-ingress"


def head_ingress(cluster: Cluster) -> JSONObject:
    head_template = cluster.spec.headGroupSpec.template
    options = cluster.spec.headGroupSpec.ingressOptions or {}
    path: JSONObject = {
        "path": options.get("path") or "/",
        "pathType": options.get("pathType") or "Prefix",
        "backend": {
            "service": {
                "name": cluster.head_service_name,
                "port": {"number": dashboard_container_port({"template": head_template})},
            }
        },
    }
    rule: JSONObject = {"http": {"paths": [path]}}
    if options.get("host"):
        rule["host"] = options["host"]
    spec: JSONObject = {"rules": [rule]}
    ingress_class = cluster.annotations.get(CLASS_ANNOTATION)
    if ingress_class:
        spec["ingressClassName"] = ingress_class
    if options.get("tls"):
        spec["tls"] = copy.deepcopy(options["tls"])
    metadata: JSONObject = {
        "name": ingress_name(cluster),
        "namespace": cluster.namespace,
        "labels": {
            **lbl.cluster_labels(cluster.name, cluster.uid),
            lbl.IDENTIFIER: lbl.identifier(cluster.name, lbl.HEAD),
        },
    }
    annotations = {k: v for k, v in cluster.annotations.items() if k not in _NOT_COPIED}
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }
