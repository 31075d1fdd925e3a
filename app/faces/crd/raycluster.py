"""The RayCluster CRD: its schema tables, status, columns and rules."""

from __future__ import annotations

from app.faces.crd.schema import (
    CRDS,
    DNS1035_LABEL,
    GROUP,
    GROUP_NAME_PATTERN,
    K8S,
    MAX_WORKER_GROUPS,
    META,
    NET,
    QUANTITY_PATTERN,
    Embed,
    JSONSchema,
    KubernetesTypes,
    Resource,
    header,
    kind,
)
from app.faces.crd.walker import SpecWalker, Tables
from app.raycluster.names import MAX_CLUSTER_NAME, MAX_LABEL
from app.raycluster.spec import SERVICE_TYPES, RayClusterSpec

KIND = "RayCluster"
PLURAL = "rayclusters"
OUTPUT = CRDS / f"{GROUP}_{PLURAL}.yaml"
HEADER = header(KIND, "app/raycluster/spec.py")


def _slim_env_var(types: KubernetesTypes) -> JSONSchema:
    """An EnvVar whose ``valueFrom`` is kept but not spelled out: the full EnvVarSource would
    push the CRD past client-side apply's limit; the API server still validates it in the pod."""
    schema = types.schema(K8S + "EnvVar")
    schema["properties"]["valueFrom"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return schema


def _ingress_options(types: KubernetesTypes) -> JSONSchema:
    path = types.schema("io.k8s.api.networking.v1.HTTPIngressPath")["properties"]
    rule = types.schema("io.k8s.api.networking.v1.IngressRule")["properties"]
    return {
        "type": "object",
        "properties": {
            "host": rule["host"],
            "path": path["path"],
            "pathType": path["pathType"],
            "tls": {
                "type": "array",
                "items": types.schema("io.k8s.api.networking.v1.IngressTLS"),
            },
        },
    }


# Model fields that are plain JSON objects (or lists of them) there, and the type they hold.
EMBEDDED: dict[str, Embed] = {
    "HeadGroupSpec.template": kind(K8S + "PodTemplateSpec"),
    "HeadGroupSpec.headService": kind(K8S + "Service"),
    "HeadGroupSpec.ingressOptions": _ingress_options,
    "WorkerGroupSpec.template": kind(K8S + "PodTemplateSpec"),
    "AutoscalerOptions.resources": kind(K8S + "ResourceRequirements"),
    "AutoscalerOptions.env": kind(K8S + "EnvVar"),
    "AutoscalerOptions.envFrom": kind(K8S + "EnvFromSource"),
    "AutoscalerOptions.volumeMounts": kind(K8S + "VolumeMount"),
    "AutoscalerOptions.securityContext": kind(K8S + "SecurityContext"),
    "RedisCredential.valueFrom": kind(K8S + "EnvVarSource"),
    "CollectorOptions.resources": kind(K8S + "ResourceRequirements"),
    "CollectorOptions.env": _slim_env_var,
    "NetworkPolicyRules.ingressRules": kind(NET + "NetworkPolicyIngressRule"),
    "NetworkPolicyRules.egressRules": kind(NET + "NetworkPolicyEgressRule"),
    "NetworkPolicyGroup.ingressRules": kind(NET + "NetworkPolicyIngressRule"),
    "NetworkPolicyGroup.egressRules": kind(NET + "NetworkPolicyEgressRule"),
}

# Checks the hook makes (app.raycluster.spec) that a schema can state as well.
_QUANTITY_MAP = {"additionalProperties": {"type": "string", "pattern": QUANTITY_PATTERN}}
CONSTRAINTS: dict[str, JSONSchema] = {
    "HeadGroupSpec.serviceType": {"enum": list(SERVICE_TYPES)},
    "HeadGroupSpec.resources": _QUANTITY_MAP,
    "WorkerGroupSpec.groupName": {
        "minLength": 1,
        "maxLength": MAX_LABEL,
        "pattern": GROUP_NAME_PATTERN,
    },
    "WorkerGroupSpec.replicas": {"minimum": 0},
    "WorkerGroupSpec.minReplicas": {"minimum": 0},
    "WorkerGroupSpec.maxReplicas": {"minimum": 0},
    "WorkerGroupSpec.numOfHosts": {"minimum": 1},
    "WorkerGroupSpec.resources": _QUANTITY_MAP,
    "GcsFaultToleranceOptions.backend": {
        "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "gcsFaultToleranceOptions.backend is immutable"}
        ]
    },
    "GcsStorage.size": {"pattern": QUANTITY_PATTERN},
    "NetworkPolicyOptions.workerGroups": {
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["groupName"],
    },
    "RayClusterSpec.workerGroupSpecs": {
        "maxItems": MAX_WORKER_GROUPS,
        "x-kubernetes-validations": [
            {
                "rule": "self.all(g, self.exists_one(h, h.groupName == g.groupName))",
                "message": "groupName must be unique across workerGroupSpecs",
            }
        ],
    },
}

