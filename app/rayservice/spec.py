"""The RayService spec: its model (every KubeRay v1.7 field), its defaults, and KubeRay's checks
with KubeRay's messages (``validation.go``), plus the few metaray adds where it does less.

``rayClusterConfig`` stays a plain JSON object here and is checked by the RayCluster core under
the longest name a child cluster can have, like a RayJob's ``rayClusterSpec``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml
from pydantic import ValidationError

from app.raycluster.embedded import parse_embedded
from app.raycluster.names import is_dns1035_label
from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import (
    Int32,
    JSONObject,
    RayClusterSpec,
    SpecModel,
    pydantic_problems,
)
from app.raycluster.template_checks import check_head_service
from app.rayjob.spec import KUBERAY_MANAGER, MANAGERS

MAX_RAYSERVICE_NAME = 47  # KubeRay: 53 minus "-" and the 5-character suffix of its clusters
DEFAULT_DELETION_DELAY_SECONDS = 60
INITIALIZING_TIMEOUT = "ray.io/initializing-timeout"
_METADATA = "The RayService metadata is invalid: "
_SPEC = "The RayService spec is invalid: "


class Strategy(StrEnum):
    NEW_CLUSTER = "NewCluster"
    INCREMENTAL = "NewClusterWithIncrementalUpgrade"
    NONE = "None"


class ClusterUpgradeOptions(SpecModel):
    maxSurgePercent: Int32 = 100
    stepSizePercent: Int32 | None = None
    intervalSeconds: Int32 | None = None
    gatewayClassName: str | None = None


class RayServiceUpgradeStrategy(SpecModel):
    # Not an enum in KubeRay's schema: the controller checks it, with its own message.
    type: str | None = None
    clusterUpgradeOptions: ClusterUpgradeOptions | None = None


class RayServiceSpec(SpecModel):
    rayClusterConfig: JSONObject
    serveConfigV2: str | None = None
    upgradeStrategy: RayServiceUpgradeStrategy | None = None
    rayClusterDeletionDelaySeconds: Int32 | None = None
    serveService: JSONObject | None = None
    excludeHeadPodFromServeSvc: bool = False
    suspend: bool = False
    managedBy: str | None = None
    # Deprecated and unused since KubeRay v1.1: accepted so old manifests apply, then ignored.
    serviceUnhealthySecondThreshold: Int32 | None = None
    deploymentUnhealthySecondThreshold: Int32 | None = None


@dataclass(frozen=True, slots=True)
class RayService:
    """A valid RayService: identity, spec, and what its spec means once checked."""

    name: str
    namespace: str
    uid: str
    generation: int
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: RayServiceSpec
    cluster_spec: RayClusterSpec
    # serveConfigV2 parsed (None when unset): what is PUT, and compared with Ray's view.
    serve_config: JSONObject | None

    @property
    def strategy(self) -> Strategy:
        chosen = self.spec.upgradeStrategy
        return Strategy(chosen.type) if chosen and chosen.type else Strategy.NEW_CLUSTER

    @property
    def deletion_delay(self) -> int:
        delay = self.spec.rayClusterDeletionDelaySeconds
        return DEFAULT_DELETION_DELAY_SECONDS if delay is None else delay


def managed_elsewhere(parent: Mapping[str, Any]) -> bool:
    spec = parent.get("spec")
    manager = spec.get("managedBy") if isinstance(spec, Mapping) else None
    return manager is not None and manager != KUBERAY_MANAGER


def parse_rayservice(parent: Mapping[str, Any], gateway_api: bool = False) -> RayService:
    """Validate and default a RayService, or raise ``InvalidSpec`` naming every problem (a
    problem on ``metadata`` alone is KubeRay's InvalidRayServiceMetadata). ``gateway_api``:
    Gateway and HTTPRoute are registered as RayService children (the overlay is installed)."""
    problems = list(_check_metadata(parent))
    raw = parent.get("spec")
    if not isinstance(raw, Mapping):
        raise InvalidSpec([*problems, Problem("spec", "must be an object")])
    if "serveConfig" in raw:  # KubeRay v0.6's single-application config (ray.io/v1alpha1)
        problems.append(
            Problem(
                "spec.serveConfig",
                "the single-application serveConfig of KubeRay v0.6 is not supported: write "
                "the applications as serveConfigV2 (Ray Serve's multi-application config)",
            )
        )
        raw = {k: v for k, v in raw.items() if k != "serveConfig"}
    try:
        spec = RayServiceSpec.model_validate(raw)
    except ValidationError as error:
        raise InvalidSpec([*problems, *pydantic_problems(error)]) from None
    problems += _check_spec(spec, gateway_api)
    cluster = _cluster_spec(parent, spec, problems)
    serve_config = _serve_config(spec, problems)
    if cluster is not None:
        problems += _check_with_cluster(spec, cluster)
    if problems or cluster is None:
        raise InvalidSpec(problems)
    metadata = parent["metadata"]
    generation = metadata.get("generation")
    return RayService(
        name=metadata["name"],
        namespace=metadata.get("namespace") or "default",
        uid=metadata.get("uid") or "",
        generation=generation if type(generation) is int else 0,
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        spec=spec,
        cluster_spec=cluster,
        serve_config=serve_config,
    )


def _check_metadata(parent: Mapping[str, Any]) -> Iterator[Problem]:
    if parent.get("apiVersion") not in ("ray.io/v1", "ray.io/v1alpha1"):
        yield Problem("apiVersion", "must be one of ray.io/v1, ray.io/v1alpha1")
    metadata = parent.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    for key in ("uid", "namespace"):  # copied into names and children
        if not isinstance(metadata.get(key, ""), str):
            yield Problem(f"metadata.{key}", "must be a string")
    for key in ("labels", "annotations"):
        values = metadata.get(key) or {}
        if not isinstance(values, Mapping) or not all(isinstance(v, str) for v in values.values()):
            yield Problem(f"metadata.{key}", "must map strings to strings")
            return
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > MAX_RAYSERVICE_NAME:
        yield Problem(
            "metadata.name",
            f"{_METADATA}RayService name should be no more than {MAX_RAYSERVICE_NAME} characters",
        )
    elif not is_dns1035_label(name):
        yield Problem(
            "metadata.name", f"{_METADATA}RayService name should be a valid DNS1035 label"
        )
    timeout = (metadata.get("annotations") or {}).get(INITIALIZING_TIMEOUT)
    if timeout is not None and (problem := timeout_problem(timeout)) is not None:
        yield Problem(
            f"metadata.annotations[{INITIALIZING_TIMEOUT}]",
            f"{_METADATA}RayService annotations is invalid: {problem}",
        )


_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def timeout_seconds(value: str) -> float | None:
    """``ray.io/initializing-timeout`` in seconds: a Go duration or whole seconds."""
    if value.isascii() and value.isdigit():
        return float(int(value))
    if not _GO_DURATION.match(value):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value)
    return sum(float(amount) * _UNITS[unit] for amount, unit in parts)


def timeout_problem(value: str) -> str | None:
    """KubeRay's three messages: an integer that is not positive, a duration that is not
    positive, and anything else."""
    prefix = f"annotation {INITIALIZING_TIMEOUT}"
    if re.fullmatch(r"-?\d+", value):
        if int(value) > 0:
            return None
        return f"{prefix} must be a positive integer (seconds), got: {value}"
    seconds = timeout_seconds(value.removeprefix("-"))
    if seconds is None:
        return (
            f"{prefix} has invalid format: {value}. Expected Go duration format "
            "(e.g., '5m', '1h') or positive integer seconds"
        )
    if value.startswith("-") or seconds <= 0:
        return f"{prefix} must be a positive duration, got: {value}"
    return None


def _check_spec(spec: RayServiceSpec, gateway_api: bool) -> Iterator[Problem]:
    strategy = spec.upgradeStrategy.type if spec.upgradeStrategy else None
    if strategy is not None and strategy not in list(Strategy):
        yield Problem(
            "spec.upgradeStrategy.type",
            f"{_SPEC}Spec.UpgradeStrategy.Type value {strategy} is invalid, valid options are "
            "NewClusterWithIncrementalUpgrade, NewCluster, or None",
        )
    delay = spec.rayClusterDeletionDelaySeconds
    if delay is not None and delay < 0:
        yield Problem(
            "spec.rayClusterDeletionDelaySeconds",
            f"{_SPEC}Spec.RayClusterDeletionDelaySeconds should be a non-negative integer, "
            f"got {delay}",
        )
    if spec.managedBy is not None and spec.managedBy not in MANAGERS:
        yield Problem("spec.managedBy", f"must be one of {', '.join(MANAGERS)}")
    if spec.serveService is not None:  # copied into the serve Service: the shape it reads
        yield from check_head_service("spec.serveService", spec.serveService)
    if strategy == Strategy.INCREMENTAL:
        yield from _check_incremental(spec, gateway_api)


GATEWAY_API_MISSING = (
    "NewClusterWithIncrementalUpgrade needs the Gateway API: install the Gateway API CRDs and a "
    "Gateway controller, then metaray's config/gateway-api overlay (Helm: "
    "--set gatewayAPI.enabled=true), which registers Gateway and HTTPRoute as RayService "
    "children and sets METARAY_GATEWAY_API=on; or use NewCluster (blue/green)"
)


def _check_incremental(spec: RayServiceSpec, gateway_api: bool) -> Iterator[Problem]:
    """KubeRay's rules for the incremental strategy, then metaray's own: Metacontroller can
    only manage a Gateway and an HTTPRoute where the overlay registered them."""
    path = "spec.upgradeStrategy"
    if not spec.rayClusterConfig.get("enableInTreeAutoscaling"):
        yield Problem(
            path, f"{_SPEC}Ray Autoscaler is required for NewClusterWithIncrementalUpgrade"
        )
    options = spec.upgradeStrategy.clusterUpgradeOptions if spec.upgradeStrategy else None
    if options is None:
        yield Problem(
            path, f"{_SPEC}ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"
        )
    else:
        step = options.stepSizePercent
        if not 0 <= options.maxSurgePercent <= 100:
            yield Problem(path, f"{_SPEC}maxSurgePercent must be between 0 and 100")
        if step is None or not 0 <= step <= 100:
            yield Problem(path, f"{_SPEC}stepSizePercent must be between 0 and 100")
        elif step > options.maxSurgePercent:
            yield Problem(
                path, f"{_SPEC}stepSizePercent must be less than or equal to maxSurgePercent"
            )
        if options.intervalSeconds is None or options.intervalSeconds <= 0:
            yield Problem(path, f"{_SPEC}intervalSeconds must be greater than 0")
        if not options.gatewayClassName:
            yield Problem(
                path, f"{_SPEC}gatewayClassName is required for NewClusterWithIncrementalUpgrade"
            )
    if not gateway_api:
        yield Problem(f"{path}.type", GATEWAY_API_MISSING)


def _cluster_spec(
    parent: Mapping[str, Any], spec: RayServiceSpec, problems: list[Problem]
) -> RayClusterSpec | None:
    cluster, found = parse_embedded(parent, "spec.rayClusterConfig", spec.rayClusterConfig)
    problems += [Problem(p.path, f"{_SPEC}{p.path}: {p.message}") for p in found]
    return cluster


# libyaml's safe loader where PyYAML has it: a sync parses serveConfigV2 every time, and the
# pure-Python loader was half of a RayService sync's cost (bench/rayservice.py).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _serve_config(spec: RayServiceSpec, problems: list[Problem]) -> JSONObject | None:
    """serveConfigV2 as data: KubeRay parses it as YAML into a map (and no more)."""
    if spec.serveConfigV2 is None:
        return None
    try:
        value = yaml.load(spec.serveConfigV2, Loader=_SAFE_LOADER)
        json.dumps(value, allow_nan=False)
    except Exception as error:  # any parse failure is the user's input, reported as such
        problems.append(Problem("spec.serveConfigV2", f"cannot be parsed: {type(error).__name__}"))
        return None
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem("spec.serveConfigV2", "must be a YAML mapping"))
        return None
    apps = value.get("applications")
    if apps is not None and not (isinstance(apps, list) and all(isinstance(a, dict) for a in apps)):
        problems.append(Problem("spec.serveConfigV2", "applications must be a list of mappings"))
        return None
    return value


def _check_with_cluster(spec: RayServiceSpec, cluster: RayClusterSpec) -> Iterator[Problem]:
    path = "spec.rayClusterConfig"
    auth = cluster.authOptions
    if auth is not None and auth.enableK8sTokenAuth:
        yield Problem(
            f"{path}.authOptions",
            f"{_SPEC}K8s token auth mode is currently not supported for RayService",
        )
    head_service = cluster.headGroupSpec.headService or {}
    if (head_service.get("metadata") or {}).get("name"):
        yield Problem(
            f"{path}.headGroupSpec.headService.metadata.name",
            f"{_SPEC}spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not "
            "be set",
        )
    if cluster.upgradeStrategy is not None:
        yield Problem(
            f"{path}.upgradeStrategy",
            "a RayService's cluster is upgraded by the RayService's own upgradeStrategy",
        )
    if cluster.managedBy is not None and cluster.managedBy != KUBERAY_MANAGER:
        yield Problem(f"{path}.managedBy", "must be ray.io/kuberay-operator in a RayService")
