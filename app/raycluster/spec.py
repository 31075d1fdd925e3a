"""The RayCluster spec: its model, its defaults, and the checks a CRD schema cannot make.

Pod templates and the custom head Service stay plain JSON objects: metaray copies them into the
children and adds what Ray needs, it does not model the whole Kubernetes Pod.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from app.raycluster.feature_checks import check_features
from app.raycluster.names import (
    MAX_CLUSTER_NAME,
    is_dns1035_label,
)
from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.template_checks import (
    check_group,
    check_head_service,
    check_items,
    check_params,
    check_quantities,
    check_ray_labels,
    check_template,
    check_words,
)

INT32_MAX = 2147483647
INT64 = 2**63
API_VERSIONS = ("ray.io/v1", "ray.io/v1alpha1")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]


def _kubernetes_json(value: Any) -> Any:
    """JSON a Kubernetes object can hold: nulls dropped (the API server prunes them), integers
    within int64 and finite numbers (nothing else can be stored, or encoded back)."""
    if isinstance(value, dict):
        return {key: _kubernetes_json(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_kubernetes_json(item) for item in value if item is not None]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int) and not -INT64 <= value < INT64:
        raise ValueError(f"the integer {value} does not fit in 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


# A plain JSON object copied into the children (pod templates, a Service, ...), cleaned.
JSONObject = Annotated[dict[str, Any], AfterValidator(_kubernetes_json)]


class _Model(BaseModel):
    """Unknown fields are errors (never silently ignored); JSON nulls mean 'not set'."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


class ScaleStrategy(_Model):
    workersToDelete: list[str] = []


class HeadGroupSpec(_Model):
    template: JSONObject
    rayStartParams: dict[str, str] = {}
    serviceType: str | None = None
    headService: JSONObject | None = None
    enableIngress: bool = False
    ingressOptions: JSONObject | None = None
    # Deprecated in KubeRay and ignored there too; accepted so v0.6 manifests still apply.
    replicas: Int32 | None = None
    resources: dict[str, str] = {}
    labels: dict[str, str] = {}


class WorkerGroupSpec(_Model):
    groupName: str
    template: JSONObject
    replicas: Int32 | None = None
    minReplicas: Int32 = 0
    maxReplicas: Int32 = INT32_MAX
    numOfHosts: Int32 = 1
    rayStartParams: dict[str, str] = {}
    scaleStrategy: ScaleStrategy = ScaleStrategy()
    suspend: bool = False
    idleTimeoutSeconds: Int32 | None = None
    priority: Int32 | None = None
    resources: dict[str, str] = {}
    labels: dict[str, str] = {}

    @property
    def target(self) -> int:
        """Pods wanted: ``replicas`` (default ``minReplicas``) clamped to [min, max], per host."""
        if self.suspend:
            return 0
        wanted = self.minReplicas if self.replicas is None else self.replicas
        return max(self.minReplicas, min(wanted, self.maxReplicas)) * self.numOfHosts


class AutoscalerOptions(_Model):
    image: str | None = None
    imagePullPolicy: str | None = None
    resources: JSONObject | None = None
    env: list[JSONObject] = []
    envFrom: list[JSONObject] = []
    volumeMounts: list[JSONObject] = []
    securityContext: JSONObject | None = None
    idleTimeoutSeconds: Int32 | None = None
    upscalingMode: Literal["Default", "Aggressive", "Conservative"] | None = None
    version: Literal["v1", "v2"] | None = None
    command: list[str] | None = None
    args: list[str] | None = None


class RedisCredential(_Model):
    value: str | None = None
    valueFrom: JSONObject | None = None


class GcsStorage(_Model):
    """The head's volume for the embedded (RocksDB) GCS store; defaults applied by the builder."""

    claimName: str | None = None
    size: str | None = None
    storageClassName: str | None = None
    accessModes: list[str] = []
    subPath: str | None = None
    deletionPolicy: Literal["DeleteWithCluster", "Retain"] | None = None


class GcsFaultToleranceOptions(_Model):
    redisAddress: str | None = None
    redisPassword: RedisCredential | None = None
    redisUsername: RedisCredential | None = None
    externalStorageNamespace: str | None = None
    backend: Literal["redis", "rocksdb"] | None = None
    storage: GcsStorage | None = None


class AuthOptions(_Model):
    """Ray token authentication (KubeRay's authOptions): only ``mode: token`` turns it on."""

    mode: Literal["disabled", "token"] | None = None
    secretName: str | None = None
    enableK8sTokenAuth: bool | None = None


class NetworkPolicyRules(_Model):
    """Rules appended to the base intra-cluster rules (Kubernetes NetworkPolicy rules)."""

    ingressRules: list[JSONObject] = []
    egressRules: list[JSONObject] = []


class NetworkPolicyGroup(_Model):
    """A worker group's own rules, replacing ``worker``'s for that group."""

    groupName: str
    ingressRules: list[JSONObject] = []
    egressRules: list[JSONObject] = []


