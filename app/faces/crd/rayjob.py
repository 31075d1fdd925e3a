"""The RayJob CRD: its schema tables (the RayCluster spec embedded), status, columns and rules."""

from __future__ import annotations

from collections.abc import Sequence

from app.faces.crd.raycluster import ROOT_RULES, spec_schema, status_schema
from app.faces.crd.schema import (
    CRDS,
    GROUP,
    K8S,
    Embed,
    JSONSchema,
    KubernetesTypes,
    Resource,
    header,
    kind,
)
from app.faces.crd.walker import SpecWalker, Tables
from app.rayjob.spec import MANAGERS, MAX_RAYJOB_NAME, SUBMISSION_MODES, RayJobSpec

RAYJOB_KIND = "RayJob"
RAYJOB_PLURAL = "rayjobs"
RAYJOB_OUTPUT = CRDS / f"{GROUP}_{RAYJOB_PLURAL}.yaml"
RAYJOB_HEADER = header(RAYJOB_KIND, "app/rayjob/spec.py")


def _raycluster_spec(types: KubernetesTypes) -> JSONSchema:
    return spec_schema(types)


# `runtimeEnv` (KubeRay v0.6/v1.0's base64-encoded JSON, removed from KubeRay's v1 schema in v1.1)
# stays in the one schema both versions share: metaray accepts it under ray.io/v1 as well as
# ray.io/v1alpha1, so that v0.6 manifests apply unchanged whichever version they name.
RAYJOB_EMBEDDED: dict[str, Embed] = {
    "RayJobSpec.rayClusterSpec": _raycluster_spec,
    "RayJobSpec.submitterPodTemplate": kind(K8S + "PodTemplateSpec"),
}


def _one_of(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


# Checks the hook makes (app.rayjob.spec_checks) that a schema can state as well.
RAYJOB_CONSTRAINTS: dict[str, JSONSchema] = {
    "RayJobSpec.submissionMode": {"enum": list(SUBMISSION_MODES)},
    "RayJobSpec.entrypointNumCpus": {"minimum": 0},
    "RayJobSpec.entrypointNumGpus": {"minimum": 0},
    "RayJobSpec.ttlSecondsAfterFinished": {"minimum": 0},
    "RayJobSpec.activeDeadlineSeconds": {"minimum": 1},
    "RayJobSpec.preRunningDeadlineSeconds": {"minimum": 1},
    "RayJobSpec.backoffLimit": {"minimum": 0},
    "RayJobSpec.managedBy": {
        "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "managedBy is immutable"},
            {
                "rule": f"self in {_one_of(MANAGERS)}",
                "message": f"managedBy must be one of {', '.join(MANAGERS)}",
            },
        ]
    },
    "SubmitterConfig.backoffLimit": {"minimum": 0},
    "DeletionStrategy.deletionRules": {"minItems": 1, "x-kubernetes-list-type": "atomic"},
    "DeletionCondition.ttlSeconds": {"minimum": 0},
}

RAYJOB_OBJECT_RULES: dict[str, list[JSONSchema]] = {
    "RayJobSpec": [
        {
            "rule": "has(self.rayClusterSpec) != "
            "(has(self.clusterSelector) && size(self.clusterSelector) > 0)",
            "message": "exactly one of rayClusterSpec and clusterSelector must be set",
        },
        {
            "rule": "!has(self.clusterSelector) || size(self.clusterSelector) == 0 || "
            "('ray.io/cluster' in self.clusterSelector && "
            "self.clusterSelector['ray.io/cluster'] != '')",
            "message": "clusterSelector must name the RayCluster under 'ray.io/cluster'",
        },
    ],
    "DeletionStrategy": [
        {
            "rule": "!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))",
            "message": "onSuccess/onFailure (legacy) and deletionRules cannot be combined",
        },
        {
            "rule": "has(self.onSuccess) == has(self.onFailure)",
            "message": "the legacy policies need both onSuccess and onFailure",
        },
        {
            "rule": "has(self.onSuccess) || has(self.deletionRules)",
            "message": "deletionRules is required unless onSuccess and onFailure are set",
        },
    ],
    "DeletionCondition": [
        {
            "rule": "has(self.jobStatus) != has(self.jobDeploymentStatus)",
            "message": "a condition needs exactly one of jobStatus and jobDeploymentStatus",
        }
    ],
}