# CEL rules on a model's objects (defaults are applied before rules run).
OBJECT_RULES: dict[str, list[JSONSchema]] = {
    "WorkerGroupSpec": [
        {
            "rule": "self.minReplicas <= self.maxReplicas",
            "message": "minReplicas must be less than or equal to maxReplicas",
        }
    ],
}

ROOT_RULES: list[JSONSchema] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_CLUSTER_NAME}",
        "message": f"metadata.name must be at most {MAX_CLUSTER_NAME} characters",
    },
    {
        "rule": f"self.metadata.name.matches('{DNS1035_LABEL}')",
        "message": "metadata.name must be a DNS-1035 label: lower-case letters, digits and '-', "
        "starting with a letter and ending with a letter or digit",
    },
]

DESCRIPTIONS: dict[str, str] = {
    "RayCluster": "A Ray cluster on Kubernetes: one head pod, groups of worker pods, a head "
    "Service. Managed by metaray through Metacontroller.",
    "RayClusterSpec": "The desired Ray cluster.",
    "RayClusterSpec.headGroupSpec": "The head pod and its Service.",
    "RayClusterSpec.workerGroupSpecs": "Groups of identical worker pods.",
    "RayClusterSpec.rayVersion": "The Ray version the images run; picks the autoscaler image.",
    "RayClusterSpec.enableInTreeAutoscaling": "Run the Ray autoscaler next to the head; it sets "
    "replicas and workersToDelete, and only it removes surplus workers.",
    "RayClusterSpec.autoscalerOptions": "Settings of the Ray autoscaler container.",
    "RayClusterSpec.headServiceAnnotations": "Annotations for the head Service.",
    "RayClusterSpec.suspend": "Delete every pod (the Service stays) until set back to false.",
    "RayClusterSpec.managedBy": "The controller meant to manage this cluster.",
    "RayClusterSpec.gcsFaultToleranceOptions": "An external Redis for the GCS, so that the "
    "cluster survives the loss of its head.",
    "RayClusterSpec.upgradeStrategy": "What happens to running pods when their template changes.",
    "RayClusterSpec.authOptions": "Ray token authentication (Ray 2.52 or later).",
    "RayClusterSpec.networkPolicy": "NetworkPolicies for the head and each worker group.",
    "NetworkPolicyOptions.mode": "What is denied: DenyAll, DenyAllIngress or DenyAllEgress.",
    "NetworkPolicyOptions.head": "The head's extra rules.",
    "NetworkPolicyOptions.worker": "Every worker group's extra rules.",
    "NetworkPolicyOptions.workerGroups": "One group's rules, replacing worker's.",
    "NetworkPolicyRules.ingressRules": "Extra ingress rules.",
    "NetworkPolicyRules.egressRules": "Extra egress rules (add DNS, port 53).",
    "NetworkPolicyGroup.groupName": "The worker group.",
    "NetworkPolicyGroup.ingressRules": "Extra ingress rules.",
    "NetworkPolicyGroup.egressRules": "Extra egress rules (add DNS, port 53).",
    "RayClusterSpec.historyServerOptions": "The history server's collector sidecar.",
    "HistoryServerOptions.collectorOptions": "The sidecar ray-history-collector.",
    "CollectorOptions.image": "Its image (required).",
    "CollectorOptions.imagePullPolicy": "Its image pull policy.",
    "CollectorOptions.resources": "Its resources.",
    "CollectorOptions.env": "Its extra env (yours win).",
    "RayClusterSpec.tlsOptions": "Mutual TLS between Ray processes (cert-manager; config/mtls/).",
    "TlsOptions.enabled": "Turns mutual TLS on.",
    "AuthOptions.mode": "token turns Ray token authentication on.",
    "AuthOptions.secretName": "Your Secret (key auth_token); metaray then creates none.",
    "AuthOptions.enableK8sTokenAuth": "Use service-account tokens instead (Ray 2.55+).",
    "HeadGroupSpec.template": "The head pod's template; its first container runs Ray.",
    "HeadGroupSpec.rayStartParams": "`ray start` flags for the head, without the leading "
    "dashes; values are passed verbatim.",
    "HeadGroupSpec.serviceType": "The head Service's type (Kubernetes' default: ClusterIP).",
    "HeadGroupSpec.headService": "A head Service to start from; metaray adds its ports, "
    "selector and labels.",
    "HeadGroupSpec.enableIngress": "Expose the head's dashboard through an Ingress.",
    "HeadGroupSpec.ingressOptions": "Host, path and TLS of the head's Ingress.",
    "HeadGroupSpec.replicas": "Deprecated and ignored: a cluster has exactly one head pod.",
    "HeadGroupSpec.resources": "Ray resources the head advertises, overriding what is derived "
    "from its container.",
    "HeadGroupSpec.labels": "Ray node labels of the head.",
    "WorkerGroupSpec": "A group of identical worker pods.",
    "WorkerGroupSpec.groupName": "The group's name, unique in the cluster; the ray.io/group "
    "label and part of pod names.",
    "WorkerGroupSpec.template": "The worker pods' template; the first container runs Ray.",
    "WorkerGroupSpec.replicas": "Wanted number of replicas, kept within [minReplicas, "
    "maxReplicas]; minReplicas when unset.",
    "WorkerGroupSpec.minReplicas": "The fewest replicas the group runs.",
    "WorkerGroupSpec.maxReplicas": "The most replicas the group runs.",
    "WorkerGroupSpec.numOfHosts": "Pods per replica (multi-host groups, e.g. TPU slices).",
    "WorkerGroupSpec.rayStartParams": "`ray start` flags for the workers, without the leading "
    "dashes; values are passed verbatim.",
    "WorkerGroupSpec.scaleStrategy": "Which pods to remove when scaling down.",
    "WorkerGroupSpec.suspend": "Delete the group's pods until set back to false.",
    "WorkerGroupSpec.idleTimeoutSeconds": "Seconds an idle worker of this group lives before "
    "the autoscaler (v2) removes it.",
    "WorkerGroupSpec.priority": "The group's priority for the autoscaler.",
    "WorkerGroupSpec.resources": "Ray resources the workers advertise, overriding what is "
    "derived from their container.",
    "WorkerGroupSpec.labels": "Ray node labels of the workers.",
    "ScaleStrategy.workersToDelete": "Names of this group's pods to delete, usually set by the "
    "Ray autoscaler.",
    "AutoscalerOptions.image": "The autoscaler's image (default: the head's Ray image).",
    "AutoscalerOptions.imagePullPolicy": "The autoscaler's image pull policy.",
    "AutoscalerOptions.resources": "The autoscaler's resources (default 500m CPU, 512Mi).",
    "AutoscalerOptions.env": "Environment variables added to the autoscaler container.",
    "AutoscalerOptions.envFrom": "Environment sources added to the autoscaler container.",
    "AutoscalerOptions.volumeMounts": "Volume mounts added to the autoscaler container.",
    "AutoscalerOptions.securityContext": "The autoscaler container's security context.",
    "AutoscalerOptions.idleTimeoutSeconds": "Seconds an idle worker lives before the "
    "autoscaler removes it (the autoscaler's default: 60).",
    "AutoscalerOptions.upscalingMode": "How fast the autoscaler adds workers.",
    "AutoscalerOptions.version": "The autoscaler generation to run.",
    "AutoscalerOptions.command": "Replaces the autoscaler container's command.",
    "AutoscalerOptions.args": "Replaces the autoscaler container's arguments.",
    "GcsFaultToleranceOptions.redisAddress": "host:port of the Redis server.",
    "GcsFaultToleranceOptions.redisPassword": "The Redis password, literal or from a source.",
    "GcsFaultToleranceOptions.redisUsername": "The Redis user, literal or from a source.",
    "GcsFaultToleranceOptions.externalStorageNamespace": "The namespace of this cluster's "
    "data in Redis (default: the cluster's uid).",
    "GcsFaultToleranceOptions.backend": "redis (default) or rocksdb (on a volume). Immutable.",
    "GcsFaultToleranceOptions.storage": "The rocksdb backend's volume.",
    "GcsStorage.claimName": "Your own claim; excludes size, storageClassName, accessModes.",
    "GcsStorage.size": "Size of <cluster>-gcs-pvc (default 1Gi); never resized.",
    "GcsStorage.storageClassName": "Storage class of <cluster>-gcs-pvc.",
    "GcsStorage.accessModes": "Access modes of <cluster>-gcs-pvc (default ReadWriteOnce).",
    "GcsStorage.subPath": "The volume's directory mounted at /data/gcs.",
    "GcsStorage.deletionPolicy": "DeleteWithCluster (default); Retain is not supported.",
    "RedisCredential.value": "The literal value.",
    "RedisCredential.valueFrom": "Where to read the value from.",
    "UpgradeStrategy.type": "Recreate replaces pods whose template changed; None (the "
    "default) leaves running pods alone.",
    "UpgradeStrategy.maxUnavailable": "How many pods may be down at once during an upgrade.",
}


