"""The RayService CustomResourceDefinition: its spec from ``app.rayservice.spec``'s model (the
embedded ``rayClusterConfig`` is the RayCluster spec), its status as ``app.rayservice.status``
writes it, and KubeRay's columns."""

from __future__ import annotations

from app.faces.crd.raycluster import ROOT_RULES, _condition
from app.faces.crd.raycluster import spec_schema as cluster_spec_schema
from app.faces.crd.raycluster import status_schema as cluster_status_schema
from app.faces.crd.schema import (
    CRDS,
    GROUP,
    K8S,
    JSONSchema,
    KubernetesTypes,
    Resource,
    header,
    kind,
)
from app.faces.crd.walker import SpecWalker, Tables
from app.rayjob.spec import MANAGERS
from app.rayservice.spec import MAX_RAYSERVICE_NAME, RayServiceSpec, Strategy

KIND = "RayService"
PLURAL = "rayservices"


def _one_of(values: list[str]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


CONSTRAINTS: dict[str, JSONSchema] = {
    "RayServiceSpec.rayClusterDeletionDelaySeconds": {"minimum": 0},
    "RayServiceSpec.managedBy": {
        "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "the managedBy field is immutable"},
            {
                "rule": f"self in {_one_of(list(MANAGERS))}",
                "message": f"the managedBy field value must be either {' or '.join(MANAGERS)}",
            },
        ]
    },
    "ClusterUpgradeOptions.maxSurgePercent": {"minimum": 0, "maximum": 100},
    "ClusterUpgradeOptions.stepSizePercent": {"minimum": 0, "maximum": 100},
    "ClusterUpgradeOptions.intervalSeconds": {"minimum": 1},
}

OBJECT_RULES: dict[str, list[JSONSchema]] = {
    "RayServiceUpgradeStrategy": [
        {
            "rule": f"!has(self.type) || self.type in {_one_of([s.value for s in Strategy])}",
            "message": "upgradeStrategy.type must be NewClusterWithIncrementalUpgrade, "
            "NewCluster or None",
        }
    ],
}

DESCRIPTIONS: dict[str, str] = {
    KIND: "Ray Serve applications on a RayCluster, with zero-downtime cluster upgrades. Managed "
    "by metaray through Metacontroller.",
    "RayServiceSpec": "The desired Serve applications and the cluster they run on.",
    "RayServiceSpec.rayClusterConfig": "The RayCluster the applications run on; a change other "
    "than replicas or appended worker groups brings up a new cluster (blue/green).",
    "RayServiceSpec.serveConfigV2": "Ray Serve's multi-application config (YAML), applied "
    "through the cluster's dashboard.",
    "RayServiceSpec.upgradeStrategy": "How a rayClusterConfig change is rolled out.",
    "RayServiceSpec.rayClusterDeletionDelaySeconds": "Seconds an old cluster is kept after "
    "traffic left it (default 60).",
    "RayServiceSpec.serveService": "The serve Service to create instead of <name>-serve-svc "
    "(its selector is always metaray's).",
    "RayServiceSpec.excludeHeadPodFromServeSvc": "Keep the head pod out of the serve Service.",
    "RayServiceSpec.suspend": "Delete every cluster and Service until set back to false.",
    "RayServiceSpec.managedBy": "The controller meant to manage this RayService; another than "
    "ray.io/kuberay-operator (MultiKueue) is left alone. Immutable.",
    "RayServiceSpec.serviceUnhealthySecondThreshold": "Deprecated and ignored (as in KubeRay).",
    "RayServiceSpec.deploymentUnhealthySecondThreshold": "Deprecated and ignored (as in KubeRay).",
    "RayServiceUpgradeStrategy.type": "NewCluster (default), None, or "
    "NewClusterWithIncrementalUpgrade (traffic moved in steps through a Gateway API HTTPRoute; "
    "needs metaray's config/gateway-api overlay).",
    "RayServiceUpgradeStrategy.clusterUpgradeOptions": "Options of the incremental upgrade.",
    "ClusterUpgradeOptions.maxSurgePercent": "Capacity added to the new cluster per step.",
    "ClusterUpgradeOptions.stepSizePercent": "Traffic moved per step.",
    "ClusterUpgradeOptions.intervalSeconds": "Seconds between traffic steps.",
    "ClusterUpgradeOptions.gatewayClassName": "The Gateway API class of the Gateway.",
}