RAYJOB_ROOT_RULES: list[JSONSchema] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_RAYJOB_NAME}",
        "message": f"metadata.name must be at most {MAX_RAYJOB_NAME} characters (the RayCluster "
        "it creates adds 6)",
    },
    ROOT_RULES[1],
]

RAYJOB_DESCRIPTIONS: dict[str, str] = {
    "RayJob": "A Ray job on Kubernetes: a RayCluster of its own (or an existing one), the job "
    "submitted to it, and the cleanup afterwards. Managed by metaray through Metacontroller.",
    "RayJobSpec": "The desired Ray job.",
    "RayJobSpec.entrypoint": "The shell command the Ray job runs.",
    "RayJobSpec.runtimeEnvYAML": "The job's runtime environment, as a YAML document.",
    "RayJobSpec.runtimeEnv": "Deprecated (KubeRay v0.6): the runtime environment as "
    "base64-encoded JSON. Cannot be combined with runtimeEnvYAML.",
    "RayJobSpec.metadata": "Metadata stored with the Ray job.",
    "RayJobSpec.jobId": "The Ray job's submission ID (default: generated from the RayJob).",
    "RayJobSpec.submissionMode": "How the job is submitted: K8sJobMode (a submitter Job) or "
    "SidecarMode (a container in the head pod); metaray refuses HTTPMode and InteractiveMode "
    "for now.",
    "RayJobSpec.entrypointNumCpus": "CPUs reserved for the entrypoint.",
    "RayJobSpec.entrypointNumGpus": "GPUs reserved for the entrypoint.",
    "RayJobSpec.entrypointResources": "Custom resources reserved for the entrypoint, as a JSON "
    "object of names to amounts.",
    "RayJobSpec.rayClusterSpec": "The RayCluster created to run the job; changes after it is "
    "created are ignored.",
    "RayJobSpec.clusterSelector": "Run on an existing RayCluster instead, named under the key "
    "ray.io/cluster; it is never modified nor deleted.",
    "RayJobSpec.submitterPodTemplate": "The submitter Job's pod template (K8sJobMode); its "
    "first container submits the job.",
    "RayJobSpec.submitterConfig": "Settings of the submitter Job.",
    "RayJobSpec.shutdownAfterJobFinishes": "Delete the RayCluster once the job has finished.",
    "RayJobSpec.ttlSecondsAfterFinished": "Seconds after the job finishes before the RayCluster "
    "is deleted (needs shutdownAfterJobFinishes).",
    "RayJobSpec.activeDeadlineSeconds": "Seconds from the start after which the RayJob fails "
    "(DeadlineExceeded).",
    "RayJobSpec.preRunningDeadlineSeconds": "Seconds from the start within which the job must be "
    "running, or the RayJob fails (PreRunningDeadlineExceeded).",
    "RayJobSpec.backoffLimit": "Retries of the whole RayJob, each with a new RayCluster.",
    "RayJobSpec.suspend": "Delete the RayCluster and hold the job until set back to false (Kueue).",
    "RayJobSpec.managedBy": "The controller meant to manage this RayJob; another than "
    "ray.io/kuberay-operator (MultiKueue) is left alone. Immutable.",
    "RayJobSpec.deletionStrategy": "What is deleted after the job has finished, and when.",
    "SubmitterConfig.backoffLimit": "Retries of the submitter Job's pod (default 2).",
    "DeletionStrategy.onSuccess": "Deprecated: the policy after a successful job (use "
    "deletionRules).",
    "DeletionStrategy.onFailure": "Deprecated: the policy after a failed job (use deletionRules).",
    "DeletionStrategy.deletionRules": "Deletion steps, each with its condition and delay.",
    "DeletionPolicy.policy": "What to delete.",
    "DeletionRule.policy": "What to delete.",
    "DeletionRule.condition": "When to delete it.",
    "DeletionCondition.jobStatus": "The Ray job's final status that triggers the rule.",
    "DeletionCondition.jobDeploymentStatus": "The RayJob's deployment status that triggers the "
    "rule.",
    "DeletionCondition.ttlSeconds": "Seconds after the condition is met before the rule runs.",
}

