"""The RayCluster spec: its model, its defaults, and the checks a CRD schema cannot make.

Pod templates and the custom head Service stay plain JSON objects: metaray copies them into the
children and adds what Ray needs, it does not model the whole Kubernetes Pod.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from app.raycluster.names import (
    MAX_CLUSTER_NAME,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_key,
    is_label_value,
    is_pod_name_segment,
)
from app.raycluster.quantity import QuantityError, parse_quantity
from app.raycluster.shell import shell_word_problem

INT32_MAX = 2147483647
INT64 = 2**63
API_VERSIONS = ("ray.io/v1", "ray.io/v1alpha1")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_FLAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Resource names go into ``--resources='{...}'``: inside single quotes, so ':' is safe too.
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]*$")
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


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the spec cannot be acted on, with the field it concerns."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSpec(ValueError):
    """The RayCluster cannot be understood; ``problems`` says why, field by field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems))


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
    problems.extend(_check_features(parent, spec))
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
    yield from _check_template("spec.headGroupSpec.template", head.template)
    yield from _check_params("spec.headGroupSpec.rayStartParams", head.rayStartParams)
    yield from _check_quantities("spec.headGroupSpec.resources", head.resources, negative=False)
    yield from _check_words("spec.headGroupSpec.resources", head.resources, "resource names")
    yield from _check_ray_labels("spec.headGroupSpec", "head", head.labels, head.rayStartParams)
    if head.serviceType is not None and head.serviceType not in SERVICE_TYPES:
        yield Problem(
            "spec.headGroupSpec.serviceType", f"must be one of {', '.join(SERVICE_TYPES)}"
        )
    if head.headService is not None:
        yield from _check_head_service("spec.headGroupSpec.headService", head.headService)
    if spec.autoscalerOptions is not None:
        options = {"env": spec.autoscalerOptions.env}
        yield from _check_items("spec.autoscalerOptions.env", options, "env", {"name": (str, True)})
    seen: set[str] = set()
    for index, group in enumerate(spec.workerGroupSpecs):
        path = f"spec.workerGroupSpecs[{index}]"
        yield from _check_group(path, group)
        if group.groupName in seen:
            yield Problem(f"{path}.groupName", f"{group.groupName!r} is used by another group")
        seen.add(group.groupName)


_RESOURCE_FLAGS = ("num-cpus", "num-gpus", "memory", "resources")


def _check_features(parent: Mapping[str, Any], spec: RayClusterSpec) -> Iterator[Problem]:
    """Rules that tie fields together: autoscaler v2, GCS fault tolerance, rollout."""
    metadata = parent.get("metadata") or {}
    annotations = metadata.get("annotations") or {} if isinstance(metadata, Mapping) else {}
    options = spec.autoscalerOptions
    if spec.enableInTreeAutoscaling and options is not None and options.version == "v2":
        templates = [("spec.headGroupSpec", spec.headGroupSpec.template)]
        templates += [
            (f"spec.workerGroupSpecs[{i}]", g.template) for i, g in enumerate(spec.workerGroupSpecs)
        ]
        for path, template in templates:
            policy = (template.get("spec") or {}).get("restartPolicy")
            if policy not in (None, "Never"):
                yield Problem(
                    f"{path}.template.spec.restartPolicy",
                    "must be Never (or unset) with autoscaler v2",
                )
    if spec.gcsFaultToleranceOptions is not None:
        yield from _check_fault_tolerance(spec, spec.gcsFaultToleranceOptions, annotations)
    elif str(annotations.get("ray.io/ft-enabled", "")).lower() == "true":
        yield from _check_annotated_fault_tolerance(spec)
    if spec.authOptions is not None:
        yield from _check_auth(spec.authOptions, spec.rayVersion)
    if spec.networkPolicy is not None:
        yield from _check_network_policy(spec, spec.networkPolicy)
    if spec.tlsOptions is not None and spec.tlsOptions.enabled:
        yield from _check_tls(spec)
    if spec.historyServerOptions is not None:
        yield from _check_history_server(spec, spec.historyServerOptions)
    strategy = spec.upgradeStrategy
    if strategy is not None and strategy.maxUnavailable is not None and strategy.maxUnavailable < 1:
        yield Problem("spec.upgradeStrategy.maxUnavailable", "must be at least 1")
    groups: list[tuple[str, HeadGroupSpec | WorkerGroupSpec]] = [
        ("spec.headGroupSpec", spec.headGroupSpec)
    ]
    groups += [(f"spec.workerGroupSpecs[{i}]", g) for i, g in enumerate(spec.workerGroupSpecs)]
    for path, group in groups:
        clash = sorted(set(_RESOURCE_FLAGS) & set(group.rayStartParams))
        if group.resources and clash:
            name = group.groupName if isinstance(group, WorkerGroupSpec) else "head"
            yield Problem(
                f"{path}.resources",
                "resource fields should not be set in both rayStartParams and Resources for "
                f"{name} group; please use only one (rayStartParams sets {', '.join(clash)})",
            )


