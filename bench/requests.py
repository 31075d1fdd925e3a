"""Realistic Metacontroller sync requests with N pods, shaped like a real API server's objects.

Each pod is what metaray itself asked for, as the API server returns it: the last-applied
annotation, two managedFields entries, a defaulted spec and a Running status with conditions.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson

from app.hooks.request import LAST_APPLIED, decode
from app.raycluster.sync import sync

UID = "5d0c3a52-7d4b-4c43-9a57-0a8e6f1f2b11"
STAMP = "2026-11-25T20:52:05Z"


def parent(workers: int) -> dict[str, Any]:
    container = {
        "name": "ray-worker",
        "image": "rayproject/ray:2.52.0",
        "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "1", "memory": "1Gi"},
        },
    }
    head = {
        **container,
        "name": "ray-head",
        "ports": [
            {"containerPort": 6379, "name": "gcs-server", "protocol": "TCP"},
            {"containerPort": 8265, "name": "dashboard", "protocol": "TCP"},
            {"containerPort": 10001, "name": "client", "protocol": "TCP"},
        ],
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": "raycluster-bench",
            "namespace": "default",
            "uid": UID,
            "generation": 1,
            "resourceVersion": "1000",
            "creationTimestamp": STAMP,
            "managedFields": [
                {
                    "manager": "kubectl-create",
                    "operation": "Update",
                    "apiVersion": "ray.io/v1",
                    "time": STAMP,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {}},
                }
            ],
        },
        "spec": {
            "rayVersion": "2.52.0",
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [head]}}},
            "workerGroupSpecs": [
                {
                    "groupName": "workergroup",
                    "replicas": workers,
                    "minReplicas": 0,
                    "maxReplicas": max(workers, 1),
                    "numOfHosts": 1,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [container]}},
                }
            ],
        },
    }


def _managed_fields(obj: dict[str, Any]) -> list[dict[str, Any]]:
    def fields(node: Any) -> Any:
        if isinstance(node, dict):
            return {f"f:{k}": fields(v) for k, v in node.items()}
        return {}

    return [
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields({"metadata": obj["metadata"], "spec": obj["spec"]}),
            "manager": "metacontroller",
            "operation": "Update",
            "time": STAMP,
        },
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:status": {
                    "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}},
                    "f:containerStatuses": {},
                    "f:hostIP": {},
                    "f:phase": {},
                    "f:podIP": {},
                    "f:podIPs": {},
                    "f:startTime": {},
                }
            },
            "manager": "kubelet",
            "operation": "Update",
            "subresource": "status",
            "time": STAMP,
        },
    ]


def as_observed(desired: dict[str, Any], serial: int) -> dict[str, Any]:
    """``desired`` as the API server would return it after Metacontroller created it."""
    obj = copy.deepcopy(desired)
    meta = obj["metadata"]
    meta["annotations"] = {
        **meta.get("annotations", {}),
        LAST_APPLIED: json.dumps(desired, separators=(",", ":"), sort_keys=True),
    }
    meta |= {
        "uid": f"00000000-0000-0000-0000-{serial:012d}",
        "resourceVersion": str(2000 + serial),
        "creationTimestamp": STAMP,
        "ownerReferences": [
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "name": "raycluster-bench",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    meta["managedFields"] = _managed_fields(obj)
    if obj["kind"] == "Service":
        obj["spec"] |= {
            "clusterIPs": ["None"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
        }
        obj["status"] = {"loadBalancer": {}}
        return obj
    spec = obj["spec"]
    for c in spec["containers"]:
        c |= {
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        c.setdefault("volumeMounts", []).append(
            {
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": "kube-api-access-x1",
                "readOnly": True,
            }
        )
    spec |= {
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": "node-1",
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {
                "effect": "NoExecute",
                "key": f"node.kubernetes.io/{k}",
                "operator": "Exists",
                "tolerationSeconds": 300,
            }
            for k in ("not-ready", "unreachable")
        ],
    }
    spec.setdefault("volumes", []).append(
        {
            "name": "kube-api-access-x1",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            "name": "kube-root-ca.crt",
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                    "path": "namespace",
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    ip = f"10.{(serial >> 16) & 255}.{(serial >> 8) & 255}.{serial & 255}"
    obj["status"] = {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": STAMP, "status": "True", "type": kind}
            for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "containerStatuses": [
            {
                "containerID": f"containerd://{serial:064x}",
                "image": "docker.io/rayproject/ray:2.52.0",
                "imageID": "docker.io/rayproject/ray@sha256:" + "3" * 64,
                "lastState": {},
                "name": c["name"],
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": STAMP}},
            }
            for c in spec["containers"]
        ],
        "hostIP": "172.18.0.2",
        "hostIPs": [{"ip": "172.18.0.2"}],
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "qosClass": "Guaranteed",
        "startTime": STAMP,
    }
    return obj


def request(pods: int) -> bytes:
    """A compact sync request body (as Metacontroller sends it) with ``pods`` Running pods."""
    cluster = parent(pods - 1)
    empty = {"parent": cluster, "children": {"Pod.v1": {}, "Service.v1": {}}}
    first = decode(orjson.dumps(empty))
    desired = sync(first.parent, first.observed).children
    children: dict[str, dict[str, Any]] = {"Pod.v1": {}, "Service.v1": {}}
    for serial, child in enumerate(desired):
        key = f"{child['kind']}.{child['apiVersion']}"
        children[key][f"default/{child['metadata']['name']}"] = as_observed(child, serial)
    controller = {
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "CompositeController",
        "metadata": {"name": "metaray"},
        "spec": {"generateSelector": True},
    }
    return orjson.dumps(
        {
            "controller": controller,
            "parent": cluster,
            "children": children,
            "related": {},
            "finalizing": False,
        }
    )