RAYJOB_TABLES = Tables(
    kind=RAYJOB_KIND,
    embedded=RAYJOB_EMBEDDED,
    constraints=RAYJOB_CONSTRAINTS,
    object_rules=RAYJOB_OBJECT_RULES,
    descriptions=RAYJOB_DESCRIPTIONS,
    # KubeRay's CRD defaults neither: a RayJob stores only what its author wrote.
    without_default=frozenset({"RayJobSpec.shutdownAfterJobFinishes", "RayJobSpec.suspend"}),
)


def rayjob_spec_schema(types: KubernetesTypes) -> JSONSchema:
    return SpecWalker(RayJobSpec.model_json_schema(), types, RAYJOB_TABLES).spec()


def rayjob_status_schema(types: KubernetesTypes) -> JSONSchema:
    def string(description: str) -> JSONSchema:
        return {"type": "string", "description": description}

    def time(description: str) -> JSONSchema:
        return {"type": "string", "format": "date-time", "description": description}

    def counter(description: str) -> JSONSchema:
        return {"type": "integer", "format": "int32", "default": 0, "description": description}

    cluster = status_schema(types)
    cluster["description"] = "A copy of the RayCluster's status."
    return {
        "type": "object",
        "description": "The job, its RayCluster and its submitter as observed.",
        "properties": {
            "jobStatus": string(
                "The Ray job's status: PENDING, RUNNING, STOPPED, SUCCEEDED or "
                "FAILED; empty before it is submitted."
            ),
            "jobDeploymentStatus": string(
                "Where the RayJob is: Initializing, Running, Complete, "
                "Failed, ValidationFailed, Suspending, Suspended, Retrying or Waiting."
            ),
            "reason": string("Why the RayJob failed."),
            "message": string("The Ray job's message, or what went wrong."),
            "rayClusterName": string("The RayCluster the job runs on."),
            "dashboardURL": string("host:port of the Ray dashboard."),
            "jobId": string("The Ray job's submission ID."),
            "startTime": time("When this attempt started."),
            "endTime": time("When the RayJob reached Complete or Failed."),
            "succeeded": counter("Attempts that succeeded."),
            "failed": counter("Attempts that failed."),
            "rayClusterStatus": cluster,
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation this status describes (set by "
                "Metacontroller).",
            },
            "rayJobInfo": {
                "type": "object",
                "description": "The Ray job's own start and end, as Ray reports them.",
                "properties": {
                    "startTime": time("When the Ray job started."),
                    "endTime": time("When the Ray job ended."),
                },
            },
            "jobStatusCheckFailureStartTime": time(
                "Since when the job's status could not be read."
            ),
        },
    }


RAYJOB_PRINTER_COLUMNS: list[JSONSchema] = [
    {"name": "job status", "type": "string", "jsonPath": ".status.jobStatus"},
    {"name": "deployment status", "type": "string", "jsonPath": ".status.jobDeploymentStatus"},
    {"name": "ray cluster name", "type": "string", "jsonPath": ".status.rayClusterName"},
    {"name": "start time", "type": "date", "jsonPath": ".status.startTime"},
    {"name": "end time", "type": "date", "jsonPath": ".status.endTime"},
    {"name": "age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


RAYJOB = Resource(
    kind=RAYJOB_KIND,
    plural=RAYJOB_PLURAL,
    output=RAYJOB_OUTPUT,
    header=RAYJOB_HEADER,
    description=RAYJOB_DESCRIPTIONS[RAYJOB_KIND],
    spec=rayjob_spec_schema,
    status=rayjob_status_schema,
    root_rules=RAYJOB_ROOT_RULES,
    printer_columns=RAYJOB_PRINTER_COLUMNS,
)