PRINTER_COLUMNS: list[JSONSchema] = [
    {"name": "service status", "type": "string", "jsonPath": ".status.serviceStatus"},
    {"name": "num serve endpoints", "type": "string", "jsonPath": ".status.numServeEndpoints"},
    {
        "name": "active cluster",
        "type": "string",
        "jsonPath": ".status.activeServiceStatus.rayClusterName",
        "priority": 1,
    },
    {
        "name": "pending cluster",
        "type": "string",
        "jsonPath": ".status.pendingServiceStatus.rayClusterName",
        "priority": 1,
    },
    {"name": "age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def spec_schema(types: KubernetesTypes) -> JSONSchema:
    tables = Tables(
        kind=KIND,
        embedded={
            "RayServiceSpec.rayClusterConfig": cluster_spec_schema,
            "RayServiceSpec.serveService": kind(K8S + "Service"),
        },
        constraints=CONSTRAINTS,
        object_rules=OBJECT_RULES,
        descriptions=DESCRIPTIONS,
        without_default=frozenset(
            {"RayServiceSpec.excludeHeadPodFromServeSvc", "RayServiceSpec.suspend"}
        ),
    )
    return SpecWalker(RayServiceSpec.model_json_schema(), types, tables).spec()


def status_schema(types: KubernetesTypes) -> JSONSchema:
    def string(description: str) -> JSONSchema:
        return {"type": "string", "description": description}

    def statuses(description: str, inner: JSONSchema | None = None) -> JSONSchema:
        item: JSONSchema = {
            "type": "object",
            "properties": {"status": string("Ray's state."), "message": string("Ray's message.")},
        }
        if inner is not None:
            item["properties"]["serveDeploymentStatuses"] = inner
        return {"type": "object", "description": description, "additionalProperties": item}

    cluster = cluster_status_schema(types)
    cluster["description"] = "A copy of the RayCluster's status."
    side: JSONSchema = {
        "type": "object",
        "properties": {
            "rayClusterName": string("The RayCluster."),
            "rayClusterStatus": cluster,
            "applicationStatuses": statuses(
                "Each Serve application, as Ray reports it.",
                statuses("Each deployment of the application."),
            ),
            "targetCapacity": {
                "type": "integer",
                "format": "int32",
                "description": "Incremental upgrades: the Serve target_capacity (percent) the "
                "cluster is asked to run at.",
            },
            "trafficRoutedPercent": {
                "type": "integer",
                "format": "int32",
                "description": "Incremental upgrades: the cluster's weight (percent) in the "
                "HTTPRoute.",
            },
            "lastTrafficMigratedTime": {
                "type": "string",
                "format": "date-time",
                "description": "Incremental upgrades: when trafficRoutedPercent last changed.",
            },
        },
    }
    active = {**side, "description": "The cluster that takes traffic."}
    pending = {**side, "description": "The cluster being prepared to take traffic."}
    return {
        "type": "object",
        "description": "The clusters, their Serve applications, and the traffic.",
        "properties": {
            "activeServiceStatus": active,
            "pendingServiceStatus": pending,
            "numServeEndpoints": {
                "type": "integer",
                "format": "int32",
                "description": "Ready endpoints of the serve Service.",
            },
            "serviceStatus": string("Deprecated: Running while Ready is True, else empty."),
            "conditions": {
                "type": "array",
                "description": "Ready, UpgradeInProgress, RollbackInProgress, Suspending and "
                "Suspended.",
                "items": _condition(types),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "rayClustersToDelete": {
                "type": "array",
                "description": "Clusters no longer needed, each deleted after its time.",
                "items": {
                    "type": "object",
                    "required": ["name", "deleteAfter"],
                    "properties": {
                        "name": string("The RayCluster."),
                        "deleteAfter": {"type": "string", "format": "date-time"},
                    },
                },
            },
            "lastUpdateTime": {
                "type": "string",
                "format": "date-time",
                "description": "When any other status field last changed.",
            },
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation this status describes.",
            },
        },
    }


RAYSERVICE = Resource(
    kind=KIND,
    plural=PLURAL,
    output=CRDS / f"{GROUP}_{PLURAL}.yaml",
    header=header(KIND, "app/rayservice/spec.py"),
    description=DESCRIPTIONS[KIND],
    spec=spec_schema,
    status=status_schema,
    root_rules=[
        {
            "rule": f"self.metadata.name.size() <= {MAX_RAYSERVICE_NAME}",
            "message": f"RayService name should be no more than {MAX_RAYSERVICE_NAME} characters",
        },
        ROOT_RULES[1],
    ],
    printer_columns=PRINTER_COLUMNS,
)
