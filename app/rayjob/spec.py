"""The RayJob spec: its model, its defaults, and KubeRay v1.7's checks that a CRD cannot make.

The embedded ``rayClusterSpec`` stays a plain JSON object here: it is checked by the RayCluster
core (``parse_spec``) under the name the cluster will have, and copied into the RayCluster child.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError

from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import (
    INT32_MAX,
    Int32,
    JSONObject,
    RayClusterSpec,
    SpecModel,
    check_identity,
    parse_spec,
    pydantic_problems,
)
from app.raycluster.template_checks import check_template

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


def parse_rayjob(parent: Mapping[str, Any], dashboard: bool = True) -> RayJob:
    """Validate and default a RayJob object, or raise ``InvalidSpec`` naming every problem.

    ``dashboard`` says whether metaray reads Ray dashboards: HTTPMode and InteractiveMode need
    it."""
    problems = list(check_identity(parent, MAX_RAYJOB_NAME))
    raw = parent.get("spec")
    if not isinstance(raw, Mapping):
        raise InvalidSpec([*problems, Problem("spec", "must be an object")])
    try:
        spec = RayJobSpec.model_validate(raw)
    except ValidationError as error:
        raise InvalidSpec([*problems, *pydantic_problems(error)]) from None
    problems += _check_spec(spec)
    if spec.submissionMode in (HTTP_MODE, INTERACTIVE_MODE) and not dashboard:
        problems.append(
            Problem(
                "spec.submissionMode",
                f"{spec.submissionMode} needs the Ray dashboard, which this metaray does not "
                f"read (METARAY_DASHBOARD=off): use {K8S_JOB_MODE} or {SIDECAR_MODE}",
            )
        )
    runtime_env = _runtime_env(spec, problems)
    resources = _entrypoint_resources(spec, problems)
    cluster_spec = _cluster_spec(parent, spec, problems)
    if cluster_spec is not None:
        problems += _check_with_cluster(spec, cluster_spec)
    if problems:
        raise InvalidSpec(problems)
    metadata = parent["metadata"]
    return RayJob(
        name=metadata["name"],
        namespace=metadata.get("namespace") or "default",
        uid=metadata.get("uid") or "",
        generation=_generation(metadata),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        spec=spec,
        cluster_spec=cluster_spec,
        runtime_env=runtime_env,
        entrypoint_resources=resources,
    )


def _generation(metadata: Mapping[str, Any]) -> int:
    generation = metadata.get("generation")
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else 0


def _check_spec(spec: RayJobSpec) -> Iterator[Problem]:
    yield from _check_mode(spec)
    yield from _check_numbers(spec)
    yield from _check_source(spec)
    if spec.suspend and not spec.shutdownAfterJobFinishes:
        yield Problem("spec.suspend", "requires spec.shutdownAfterJobFinishes: true")
    if spec.ttlSecondsAfterFinished > 0 and not spec.shutdownAfterJobFinishes:
        yield Problem(
            "spec.ttlSecondsAfterFinished", "requires spec.shutdownAfterJobFinishes: true"
        )
    if spec.deletionStrategy is not None:
        yield from _check_deletion(spec, spec.deletionStrategy)
    if spec.managedBy is not None and spec.managedBy not in MANAGERS:
        yield Problem("spec.managedBy", f"must be one of {', '.join(MANAGERS)}")
    if spec.submitterPodTemplate is not None:
        yield from check_template("spec.submitterPodTemplate", spec.submitterPodTemplate)
    if spec.entrypoint is not None and "\0" in spec.entrypoint:
        yield Problem("spec.entrypoint", "must not contain a NUL character")


def _check_mode(spec: RayJobSpec) -> Iterator[Problem]:
    mode = spec.submissionMode
    if mode not in SUBMISSION_MODES:
        yield Problem("spec.submissionMode", f"must be one of {', '.join(SUBMISSION_MODES)}")
        return
    if mode == INTERACTIVE_MODE and spec.backoffLimit > 0:
        yield Problem("spec.backoffLimit", f"must be 0 in {INTERACTIVE_MODE}")
    if mode == SIDECAR_MODE:
        for field in ("submitterPodTemplate", "submitterConfig"):
            if getattr(spec, field) is not None:
                yield Problem(f"spec.{field}", f"cannot be used with {SIDECAR_MODE}")
    if not (spec.entrypoint or "").strip() and _metaray_submits(spec):
        yield Problem("spec.entrypoint", f"is required in {mode}")


def _metaray_submits(spec: RayJobSpec) -> bool:
    """Whether metaray's submitter sends the entrypoint (a user's own submitter command
    may carry it in its arguments instead)."""
    if spec.submissionMode in (SIDECAR_MODE, HTTP_MODE):
        return True
    if spec.submissionMode == INTERACTIVE_MODE:
        return False  # the user submits, then sets spec.jobId
    return not submitter_command(spec.submitterPodTemplate)


def submitter_command(template: Mapping[str, Any] | None) -> Any:
    """The command of a submitter template's first container, where it has one."""
    pod_spec = (template or {}).get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, Mapping) else None
    first = containers[0] if isinstance(containers, list) and containers else None
    return first.get("command") if isinstance(first, Mapping) else None