def _check_network_policy(spec: RayClusterSpec, options: NetworkPolicyOptions) -> Iterator[Problem]:
    """KubeRay's rules and messages; plus the shape of each rule metaray reads."""
    path = "spec.networkPolicy"
    entries: list[tuple[str, str, NetworkPolicyRules | NetworkPolicyGroup]] = []
    if options.head is not None:
        entries.append((f"{path}.head", "networkPolicy.head", options.head))
    if options.worker is not None:
        entries.append((f"{path}.worker", "networkPolicy.worker", options.worker))
    names = {group.groupName for group in spec.workerGroupSpecs}
    seen: set[str] = set()
    for index, entry in enumerate(options.workerGroups):
        label = f"networkPolicy.workerGroups[{entry.groupName!r}]"
        entries.append((f"{path}.workerGroups[{index}]", label, entry))
        if entry.groupName not in names:
            yield Problem(
                f"{path}.workerGroups[{index}].groupName",
                f"{label} does not match any group name in workerGroupSpecs",
            )
        if entry.groupName in seen:
            yield Problem(f"{path}.workerGroups[{index}].groupName", f"{label} is listed twice")
        seen.add(entry.groupName)
    for where, label, rules in entries:
        if options.mode == "DenyAllEgress" and rules.ingressRules:
            yield Problem(
                f"{where}.ingressRules",
                f'{label}.ingressRules cannot be set when mode is "DenyAllEgress" '
                "(ingress is not restricted)",
            )
        if options.mode == "DenyAllIngress" and rules.egressRules:
            yield Problem(
                f"{where}.egressRules",
                f'{label}.egressRules cannot be set when mode is "DenyAllIngress" '
                "(egress is not restricted)",
            )
        for kind, peers in (("ingressRules", "from"), ("egressRules", "to")):
            for index, rule in enumerate(getattr(rules, kind)):
                yield from _check_fields(
                    f"{where}.{kind}[{index}]", rule, {"ports": list, peers: list}
                )
                yield from _check_items(
                    f"{where}.{kind}[{index}].ports", rule, "ports", {"protocol": (str, False)}
                )
    for index, group in enumerate(spec.workerGroupSpecs):
        if not is_dns1123_label(group.groupName):
            yield Problem(
                f"spec.workerGroupSpecs[{index}].groupName",
                f"worker group name {group.groupName!r} must be a valid DNS1123 label when "
                "networkPolicy is enabled (it is embedded in the NetworkPolicy name): "
                "lower-case letters, digits and '-', at most 63 characters",
            )


HISTORY_COLLECTOR = "ray-history-collector"


