"""Which observed pods stay, which go and why, and which new pods to create.

The rules (Part A "Scaling"): per group the target is clamp(replicas ?? min, min, max) * hosts,
0 when suspended; Failed/Succeeded pods are replaced; ``workersToDelete`` pods go whatever the
target says; surplus pods go only when autoscaling is off; terminating pods are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.core.desired import Removal
from app.core.observed import ObservedPod
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.names import new_pod_names, ordinals
from app.raycluster.rollout import max_unavailable, outdated, recreating, template_hash
from app.raycluster.spec import WorkerGroupSpec

WORKERS_TO_DELETE = "listed in workersToDelete"
GROUP_REMOVED = "its worker group is no longer in the spec"
SUSPENDED = "the cluster or its group is suspended"
TEMPLATE_CHANGED = "its pod template changed (upgradeStrategy Recreate)"


@dataclass(frozen=True, slots=True)
class Creation:
    name: str
    group: str | None  # None for the head


@dataclass(frozen=True, slots=True)
class Plan:
    keep: tuple[str, ...] = ()
    create: tuple[Creation, ...] = ()
    remove: tuple[Removal, ...] = ()
    # workersToDelete entries that name no pod of their group: reported, never acted on.
    unknown_deletes: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class _Draft:
    keep: list[str] = field(default_factory=list)
    create: list[Creation] = field(default_factory=list)
    remove: list[Removal] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)


def plan_pods(cluster: Cluster, pods: Sequence[ObservedPod]) -> Plan:
    draft = _Draft(taken={pod.name for pod in pods} | _listed_for_deletion(cluster))
    ours = [pod for pod in pods if pod.cluster == cluster.name]
    # Not recognisably a Ray pod of this cluster: kept as it is, never counted nor dropped.
    draft.keep += [pod.name for pod in pods if pod.cluster != cluster.name]
    heads = [pod for pod in ours if pod.node_type == lbl.HEAD]
    head_current = _plan_head(cluster, heads, draft)
    by_group: dict[str, list[ObservedPod]] = {}
    for pod in ours:
        if pod.node_type == lbl.WORKER and pod.group is not None:
            by_group.setdefault(pod.group, []).append(pod)
        elif pod.node_type != lbl.HEAD:
            draft.keep.append(pod.name)
    for group in cluster.spec.workerGroupSpecs:
        pods_of_group = by_group.pop(group.groupName, [])
        _plan_group(cluster, group, pods_of_group, draft, roll=head_current)
    for name, orphans in sorted(by_group.items()):
        draft.remove += [Removal(pod.name, name, GROUP_REMOVED) for pod in orphans]
    return Plan(
        keep=tuple(sorted(draft.keep)),
        create=tuple(draft.create),
        remove=tuple(sorted(draft.remove, key=lambda r: r.name)),
        unknown_deletes=tuple(draft.unknown),
    )


def _listed_for_deletion(cluster: Cluster) -> set[str]:
    # A name still listed must never be reused: the new pod would be deleted at once.
    return {
        name
        for group in cluster.spec.workerGroupSpecs
        for name in group.scaleStrategy.workersToDelete
    }


def _plan_head(cluster: Cluster, heads: list[ObservedPod], draft: _Draft) -> bool:
    """Plan the head; True when it runs the current template and is ready (workers may roll)."""
    target = 0 if cluster.spec.suspend else 1
    live = _settle(heads, None, draft, suspended=target == 0)
    if recreating(cluster):
        current = template_hash(cluster, None)
        for pod in [p for p in live if outdated(p.metadata.annotations, current)]:
            _drop(draft, pod.name, None, TEMPLATE_CHANGED)
            live.remove(pod)
    if not live and target and not cluster.head_restart_disabled:
        _create(cluster, None, 1, draft)
        return False
    return bool(live) and all(pod.ready for pod in live)


def _plan_group(
    cluster: Cluster, group: WorkerGroupSpec, pods: list[ObservedPod], draft: _Draft, *, roll: bool
) -> None:
    name = group.groupName
    listed = set(group.scaleStrategy.workersToDelete)
    present = {pod.name for pod in pods}
    draft.unknown += [(name, victim) for victim in sorted(listed - present)]
    remaining = []
    for pod in pods:
        if pod.name in listed:
            draft.remove.append(Removal(pod.name, name, WORKERS_TO_DELETE))
        else:
            remaining.append(pod)
    suspended = cluster.spec.suspend or group.suspend
    target = 0 if cluster.spec.suspend else group.target
    live = _settle(remaining, name, draft, suspended=suspended)
    current = template_hash(cluster, group) if recreating(cluster) else None
    if len(live) > target and not cluster.autoscaling:
        surplus = _surplus_order(cluster, name, live, current)[: len(live) - target]
        why = f"surplus over the group's target of {target}"
        for pod in surplus:
            _drop(draft, pod.name, name, why)
            live.remove(pod)
    if current is not None and roll:
        for pod in _roll(cluster, live, target, current):
            _drop(draft, pod.name, name, TEMPLATE_CHANGED)
            live.remove(pod)
    if len(live) < target:
        _create(cluster, name, target - len(live), draft)


def _roll(
    cluster: Cluster, live: list[ObservedPod], target: int, current: str
) -> list[ObservedPod]:
    """Outdated pods to replace now: every unready one, and ready ones while the group stays
    at most ``maxUnavailable`` ready pods short of its target."""
    stale = [pod for pod in live if outdated(pod.metadata.annotations, current)]
    ready = sum(1 for pod in live if pod.ready)
    limit = max_unavailable(cluster)
    budget = min(limit, limit - (target - ready))
    chosen = []
    for pod in sorted(stale, key=lambda p: (p.ready, p.name)):
        if not pod.ready:
            chosen.append(pod)
        elif budget > 0:
            chosen.append(pod)
            budget -= 1
    return chosen


def _drop(draft: _Draft, name: str, group: str | None, why: str) -> None:
    draft.keep.remove(name)
    draft.remove.append(Removal(name, group, why))


def _settle(
    pods: Iterable[ObservedPod], group: str | None, draft: _Draft, *, suspended: bool
) -> list[ObservedPod]:
    """Drop finished pods (and every live one when suspended); keep the rest; return the live."""
    live = []
    for pod in pods:
        if pod.finished:
            draft.remove.append(Removal(pod.name, group, pod.finish_reason))
        elif pod.terminating:
            draft.keep.append(pod.name)
        elif suspended:
            draft.remove.append(Removal(pod.name, group, SUSPENDED))
        else:
            draft.keep.append(pod.name)
            live.append(pod)
    return live


def _create(cluster: Cluster, group: str | None, count: int, draft: _Draft) -> None:
    names = new_pod_names(cluster.name, cluster.uid, group, count, draft.taken)
    draft.taken.update(names)
    draft.create += [Creation(name, group) for name in names]


def _surplus_order(
    cluster: Cluster, group: str, live: list[ObservedPod], current: str | None
) -> list[ObservedPod]:
    """Pods to give up first: not yet running, then outdated ones (when rolling out a new
    template), then the newest (highest ordinal)."""
    known = ordinals(cluster.name, cluster.uid, group, [pod.name for pod in live])

    def key(pod: ObservedPod) -> tuple[bool, bool, float, str]:
        ordinal = known.get(pod.name, math.inf)
        stale = current is not None and outdated(pod.metadata.annotations, current)
        return (pod.running, not stale, -ordinal, pod.name)

    return sorted(live, key=key)
