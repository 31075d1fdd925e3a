"""Which observed pods stay, which go and why, and which new pods to create.

The rules (Part A "Scaling"): per group the target is clamp(replicas ?? min, min, max) * hosts,
0 when suspended; Failed/Succeeded pods are replaced; ``workersToDelete`` pods go whatever the
target says; surplus pods go only when autoscaling is off; terminating pods are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.names import new_pod_names, ordinals
from app.raycluster.observed import ObservedPod

WORKERS_TO_DELETE = "listed in workersToDelete"
GROUP_REMOVED = "its worker group is no longer in the spec"
SUSPENDED = "the cluster or its group is suspended"


@dataclass(frozen=True, slots=True)
class Removal:
    name: str
    group: str | None  # None for the head
    why: str


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
    heads = [pod for pod in pods if pod.node_type == lbl.HEAD]
    _plan_head(cluster, heads, draft)
    by_group: dict[str, list[ObservedPod]] = {}
    for pod in pods:
        if pod.node_type == lbl.WORKER and pod.group is not None:
            by_group.setdefault(pod.group, []).append(pod)
        elif pod.node_type != lbl.HEAD:
            draft.keep.append(pod.name)  # not recognisably ours to manage: never dropped
    for group in cluster.spec.workerGroupSpecs:
        _plan_group(cluster, group.groupName, by_group.pop(group.groupName, []), draft)
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


def _plan_head(cluster: Cluster, heads: list[ObservedPod], draft: _Draft) -> None:
    target = 0 if cluster.spec.suspend else 1
    live = _settle(heads, None, draft, suspended=target == 0)
    if not live and target:
        _create(cluster, None, 1, draft)


def _plan_group(cluster: Cluster, name: str, pods: list[ObservedPod], draft: _Draft) -> None:
    group = cluster.group(name)
    assert group is not None
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
    if len(live) < target:
        _create(cluster, name, target - len(live), draft)
    elif len(live) > target and not cluster.autoscaling:
        surplus = _surplus_order(cluster, name, live)[: len(live) - target]
        why = f"surplus over the group's target of {target}"
        for pod in surplus:
            draft.keep.remove(pod.name)
            draft.remove.append(Removal(pod.name, name, why))


def _settle(
    pods: Iterable[ObservedPod], group: str | None, draft: _Draft, *, suspended: bool
) -> list[ObservedPod]:
    """Drop finished pods (and every live one when suspended); keep the rest; return the live."""
    live = []
    for pod in pods:
        if pod.finished:
            draft.remove.append(Removal(pod.name, group, f"its phase is {pod.status.phase}"))
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


def _surplus_order(cluster: Cluster, group: str, live: list[ObservedPod]) -> list[ObservedPod]:
    """Pods to give up first: not yet running, then the newest (highest ordinal)."""
    known = ordinals(cluster.name, cluster.uid, group, [pod.name for pod in live])

    def key(pod: ObservedPod) -> tuple[bool, float, str]:
        ordinal = known.get(pod.name, math.inf)
        return (pod.running, -ordinal, pod.name)

    return sorted(live, key=key)