def _check_history_server(spec: RayClusterSpec, options: HistoryServerOptions) -> Iterator[Problem]:
    path = "spec.historyServerOptions"
    collector = options.collectorOptions
    if collector is None:
        yield Problem(
            f"{path}.collectorOptions", "historyServerOptions.collectorOptions must be set"
        )
        return
    if not collector.image:
        yield Problem(f"{path}.collectorOptions.image", "is required")
    yield from _check_items(
        f"{path}.collectorOptions.env", {"env": collector.env}, "env", {"name": (str, True)}
    )
    templates = [("spec.headGroupSpec.template", "head", spec.headGroupSpec.template)]
    templates += [
        (f"spec.workerGroupSpecs[{i}].template", f"worker group {g.groupName!r}", g.template)
        for i, g in enumerate(spec.workerGroupSpecs)
    ]
    for where, role, template in templates:
        for index, container in enumerate(_objects(template.get("spec") or {}, "containers")):
            if container.get("name") == HISTORY_COLLECTOR:
                yield Problem(
                    f"{where}.spec.containers[{index}].name",
                    f"{role} pod template must not define a container with name "
                    f"'{HISTORY_COLLECTOR}' when history server collector options are enabled",
                )


TLS_VOLUME = "ray-tls"
TLS_MOUNT_PATH = "/etc/ray/tls"
TLS_ENV = ("RAY_USE_TLS", "RAY_TLS_SERVER_CERT", "RAY_TLS_SERVER_KEY", "RAY_TLS_CA_CERT")
_TLS_MANAGED = "the operator manages TLS configuration automatically"


def _check_tls(spec: RayClusterSpec) -> Iterator[Problem]:
    """KubeRay's rule: the TLS variables and the certificate mount are metaray's."""
    templates = [("spec.headGroupSpec.template", "head Pod", spec.headGroupSpec.template)]
    templates += [
        (f"spec.workerGroupSpecs[{i}].template", f"worker group {g.groupName!r} Pod", g.template)
        for i, g in enumerate(spec.workerGroupSpecs)
    ]
    for path, where, template in templates:
        pod_spec = template.get("spec") or {}
        for kind in ("containers", "initContainers"):
            for index, container in enumerate(_objects(pod_spec, kind)):
                yield from _check_tls_container(f"{path}.spec.{kind}[{index}]", where, container)
        for index, volume in enumerate(_objects(pod_spec, "volumes")):
            if volume.get("name") == TLS_VOLUME:
                yield Problem(
                    f"{path}.spec.volumes[{index}]",
                    f"cannot use the volume name {TLS_VOLUME} in {where} when tlsOptions is set "
                    f"- {_TLS_MANAGED}",
                )
    options = spec.autoscalerOptions
    if options is not None:
        sidecar = {"env": options.env, "volumeMounts": options.volumeMounts}
        yield from _check_tls_container("spec.autoscalerOptions", "autoscalerOptions", sidecar)


def _check_tls_container(path: str, where: str, container: JSONObject) -> Iterator[Problem]:
    for index, item in enumerate(_objects(container, "env")):
        if item.get("name") in TLS_ENV:
            yield Problem(
                f"{path}.env[{index}]",
                f"cannot set {item['name']} environment variable in {where} when tlsOptions "
                f"is set - {_TLS_MANAGED}",
            )
    for index, mount in enumerate(_objects(container, "volumeMounts")):
        if mount.get("name") == TLS_VOLUME or mount.get("mountPath") == TLS_MOUNT_PATH:
            yield Problem(
                f"{path}.volumeMounts[{index}]",
                f"cannot mount a volume named {TLS_VOLUME} or at {TLS_MOUNT_PATH} in {where} "
                f"when tlsOptions is set - {_TLS_MANAGED}",
            )


_TOKEN_AUTH_SINCE = (2, 52, 0)
_K8S_TOKEN_AUTH_SINCE = (2, 55, 0)
_RAY_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.]?[0-9A-Za-z.+-]*)?$")


