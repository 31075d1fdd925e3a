"""The RayJob spec: its model, its defaults, and what a valid RayJob is.

``app.rayjob.parse`` makes a ``RayJob`` of a parent (KubeRay v1.7's checks that a CRD cannot make
are ``app.rayjob.spec_checks``, the documents embedded in the spec ``app.rayjob.spec_documents``).
The embedded ``rayClusterSpec`` stays a plain JSON object here: it is checked by the RayCluster
core (``parse_spec``) under the name the cluster will have, and copied into the RayCluster child.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from app.raycluster.spec import Int32, JSONObject, RayClusterSpec, SpecModel

MAX_RAYJOB_NAME = 47  # the cluster's name adds "-" and 5 characters and must stay within 53
K8S_JOB_MODE = "K8sJobMode"
SIDECAR_MODE = "SidecarMode"
HTTP_MODE = "HTTPMode"
INTERACTIVE_MODE = "InteractiveMode"
SUBMISSION_MODES = (K8S_JOB_MODE, HTTP_MODE, INTERACTIVE_MODE, SIDECAR_MODE)
KUBERAY_MANAGER = "ray.io/kuberay-operator"
MULTIKUEUE_MANAGER = "kueue.x-k8s.io/multikueue"
MANAGERS = (KUBERAY_MANAGER, MULTIKUEUE_MANAGER)
CLUSTER_SELECTOR_KEY = "ray.io/cluster"
DEFAULT_SUBMITTER_BACKOFF_LIMIT = 2

Policy = Literal["DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone"]
# The most destructive first: of several rules due at once, only the first of these runs.
POLICY_ORDER: tuple[Policy, ...] = ("DeleteSelf", "DeleteCluster", "DeleteWorkers", "DeleteNone")


class SubmitterConfig(SpecModel):
    backoffLimit: Int32 | None = None


class DeletionPolicy(SpecModel):
    policy: Policy


class DeletionCondition(SpecModel):
    jobStatus: Literal["SUCCEEDED", "FAILED"] | None = None
    jobDeploymentStatus: Literal["Failed"] | None = None
    ttlSeconds: Int32 = 0


class DeletionRule(SpecModel):
    policy: Policy
    condition: DeletionCondition


class DeletionStrategy(SpecModel):
    onSuccess: DeletionPolicy | None = None
    onFailure: DeletionPolicy | None = None
    deletionRules: list[DeletionRule] | None = None


class RayJobSpec(SpecModel):
    entrypoint: str | None = None
    runtimeEnvYAML: str | None = None
    # KubeRay v0.6/v1.0 (ray.io/v1alpha1): the runtime env as base64-encoded JSON.
    runtimeEnv: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    jobId: str | None = None
    submissionMode: str = K8S_JOB_MODE
    entrypointNumCpus: float | None = None
    entrypointNumGpus: float | None = None
    entrypointResources: str | None = None
    rayClusterSpec: JSONObject | None = None
    clusterSelector: dict[str, str] = Field(default_factory=dict)
    submitterPodTemplate: JSONObject | None = None
    submitterConfig: SubmitterConfig | None = None
    shutdownAfterJobFinishes: bool = False
    ttlSecondsAfterFinished: Int32 = 0
    activeDeadlineSeconds: Int32 | None = None
    preRunningDeadlineSeconds: Int32 | None = None
    backoffLimit: Int32 = 0
    suspend: bool = False
    managedBy: str | None = None
    deletionStrategy: DeletionStrategy | None = None


@dataclass(frozen=True, slots=True)
class RayJob:
    """A valid RayJob: identity, spec, and what its spec means once checked."""

    name: str
    namespace: str
    uid: str
    generation: int
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: RayJobSpec
    # The parsed cluster spec (None with a clusterSelector).
    cluster_spec: RayClusterSpec | None
    runtime_env: JSONObject | None
    entrypoint_resources: dict[str, float] | None

    @property
    def mode(self) -> str:
        return self.spec.submissionMode

    @property
    def selected_cluster(self) -> str | None:
        """The name of the user's own RayCluster, in clusterSelector mode."""
        return self.spec.clusterSelector.get(CLUSTER_SELECTOR_KEY) or None

    @property
    def submitter_backoff_limit(self) -> int:
        config = self.spec.submitterConfig
        if config is None or config.backoffLimit is None:
            return DEFAULT_SUBMITTER_BACKOFF_LIMIT
        return config.backoffLimit


def managed_elsewhere(parent: Mapping[str, Any]) -> bool:
    """``spec.managedBy`` names another controller (MultiKueue): metaray must not act."""
    spec = parent.get("spec")
    manager = spec.get("managedBy") if isinstance(spec, Mapping) else None
    return manager is not None and manager != KUBERAY_MANAGER


def submitter_command(template: Mapping[str, Any] | None) -> Any:
    """The command of a submitter template's first container, where it has one."""
    pod_spec = (template or {}).get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    return first.get("command") if isinstance(first, Mapping) else None