def _check_numbers(spec: RayJobSpec) -> Iterator[Problem]:
    for field in ("activeDeadlineSeconds", "preRunningDeadlineSeconds"):
        value = getattr(spec, field)
        if value is not None and value <= 0:
            yield Problem(f"spec.{field}", "must be greater than 0")
    for field in ("backoffLimit", "ttlSecondsAfterFinished"):
        if getattr(spec, field) < 0:
            yield Problem(f"spec.{field}", "must not be negative")
    config = spec.submitterConfig
    if config is not None and config.backoffLimit is not None and config.backoffLimit < 0:
        yield Problem("spec.submitterConfig.backoffLimit", "must not be negative")
    for field in ("entrypointNumCpus", "entrypointNumGpus"):
        value = getattr(spec, field)
        if value is not None and not 0 <= value < INT32_MAX:
            yield Problem(f"spec.{field}", "must be a non-negative number")


def _check_source(spec: RayJobSpec) -> Iterator[Problem]:
    """Exactly one of a cluster of its own or a user's cluster, and what each allows."""
    selector = spec.clusterSelector
    if spec.rayClusterSpec is None and not selector:
        yield Problem("spec", "must set one of rayClusterSpec and clusterSelector")
        return
    if spec.rayClusterSpec is not None and selector:
        yield Problem("spec.clusterSelector", "cannot be combined with spec.rayClusterSpec")
        return
    if spec.rayClusterSpec is not None:
        return
    if not selector.get(CLUSTER_SELECTOR_KEY):
        yield Problem(
            "spec.clusterSelector", f"must name the RayCluster under {CLUSTER_SELECTOR_KEY!r}"
        )
    if spec.suspend:
        yield Problem("spec.suspend", "cannot be used with spec.clusterSelector")
    if spec.backoffLimit > 0:
        yield Problem("spec.backoffLimit", "must be 0 with spec.clusterSelector")
    if spec.submissionMode == SIDECAR_MODE:
        yield Problem("spec.submissionMode", f"{SIDECAR_MODE} needs a cluster of its own")
    yield from _check_selector_deletion(spec)


def _check_selector_deletion(spec: RayJobSpec) -> Iterator[Problem]:
    for path, policy in _policies(spec.deletionStrategy):
        if policy in ("DeleteCluster", "DeleteWorkers"):
            yield Problem(path, f"{policy} cannot be used with spec.clusterSelector")


def _policies(strategy: DeletionStrategy | None) -> Iterator[tuple[str, Policy]]:
    if strategy is None:
        return
    base = "spec.deletionStrategy"
    for field in ("onSuccess", "onFailure"):
        chosen = getattr(strategy, field)
        if chosen is not None:
            yield f"{base}.{field}.policy", chosen.policy
    for index, rule in enumerate(strategy.deletionRules or []):
        yield f"{base}.deletionRules[{index}].policy", rule.policy


def _check_deletion(spec: RayJobSpec, strategy: DeletionStrategy) -> Iterator[Problem]:
    base = "spec.deletionStrategy"
    legacy = strategy.onSuccess is not None or strategy.onFailure is not None
    if legacy and strategy.deletionRules is not None:
        yield Problem(base, "cannot combine onSuccess/onFailure with deletionRules")
        return
    if legacy:
        if strategy.onSuccess is None or strategy.onFailure is None:
            yield Problem(base, "must set both onSuccess and onFailure")
        chosen = [p for p in (strategy.onSuccess, strategy.onFailure) if p is not None]
        if spec.shutdownAfterJobFinishes and any(p.policy == "DeleteNone" for p in chosen):
            yield Problem(base, "DeleteNone contradicts spec.shutdownAfterJobFinishes: true")
        return
    if not strategy.deletionRules:
        yield Problem(f"{base}.deletionRules", "must list at least one rule")
        return
    if spec.shutdownAfterJobFinishes:
        yield Problem(
            f"{base}.deletionRules", "cannot be combined with spec.shutdownAfterJobFinishes"
        )
    yield from _check_rules(strategy.deletionRules)


def _check_rules(rules: list[DeletionRule]) -> Iterator[Problem]:
    base = "spec.deletionStrategy.deletionRules"
    seen: set[tuple[str, str]] = set()
    ttls: dict[str, dict[str, int]] = {}
    for index, rule in enumerate(rules):
        path = f"{base}[{index}]"
        condition = rule.condition
        if (condition.jobStatus is None) == (condition.jobDeploymentStatus is None):
            yield Problem(
                f"{path}.condition", "must set exactly one of jobStatus and jobDeploymentStatus"
            )
            continue
        if condition.ttlSeconds < 0:
            yield Problem(f"{path}.condition.ttlSeconds", "must not be negative")
        when = condition.jobStatus or f"deployment {condition.jobDeploymentStatus}"
        if (when, rule.policy) in seen:
            yield Problem(path, f"repeats the rule {rule.policy} on {when}")
        seen.add((when, rule.policy))
        ttls.setdefault(when, {})[rule.policy] = condition.ttlSeconds
    for when, by_policy in ttls.items():
        ordered = [p for p in ("DeleteWorkers", "DeleteCluster", "DeleteSelf") if p in by_policy]
        for earlier, later in itertools.pairwise(ordered):
            if by_policy[earlier] > by_policy[later]:
                yield Problem(
                    base,
                    f"on {when}, {earlier} (ttlSeconds {by_policy[earlier]}) must not come "
                    f"after {later} (ttlSeconds {by_policy[later]})",
                )