def _check_auth(options: AuthOptions, ray_version: str | None) -> Iterator[Problem]:
    """KubeRay's rules and messages: token auth needs Ray 2.52, the K8s mode Ray 2.55."""
    path = "spec.authOptions"
    k8s = bool(options.enableK8sTokenAuth)
    if options.secretName is not None and not is_dns1123_subdomain(options.secretName):
        yield Problem(f"{path}.secretName", "must be a Secret name (a DNS-1123 subdomain)")
    if k8s and options.secretName is not None:
        yield Problem(
            path,
            "authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set",
        )
    if k8s and options.mode != "token":
        yield Problem(
            path,
            "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'",
        )
    if options.mode != "token":
        return
    if not ray_version:
        yield Problem(
            "spec.rayVersion",
            "authOptions.mode is 'token' but RayVersion was not specified. "
            "Ray version 2.52.0 or later is required",
        )
        return
    match = _RAY_VERSION.match(ray_version)
    if match is None:
        yield Problem(
            "spec.rayVersion",
            f"authOptions.mode is 'token' but RayVersion format is invalid: {ray_version}, "
            "expected MAJOR.MINOR[.PATCH]",
        )
        return
    version = (int(match[1]), int(match[2]), int(match[3] or 0))
    if version < _TOKEN_AUTH_SINCE:
        yield Problem(
            "spec.rayVersion",
            f"authOptions.mode is 'token' but minimum Ray version is 2.52.0, got {ray_version}",
        )
    elif k8s and version < _K8S_TOKEN_AUTH_SINCE:
        yield Problem(
            "spec.rayVersion",
            "authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0, "
            f"got {ray_version}",
        )


def _check_fault_tolerance(
    spec: RayClusterSpec, options: GcsFaultToleranceOptions, annotations: Mapping[str, Any]
) -> Iterator[Problem]:
    path = "spec.gcsFaultToleranceOptions"
    if "ray.io/ft-enabled" in annotations:
        yield Problem(
            'metadata.annotations["ray.io/ft-enabled"]',
            f"must not be set together with {path}: use one or the other",
        )
    if options.backend == "rocksdb":
        yield from _check_rocksdb(spec, options)
        return
    if options.storage is not None:
        yield Problem(
            f"{path}.storage",
            "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' - it only "
            "applies to the 'rocksdb' backend",
        )
    if not options.redisAddress:
        yield Problem(f"{path}.redisAddress", "is required")
    if options.externalStorageNamespace and "ray.io/external-storage-namespace" in annotations:
        yield Problem(
            f"{path}.externalStorageNamespace",
            'cannot be combined with the annotation "ray.io/external-storage-namespace"',
        )
    for name in ("redisPassword", "redisUsername"):
        credential = getattr(options, name)
        if credential is not None and (credential.value is None) == (credential.valueFrom is None):
            yield Problem(f"{path}.{name}", "must set exactly one of value and valueFrom")
    if "redis-password" in spec.headGroupSpec.rayStartParams:
        yield Problem(
            "spec.headGroupSpec.rayStartParams.redis-password",
            f"must not be set with {path}: use {path}.redisPassword",
        )
    containers = (spec.headGroupSpec.template.get("spec") or {}).get("containers") or [{}]
    env = containers[0].get("env") or [] if isinstance(containers[0], dict) else []
    names = {item.get("name") for item in env if isinstance(item, dict)}
    for variable, field in (
        ("RAY_REDIS_ADDRESS", "redisAddress"),
        ("REDIS_PASSWORD", "redisPassword"),
        ("REDIS_USERNAME", "redisUsername"),
    ):
        if variable in names and (field == "redisAddress" or getattr(options, field)):
            yield Problem(
                "spec.headGroupSpec.template.spec.containers[0].env",
                f"must not set {variable} with {path}: use {path}.{field}",
            )


GCS_STORAGE_VOLUME = "gcs-storage"
GCS_STORAGE_PATH = "/data/gcs"
GCS_STORAGE_ENV = ("RAY_gcs_storage", "RAY_gcs_storage_path")


