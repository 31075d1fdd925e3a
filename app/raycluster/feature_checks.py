"""The RayCluster checks of its features that a CRD schema cannot make: NetworkPolicies, the
history collector, TLS, token auth, GCS fault tolerance (Redis and the embedded store)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from app.raycluster.names import is_dns1123_label, is_dns1123_subdomain
from app.raycluster.problems import Problem
from app.raycluster.template_checks import check_fields, check_items, check_quantities, objects

if TYPE_CHECKING:
    from app.raycluster.spec import (
        AuthOptions,
        GcsFaultToleranceOptions,
        GcsStorage,
        HeadGroupSpec,
        HistoryServerOptions,
        JSONObject,
        NetworkPolicyGroup,
        NetworkPolicyOptions,
        NetworkPolicyRules,
        RayClusterSpec,
        WorkerGroupSpec,
    )

_RESOURCE_FLAGS = ("num-cpus", "num-gpus", "memory", "resources")


def check_features(parent: Mapping[str, Any], spec: RayClusterSpec) -> Iterator[Problem]:
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
    groups: list[tuple[str, str, HeadGroupSpec | WorkerGroupSpec]] = [
        ("spec.headGroupSpec", "head", spec.headGroupSpec)
    ]
    groups += [
        (f"spec.workerGroupSpecs[{i}]", g.groupName, g) for i, g in enumerate(spec.workerGroupSpecs)
    ]
    for path, name, group in groups:
        clash = sorted(set(_RESOURCE_FLAGS) & set(group.rayStartParams))
        if group.resources and clash:
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
                yield from check_fields(
                    f"{where}.{kind}[{index}]", rule, {"ports": list, peers: list}
                )
                yield from check_items(
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
    yield from check_items(
        f"{path}.collectorOptions.env", {"env": collector.env}, "env", {"name": (str, True)}
    )
    templates = [("spec.headGroupSpec.template", "head", spec.headGroupSpec.template)]
    templates += [
        (f"spec.workerGroupSpecs[{i}].template", f"worker group {g.groupName!r}", g.template)
        for i, g in enumerate(spec.workerGroupSpecs)
    ]
    for where, role, template in templates:
        for index, container in enumerate(objects(template.get("spec") or {}, "containers")):
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
            for index, container in enumerate(objects(pod_spec, kind)):
                yield from _check_tls_container(f"{path}.spec.{kind}[{index}]", where, container)
        for index, volume in enumerate(objects(pod_spec, "volumes")):
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
    for index, item in enumerate(objects(container, "env")):
        if item.get("name") in TLS_ENV:
            yield Problem(
                f"{path}.env[{index}]",
                f"cannot set {item['name']} environment variable in {where} when tlsOptions "
                f"is set - {_TLS_MANAGED}",
            )
    for index, mount in enumerate(objects(container, "volumeMounts")):
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
    if options.storage is not None:
        yield from _check_storage(path, options.storage)
    pod_spec = spec.headGroupSpec.template.get("spec") or {}
    head = "spec.headGroupSpec.template.spec"
    for kind in ("containers", "initContainers"):
        for index, container in enumerate(objects(pod_spec, kind)):
            where = f"{head}.{kind}[{index}]"
            for i, item in enumerate(objects(container, "env")):
                if item.get("name") in GCS_STORAGE_ENV:
                    yield Problem(
                        f"{where}.env[{i}]",
                        f"cannot set {item['name']} with the 'rocksdb' backend - it is managed "
                        "by metaray",
                    )
            for i, mount in enumerate(objects(container, "volumeMounts")):
                if mount.get("name") == GCS_STORAGE_VOLUME or mount.get("mountPath") == (
                    GCS_STORAGE_PATH
                ):
                    yield Problem(
                        f"{where}.volumeMounts[{i}]",
                        f"cannot mount a volume named {GCS_STORAGE_VOLUME} or at "
                        f"{GCS_STORAGE_PATH} with the 'rocksdb' backend - it is managed by metaray",
                    )
    for index, volume in enumerate(objects(pod_spec, "volumes")):
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


def _check_storage(path: str, storage: GcsStorage) -> Iterator[Problem]:
    # Every field's default is None or empty: an absent storage has nothing to check.
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
        yield from check_quantities(f"{path}.storage", {"size": storage.size}, negative=False)
    if storage.claimName is not None and not is_dns1123_subdomain(storage.claimName):
        yield Problem(f"{path}.storage.claimName", "must be a PersistentVolumeClaim name")