class NetworkPolicyOptions(_Model):
    mode: Literal["DenyAll", "DenyAllIngress", "DenyAllEgress"] = "DenyAll"
    head: NetworkPolicyRules | None = None
    worker: NetworkPolicyRules | None = None
    workerGroups: list[NetworkPolicyGroup] = []


class CollectorOptions(_Model):
    image: str | None = None
    imagePullPolicy: str | None = None
    resources: JSONObject | None = None
    env: list[JSONObject] = []


class HistoryServerOptions(_Model):
    collectorOptions: CollectorOptions | None = None


class TlsOptions(_Model):
    enabled: bool = False


class UpgradeStrategy(_Model):
    type: Literal["Recreate", "None"] | None = None
    maxUnavailable: Int32 | None = None


class RayClusterSpec(_Model):
    headGroupSpec: HeadGroupSpec
    workerGroupSpecs: list[WorkerGroupSpec] = []
    rayVersion: str | None = None
    enableInTreeAutoscaling: bool = False
    autoscalerOptions: AutoscalerOptions | None = None
    headServiceAnnotations: dict[str, str] = {}
    suspend: bool = False
    managedBy: str | None = None
    gcsFaultToleranceOptions: GcsFaultToleranceOptions | None = None
    upgradeStrategy: UpgradeStrategy | None = None
    authOptions: AuthOptions | None = None
    networkPolicy: NetworkPolicyOptions | None = None
    tlsOptions: TlsOptions | None = None
    historyServerOptions: HistoryServerOptions | None = None


def parse_spec(parent: Mapping[str, Any]) -> RayClusterSpec:
    """Validate and default a RayCluster object's spec, or raise ``InvalidSpec``."""
    problems = list(_check_identity(parent))
    raw = parent.get("spec")
    if not isinstance(raw, Mapping):
        problems.append(Problem("spec", "must be an object"))
        raise InvalidSpec(problems)
    try:
        spec = RayClusterSpec.model_validate(raw)
    except ValidationError as error:
        problems.extend(_pydantic_problems(error))
        raise InvalidSpec(problems) from None
    problems.extend(_check_spec(spec))
    if problems:  # the rules below read fields whose shape must be right first
        raise InvalidSpec(problems)
    problems.extend(check_features(parent, spec))
    if problems:
        raise InvalidSpec(problems)
    return spec


def _pydantic_problems(error: ValidationError) -> Iterator[Problem]:
    for item in error.errors(include_url=False):
        path = "spec" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
        )
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        yield Problem(path, message)


def _check_identity(
    parent: Mapping[str, Any], max_name: int = MAX_CLUSTER_NAME
) -> Iterator[Problem]:
    """apiVersion, metadata's shape, and the name: a DNS-1035 label of at most ``max_name``."""
    if parent.get("apiVersion") not in API_VERSIONS:
        yield Problem("apiVersion", f"must be one of {', '.join(API_VERSIONS)}")
    metadata = parent.get("metadata")
    if not isinstance(metadata, Mapping):
        yield Problem("metadata", "must be an object")
        metadata = {}
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, Mapping) or not all(isinstance(v, str) for v in values.values()):
            yield Problem(f"metadata.{key}", "must map strings to strings")
    for key in ("uid", "namespace"):
        if not isinstance(metadata.get(key, ""), str):
            yield Problem(f"metadata.{key}", "must be a string")
    name = metadata.get("name")
    if not isinstance(name, str) or not is_dns1035_label(name, max_name):
        yield Problem(
            "metadata.name",
            f"must be a DNS-1035 label of at most {max_name} characters "
            "(lower-case letters, digits and '-', starting with a letter)",
        )


def _check_spec(spec: RayClusterSpec) -> Iterator[Problem]:
    head = spec.headGroupSpec
    yield from check_template("spec.headGroupSpec.template", head.template)
    yield from check_params("spec.headGroupSpec.rayStartParams", head.rayStartParams)
    yield from check_quantities("spec.headGroupSpec.resources", head.resources, negative=False)
    yield from check_words("spec.headGroupSpec.resources", head.resources, "resource names")
    yield from check_ray_labels("spec.headGroupSpec", "head", head.labels, head.rayStartParams)
    if head.serviceType is not None and head.serviceType not in SERVICE_TYPES:
        yield Problem(
            "spec.headGroupSpec.serviceType", f"must be one of {', '.join(SERVICE_TYPES)}"
        )
    if head.headService is not None:
        yield from check_head_service("spec.headGroupSpec.headService", head.headService)
    if spec.autoscalerOptions is not None:
        options = {"env": spec.autoscalerOptions.env}
        yield from check_items("spec.autoscalerOptions.env", options, "env", {"name": (str, True)})
    seen: set[str] = set()
    for index, group in enumerate(spec.workerGroupSpecs):
        path = f"spec.workerGroupSpecs[{index}]"
        yield from check_group(path, group)
        if group.groupName in seen:
            yield Problem(f"{path}.groupName", f"{group.groupName!r} is used by another group")
        seen.add(group.groupName)


SpecModel = _Model
pydantic_problems = _pydantic_problems
check_identity = _check_identity