def _check_rocksdb(spec: RayClusterSpec, options: GcsFaultToleranceOptions) -> Iterator[Problem]:
    """KubeRay's rules for the embedded store, and what metaray cannot do (Retain)."""
    path = "spec.gcsFaultToleranceOptions"
    for field, label in (
        ("redisAddress", "RedisAddress"),
        ("redisUsername", "RedisUsername"),
        ("redisPassword", "RedisPassword"),
        ("externalStorageNamespace", "ExternalStorageNamespace"),
    ):
        if getattr(options, field) is not None:
            yield Problem(
                f"{path}.{field}",
                f"cannot set GcsFaultToleranceOptions.{label} when backend is 'rocksdb'",
            )
    storage = options.storage or GcsStorage()
    if storage.claimName is not None and (
        storage.size is not None or storage.storageClassName is not None or storage.accessModes
    ):
        yield Problem(
            f"{path}.storage.claimName",
            "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, "
            "storageClassName, and accessModes",
        )
    if storage.deletionPolicy == "Retain" and storage.claimName is None:
        yield Problem(
            f"{path}.storage.deletionPolicy",
            "Retain is not supported: Metacontroller deletes every child with its RayCluster; "
            "create the PersistentVolumeClaim yourself and name it in storage.claimName",
        )
    if storage.size is not None:
        yield from _check_quantities(f"{path}.storage", {"size": storage.size}, negative=False)
    if storage.claimName is not None and not is_dns1123_subdomain(storage.claimName):
        yield Problem(f"{path}.storage.claimName", "must be a PersistentVolumeClaim name")
    pod_spec = spec.headGroupSpec.template.get("spec") or {}
    head = "spec.headGroupSpec.template.spec"
    for kind in ("containers", "initContainers"):
        for index, container in enumerate(_objects(pod_spec, kind)):
            where = f"{head}.{kind}[{index}]"
            for i, item in enumerate(_objects(container, "env")):
                if item.get("name") in GCS_STORAGE_ENV:
                    yield Problem(
                        f"{where}.env[{i}]",
                        f"cannot set {item['name']} with the 'rocksdb' backend - it is managed "
                        "by metaray",
                    )
            for i, mount in enumerate(_objects(container, "volumeMounts")):
                if mount.get("name") == GCS_STORAGE_VOLUME or mount.get("mountPath") == (
                    GCS_STORAGE_PATH
                ):
                    yield Problem(
                        f"{where}.volumeMounts[{i}]",
                        f"cannot mount a volume named {GCS_STORAGE_VOLUME} or at "
                        f"{GCS_STORAGE_PATH} with the 'rocksdb' backend - it is managed by metaray",
                    )
    for index, volume in enumerate(_objects(pod_spec, "volumes")):
        if volume.get("name") == GCS_STORAGE_VOLUME:
            yield Problem(
                f"{head}.volumes[{index}]",
                f"cannot add a volume named {GCS_STORAGE_VOLUME} with the 'rocksdb' backend - "
                "it is managed by metaray",
            )


def _check_annotated_fault_tolerance(spec: RayClusterSpec) -> Iterator[Problem]:
    """KubeRay v0.6 style: the user gives the head its Redis address."""
    containers = (spec.headGroupSpec.template.get("spec") or {}).get("containers") or [{}]
    ray = containers[0] if isinstance(containers[0], dict) else {}
    names = {item.get("name") for item in ray.get("env") or [] if isinstance(item, dict)}
    if "RAY_REDIS_ADDRESS" not in names and not ray.get("envFrom"):
        yield Problem(
            "spec.headGroupSpec.template.spec.containers[0].env",
            'must set RAY_REDIS_ADDRESS with the annotation ray.io/ft-enabled: "true" '
            "(or use spec.gcsFaultToleranceOptions)",
        )


def _check_group(path: str, group: WorkerGroupSpec) -> Iterator[Problem]:
    if not is_label_value(group.groupName) or not is_pod_name_segment(group.groupName):
        yield Problem(
            f"{path}.groupName",
            "must be usable as a label value and in pod names: at most 63 characters, "
            "dot-separated parts of lower-case letters, digits and '-', each starting and "
            "ending with a letter or digit",
        )
    for field in ("minReplicas", "maxReplicas", "replicas"):
        value = getattr(group, field)
        if value is not None and value < 0:
            yield Problem(f"{path}.{field}", "must not be negative")
    if group.numOfHosts < 1:
        yield Problem(f"{path}.numOfHosts", "must be at least 1")
    if group.minReplicas > group.maxReplicas:
        yield Problem(
            f"{path}.minReplicas",
            f"must not exceed maxReplicas ({group.minReplicas} > {group.maxReplicas})",
        )
    yield from _check_template(f"{path}.template", group.template)
    yield from _check_params(f"{path}.rayStartParams", group.rayStartParams)
    yield from _check_quantities(f"{path}.resources", group.resources, negative=False)
    yield from _check_words(f"{path}.resources", group.resources, "resource names")
    yield from _check_ray_labels(path, group.groupName, group.labels, group.rayStartParams)


