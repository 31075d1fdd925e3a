"""KubeRay v1.7's checks of a RayJob spec that a CRD cannot make: its submission mode, numbers,
the one cluster it runs on, its deletion strategy, and what its embedded cluster allows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from app.raycluster.problems import Problem
from app.raycluster.spec import INT32_MAX, RayClusterSpec
from app.raycluster.template_checks import check_template
from app.rayjob.spec import (
    CLUSTER_SELECTOR_KEY,
    HTTP_MODE,
    INTERACTIVE_MODE,
    K8S_JOB_MODE,
    MANAGERS,
    SIDECAR_MODE,
    SUBMISSION_MODES,
    DeletionRule,
    DeletionStrategy,
    Policy,
    RayJobSpec,
    submitter_command,
)


def check_spec(spec: RayJobSpec) -> Iterator[Problem]:
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


def check_with_cluster(spec: RayJobSpec, cluster: RayClusterSpec) -> Iterator[Problem]:
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