RAYCLUSTER_TABLES = Tables(
    kind=KIND,
    embedded=EMBEDDED,
    constraints=CONSTRAINTS,
    object_rules=OBJECT_RULES,
    descriptions=DESCRIPTIONS,
)


def spec_schema(types: KubernetesTypes) -> JSONSchema:
    """The RayCluster spec (also a RayJob's ``rayClusterSpec``)."""
    return SpecWalker(RayClusterSpec.model_json_schema(), types, RAYCLUSTER_TABLES).spec()


# -- the status, as app.raycluster.status builds it -------------------------------------------


def _condition(types: KubernetesTypes) -> JSONSchema:
    """metav1.Condition with the bounds its Go markers give it (as controller-gen writes them)."""
    schema = types.schema(META + "Condition")
    props = schema["properties"]
    props["message"]["maxLength"] = 32768
    props["observedGeneration"]["minimum"] = 0
    props["reason"] |= {
        "minLength": 1,
        "maxLength": 1024,
        "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    }
    props["status"]["enum"] = ["True", "False", "Unknown"]
    props["type"] |= {
        "maxLength": 316,
        "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    }
    schema["required"] = sorted(schema["required"])
    return schema


def status_schema(types: KubernetesTypes) -> JSONSchema:
    def integer(description: str, fmt: str = "int32") -> JSONSchema:
        return {"type": "integer", "format": fmt, "description": description}

    def string(description: str) -> JSONSchema:
        return {"type": "string", "description": description}

    return {
        "type": "object",
        "description": "The cluster as observed: its pods and head Service.",
        "properties": {
            "state": string("ready, suspended or failed; empty while pods are provisioned."),
            "reason": string("Why the state is failed (an invalid spec names its field)."),
            "availableWorkerReplicas": integer("Worker pods running."),
            "readyWorkerReplicas": integer("Worker pods running and ready."),
            "desiredWorkerReplicas": integer("Worker pods wanted, over all groups."),
            "minWorkerReplicas": integer("Sum of the groups' minReplicas (times numOfHosts)."),
            "maxWorkerReplicas": integer("Sum of the groups' maxReplicas (times numOfHosts)."),
            "desiredCPU": string("CPUs the wanted pods request in total."),
            "desiredMemory": string("Memory the wanted pods request in total."),
            "desiredGPU": string("GPUs the wanted pods request in total."),
            "desiredTPU": string("TPUs the wanted pods request in total."),
            "endpoints": {
                "type": "object",
                "description": "The head Service's named ports: name to port number.",
                "additionalProperties": {"type": "string"},
            },
            "head": {
                "type": "object",
                "description": "Where the head pod and its Service are.",
                "properties": {
                    "podIP": string("The head pod's IP."),
                    "podName": string("The head pod's name."),
                    "serviceIP": string("The head Service's cluster IP (the pod's if headless)."),
                    "serviceName": string("The head Service's name."),
                },
            },
            "conditions": {
                "type": "array",
                "description": "Conditions such as HeadPodReady and RayClusterProvisioned.",
                "items": _condition(types),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "lastUpdateTime": {
                "type": "string",
                "format": "date-time",
                "description": "When any other status field last changed.",
            },
            "observedGeneration": integer(
                "The metadata.generation this status describes (set by Metacontroller).", "int64"
            ),
        },
    }


# -- the RayJob: its spec, from the model, and its status ------------------------------------


# -- the CRDs ---------------------------------------------------------------------------------

PRINTER_COLUMNS: list[JSONSchema] = [
    {"name": "desired workers", "type": "integer", "jsonPath": ".status.desiredWorkerReplicas"},
    {"name": "available workers", "type": "integer", "jsonPath": ".status.availableWorkerReplicas"},
    {"name": "cpus", "type": "string", "jsonPath": ".status.desiredCPU"},
    {"name": "memory", "type": "string", "jsonPath": ".status.desiredMemory"},
    {"name": "gpus", "type": "string", "jsonPath": ".status.desiredGPU"},
    {"name": "tpus", "type": "string", "jsonPath": ".status.desiredTPU", "priority": 1},
    {"name": "status", "type": "string", "jsonPath": ".status.state"},
    {"name": "age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "head pod IP", "type": "string", "jsonPath": ".status.head.podIP", "priority": 1},
    {
        "name": "head service IP",
        "type": "string",
        "jsonPath": ".status.head.serviceIP",
        "priority": 1,
    },
]

# KubeRay's columns; its start and end times are `string` columns, these are `date` (shown as an
# age, like `age`).
RAYCLUSTER = Resource(
    kind=KIND,
    plural=PLURAL,
    output=OUTPUT,
    header=HEADER,
    description=DESCRIPTIONS[KIND],
    spec=spec_schema,
    status=status_schema,
    root_rules=ROOT_RULES,
    printer_columns=PRINTER_COLUMNS,
)