# The parts of a pod template metaray reads or extends, and the JSON type each must have.
_POD_SPEC_FIELDS = {"containers": list, "initContainers": list, "volumes": list}
_CONTAINER_FIELDS = {
    "name": str,
    "image": str,
    "command": list,
    "args": list,
    "env": list,
    "ports": list,
    "volumeMounts": list,
    "resources": dict,
}
_TYPE_NAMES: dict[type, str] = {
    list: "a list",
    dict: "an object",
    str: "a string",
    int: "an integer",
}
_LISTS_OF_OBJECTS = (
    "containers",
    "initContainers",
    "volumes",
    "env",
    "ports",
    "volumeMounts",
    "from",
    "to",
)


def _check_template(path: str, template: JSONObject) -> Iterator[Problem]:
    metadata = template.get("metadata") or {}
    if not isinstance(metadata, dict):
        yield Problem(f"{path}.metadata", "must be an object")
        metadata = {}
    yield from _check_string_maps(f"{path}.metadata", metadata)
    pod_spec = template.get("spec") or {}
    if not isinstance(pod_spec, dict):
        yield Problem(f"{path}.spec", "must be an object")
        return
    yield from _check_fields(f"{path}.spec", pod_spec, _POD_SPEC_FIELDS)
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers:
        yield Problem(f"{path}.spec.containers", "must list at least one container (Ray's first)")
        return
    yield from _check_items(f"{path}.spec.volumes", pod_spec, "volumes", {"name": (str, True)})
    for kind in ("containers", "initContainers"):
        for index, container in enumerate(_objects(pod_spec, kind)):
            yield from _check_container(f"{path}.spec.{kind}[{index}]", container)


def _check_head_service(path: str, service: JSONObject) -> Iterator[Problem]:
    metadata = service.get("metadata") or {}
    if not isinstance(metadata, dict):
        yield Problem(f"{path}.metadata", "must be an object")
    else:
        yield from _check_string_maps(f"{path}.metadata", metadata)
        if not isinstance(metadata.get("name", ""), str):
            yield Problem(f"{path}.metadata.name", "must be a string")
    spec = service.get("spec") or {}
    if not isinstance(spec, dict):
        yield Problem(f"{path}.spec", "must be an object")
        return
    yield from _check_fields(f"{path}.spec", spec, {"ports": list, "type": str})
    shape = {"name": (str, False), "port": (int, True)}
    yield from _check_items(f"{path}.spec.ports", spec, "ports", shape)


def _check_string_maps(path: str, metadata: Mapping[str, Any]) -> Iterator[Problem]:
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            yield Problem(f"{path}.{key}", "must map strings to strings")


# The items of a container's lists that metaray reads: the fields it reads, their types, and
# whether Kubernetes requires them.
_Shape = dict[str, tuple[type, bool]]
_ITEM_SHAPES: dict[str, _Shape] = {
    "env": {"name": (str, True)},
    "ports": {"name": (str, False), "containerPort": (int, True)},
    "volumeMounts": {"name": (str, True), "mountPath": (str, True)},
}


def _check_container(path: str, container: JSONObject) -> Iterator[Problem]:
    yield from _check_fields(path, container, _CONTAINER_FIELDS)
    for key in ("name", "image"):
        if not container.get(key):
            yield Problem(f"{path}.{key}", "is required")
    for key in ("command", "args"):
        parts = container.get(key)
        if isinstance(parts, list) and not all(isinstance(part, str) for part in parts):
            yield Problem(f"{path}.{key}", "must be a list of strings")
    for key, shape in _ITEM_SHAPES.items():
        yield from _check_items(f"{path}.{key}", container, key, shape)
    resources = container.get("resources") or {}
    if isinstance(resources, dict):
        for kind in ("limits", "requests"):
            values = resources.get(kind) or {}
            if isinstance(values, dict):
                yield from _check_quantities(f"{path}.resources.{kind}", values)
            else:
                yield Problem(f"{path}.resources.{kind}", "must be an object")


