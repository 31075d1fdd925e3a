"""Which observed pods stay, which go and why, and which new pods to create.

The rules (Part A "Scaling"): per group the target is clamp(replicas ?? min, min, max) * hosts,
0 when suspended; Failed/Succeeded pods are replaced; ``workersToDelete`` pods go whatever the
target says; surplus pods go only when autoscaling is off; terminating pods are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.desired import Removal
from app.core.observed import ObservedPod
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.multihost import free_indices, plan_multihost
from app.raycluster.names import new_pod_names
from app.raycluster.plan import (
    Creation,
    Draft,
    Plan,
    drop,
    settle,
    surplus_order,
)
from app.raycluster.reasons import GROUP_REMOVED, SUSPENDED, TEMPLATE_CHANGED, WORKERS_TO_DELETE
from app.raycluster.rollout import max_unavailable, outdated, recreating, template_hash
from app.raycluster.spec import WorkerGroupSpec

__all__ = [
    "GROUP_REMOVED",
    "SUSPENDED",
    "TEMPLATE_CHANGED",
    "WORKERS_TO_DELETE",
    "Creation",
    "Plan",
    "Removal",
    "plan_pods",
]


def plan_pods(cluster: Cluster, pods: Sequence[ObservedPod]) -> Plan:
    draft = Draft(taken={pod.name for pod in pods} | _listed_for_deletion(cluster))
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
        if group.numOfHosts > 1:
            plan_multihost(cluster, group, pods_of_group, draft, roll=head_current)
        else:
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


def _plan_head(cluster: Cluster, heads: list[ObservedPod], draft: Draft) -> bool:
    """Plan the head; True when it runs the current template and is ready (workers may roll)."""
    target = 0 if cluster.spec.suspend else 1
    live = settle(heads, None, draft, suspended=target == 0)
    if recreating(cluster):
        current = template_hash(cluster, None)
        for pod in [p for p in live if outdated(p.metadata.annotations, current)]:
            drop(draft, pod.name, None, TEMPLATE_CHANGED)
            live.remove(pod)
    if not live and target and not cluster.head_restart_disabled:
        _create(cluster, None, 1, draft)
        return False
    return bool(live) and all(pod.ready for pod in live)


def _plan_group(
    cluster: Cluster, group: WorkerGroupSpec, pods: list[ObservedPod], draft: Draft, *, roll: bool
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
    live = settle(remaining, name, draft, suspended=suspended)
    current = template_hash(cluster, group) if recreating(cluster) else None
    if len(live) > target and not cluster.autoscaling:
        surplus = surplus_order(cluster, name, live, current)[: len(live) - target]
        why = f"surplus over the group's target of {target}"
        for pod in surplus:
            drop(draft, pod.name, name, why)
            live.remove(pod)
    if current is not None and roll:
        for pod in _roll(cluster, live, target, current):
            drop(draft, pod.name, name, TEMPLATE_CHANGED)
            live.remove(pod)
    if len(live) < target:
        _create(cluster, name, target - len(live), draft, live)


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


def _create(
    cluster: Cluster, group: str | None, count: int, draft: Draft, live: Sequence[ObservedPod] = ()
) -> None:
    """New pods; a worker gets the lowest replica indices its live group mates do not hold."""
    names = new_pod_names(cluster.name, cluster.uid, group, count, draft.taken)
    draft.taken.update(names)
    if group is None:
        draft.create += [Creation(name, group) for name in names]
        return
    indices = free_indices(live, count)
    draft.create += [
        Creation(name, group, ((lbl.REPLICA_INDEX, str(index)),))
        for name, index in zip(names, indices, strict=True)
    ]