def _runtime_env(spec: RayJobSpec, problems: list[Problem]) -> JSONObject | None:
    if spec.runtimeEnvYAML is not None and spec.runtimeEnv is not None:
        problems.append(Problem("spec.runtimeEnv", "cannot be combined with runtimeEnvYAML"))
        return None
    if spec.runtimeEnvYAML is not None:
        return _parsed_mapping("spec.runtimeEnvYAML", spec.runtimeEnvYAML, _yaml, problems)
    if spec.runtimeEnv is not None:
        return _parsed_mapping("spec.runtimeEnv", spec.runtimeEnv, _base64_json, problems)
    return None


def _yaml(text: str) -> Any:
    import yaml  # only for a runtimeEnvYAML: the serving process need not hold PyYAML otherwise

    return yaml.safe_load(text)


def _base64_json(text: str) -> Any:
    return json.loads(base64.b64decode(text, validate=True))


def _parsed_mapping(path: str, text: str, parse: Any, problems: list[Problem]) -> JSONObject | None:
    try:
        value = parse(text)
    except Exception as error:  # any parse failure is the user's input, reported as such
        problems.append(Problem(path, f"cannot be parsed: {type(error).__name__}"))
        return None
    if value is None:
        return None
    if not isinstance(value, dict) or not _is_json(value):
        problems.append(Problem(path, "must describe a mapping of JSON values"))
        return None
    return value


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _entrypoint_resources(spec: RayJobSpec, problems: list[Problem]) -> dict[str, float] | None:
    if spec.entrypointResources is None:
        return None
    path = "spec.entrypointResources"
    try:
        value = json.loads(spec.entrypointResources)
    except ValueError:
        problems.append(Problem(path, "must be a JSON object"))
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < INT32_MAX
        for v in value.values()
    ):
        problems.append(Problem(path, "must map resource names to non-negative numbers"))
        return None
    return {str(k): float(v) for k, v in value.items()}


def _cluster_spec(
    parent: Mapping[str, Any], spec: RayJobSpec, problems: list[Problem]
) -> RayClusterSpec | None:
    """The embedded cluster spec, checked by the RayCluster core as the cluster it becomes."""
    if spec.rayClusterSpec is None:
        return None
    metadata = parent.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        # The longest name the cluster can have: ``<rayjob>-<5 characters>``.
        "metadata": {"name": f"{name}-xxxxx" if isinstance(name, str) else "invalid"},
        "spec": spec.rayClusterSpec,
    }
    try:
        return parse_spec(cluster)
    except InvalidSpec as invalid:
        problems += [
            Problem(_nested(p.path), p.message)
            for p in invalid.problems
            if p.path != "metadata.name"  # the RayJob's own name rule says it better
        ]
        return None


def _nested(path: str) -> str:
    """A RayCluster problem's path, as a path in the RayJob."""
    if path == "spec" or path.startswith(("spec.", "spec[")):
        return "spec.rayClusterSpec" + path[len("spec") :]
    return f"spec.rayClusterSpec ({path})"


def _check_with_cluster(spec: RayJobSpec, cluster: RayClusterSpec) -> Iterator[Problem]:
    auth = cluster.authOptions
    if auth is not None and auth.mode == "token":
        path = "spec.rayClusterSpec.authOptions"
        if auth.enableK8sTokenAuth:
            yield Problem(
                f"{path}.enableK8sTokenAuth",
                "K8s token auth mode is currently not supported for RayJob",
            )
        if spec.submissionMode in (HTTP_MODE, INTERACTIVE_MODE):
            yield Problem(
                path,
                f"token auth cannot be used with {spec.submissionMode} yet: metaray reads the "
                f"dashboard without the cluster's token (use {K8S_JOB_MODE} or {SIDECAR_MODE})",
            )
    if spec.submissionMode == SIDECAR_MODE:
        policy = (cluster.headGroupSpec.template.get("spec") or {}).get("restartPolicy")
        if policy not in (None, "Never"):
            yield Problem(
                "spec.rayClusterSpec.headGroupSpec.template.spec.restartPolicy",
                f"must be Never (or unset) in {SIDECAR_MODE}",
            )
    if cluster.enableInTreeAutoscaling:
        for path, policy in _policies(spec.deletionStrategy):
            if policy == "DeleteWorkers":
                yield Problem(path, "DeleteWorkers cannot be used with in-tree autoscaling")