def _check_fields(path: str, obj: JSONObject, types: Mapping[str, type]) -> Iterator[Problem]:
    for key, kind in types.items():
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, kind):
            yield Problem(f"{path}.{key}", f"must be {_TYPE_NAMES[kind]}")
        elif (
            isinstance(value, list)
            and key in _LISTS_OF_OBJECTS
            and not all(isinstance(item, dict) for item in value)
        ):
            yield Problem(f"{path}.{key}", "must be a list of objects")


def _objects(obj: Mapping[str, Any], key: str) -> list[JSONObject]:
    """The objects of a list field, or none when it is not a list (reported elsewhere)."""
    items = obj.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _check_items(path: str, obj: Mapping[str, Any], key: str, shape: _Shape) -> Iterator[Problem]:
    for index, item in enumerate(_objects(obj, key)):
        for field, (kind, required) in shape.items():
            value = item.get(field)
            if value is None:
                if required:
                    yield Problem(f"{path}[{index}].{field}", "is required")
            elif not isinstance(value, kind) or isinstance(value, bool):
                yield Problem(f"{path}[{index}].{field}", f"must be {_TYPE_NAMES[kind]}")


def _check_quantities(
    path: str, values: Mapping[str, Any], *, negative: bool = True
) -> Iterator[Problem]:
    for key, value in values.items():
        try:
            amount = parse_quantity(value)
        except (QuantityError, TypeError):
            yield Problem(f"{path}.{key}", f"{value!r} is not a Kubernetes quantity")
            continue
        if amount < 0 and not negative:
            yield Problem(f"{path}.{key}", f"{value!r} must not be negative")


_PORT_FLAGS = ("port", "dashboard-port", "dashboard-agent-listen-port", "metrics-export-port")


def _check_params(path: str, params: Mapping[str, str]) -> Iterator[Problem]:
    for key, value in params.items():
        if not _FLAG_NAME.match(key):
            yield Problem(f"{path}.{key}", "is not a ray start flag name")
        elif key in _PORT_FLAGS and not (
            value.isascii() and value.isdigit() and 0 < int(value) < 65536
        ):
            yield Problem(f"{path}.{key}", "must be a port number from 1 to 65535")
        elif (problem := shell_word_problem(value)) is not None:
            yield Problem(f"{path}.{key}", f"{problem} (it goes into the ray start command)")


def _check_ray_labels(
    path: str, group: str, labels: Mapping[str, str], params: Mapping[str, str]
) -> Iterator[Problem]:
    """A group's Ray labels are also pod labels, so they follow Kubernetes' label syntax (which
    keeps them shell-safe in ``--labels``); ``rayStartParams.labels`` would bypass that."""
    if "labels" in params:
        yield Problem(
            f"{path}.rayStartParams.labels",
            f"rayStartParams['labels'] is not supported for {group} group; "
            "please use the top-level Labels field instead",
        )
    for key, value in labels.items():
        if not is_label_key(key):
            yield Problem(
                f"{path}.labels",
                f"invalid label key for {group} group: {key!r}: must be a Kubernetes qualified "
                "name ([DNS-1123 subdomain/]name of at most 63 letters, digits, '-', '_', '.')",
            )
        elif not is_label_value(value):
            yield Problem(
                f"{path}.labels.{key}",
                f"invalid label value for {group} group: {value!r}: at most 63 letters, digits, "
                "'-', '_', '.', starting and ending with a letter or digit",
            )


def _check_words(path: str, values: Mapping[str, str], what: str) -> Iterator[Problem]:
    """Resource names are pasted into the ``ray start`` command (their amounts are quantities,
    rendered as numbers)."""
    for key in values:
        if not _PLAIN_WORD.match(key):
            yield Problem(
                f"{path}.{key}",
                f"{what} must be letters, digits and '-_./:' only ({key!r} is not)",
            )


# For the cores built on this one (RayJob): the same model rules and the same error paths.
SpecModel = _Model
pydantic_problems = _pydantic_problems
check_template = _check_template
check_identity = _check_identity
