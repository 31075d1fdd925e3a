"""Replica indexing, and whole-replica planning for multi-host groups (``numOfHosts > 1``).

As KubeRay v1.7 does (its RayMultiHostIndexing gate, on by default): every new worker gets
``ray.io/worker-group-replica-index``, the lowest index no live pod of its group holds; in a
multi-host group one replica is ``numOfHosts`` pods that share a replica name and index and carry
host indices 0..n-1 (GKE's TPU webhook derives TPU_WORKER_ID and the slice's hostnames from
them). A replica lives and goes as a whole: a pod of it listed in ``workersToDelete``, finished
or terminating takes its live mates with it, scale-down removes whole replicas, and replacements
are whole new replicas.

A pod of a replica that is merely absent is asked for again under its deterministic name (a
function of replica and host index): metaray cannot tell a deleted pod from one its observed
children do not show yet, and tearing the replica down would churn a replica just created.
Pods created before indexing (no replica name) are kept and counted one by one, and are the first
to go on scale-down, so a group converges to whole replicas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from app.core.desired import Removal
from app.core.observed import ObservedPod
from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.names import member_name, replica_name
from app.raycluster.plan import (
    Creation,
    Draft,
    drop,
    settle,
    surplus_order,
)
from app.raycluster.reasons import TEMPLATE_CHANGED, WORKERS_TO_DELETE
from app.raycluster.rollout import max_unavailable, outdated, recreating, template_hash
from app.raycluster.spec import WorkerGroupSpec


def index_of(pod: ObservedPod) -> int | None:
    value = pod.metadata.labels.get(lbl.REPLICA_INDEX, "")
    return int(value) if value.isdigit() else None


def free_indices(live: Iterable[ObservedPod], count: int) -> list[int]:
    """The ``count`` lowest replica indices that no pod of ``live`` holds."""
    used = {index for pod in live if (index := index_of(pod)) is not None}
    free: list[int] = []
    candidate = 0
    while len(free) < count:
        if candidate not in used:
            free.append(candidate)
        candidate += 1
    return free


def _replica(pod: ObservedPod) -> str | None:
    return pod.metadata.labels.get(lbl.REPLICA_NAME) or None


def _host(pod: ObservedPod) -> int | None:
    value = pod.metadata.labels.get(lbl.HOST_INDEX, "")
    return int(value) if value.isdigit() else None


def plan_multihost(
    cluster: Cluster, group: WorkerGroupSpec, pods: list[ObservedPod], draft: Draft, *, roll: bool
) -> None:
    name, hosts = group.groupName, group.numOfHosts
    listed = set(group.scaleStrategy.workersToDelete)
    draft.unknown += [(name, victim) for victim in sorted(listed - {pod.name for pod in pods})]
    broken: dict[str, str] = {}
    remaining = []
    for pod in pods:
        replica = _replica(pod)
        if pod.name in listed:
            draft.remove.append(Removal(pod.name, name, WORKERS_TO_DELETE))
            if replica is not None:
                broken.setdefault(
                    replica,
                    f"{pod.name} of its multi-host replica {replica} is listed in workersToDelete",
                )
        else:
            remaining.append(pod)
    live = settle(remaining, name, draft, suspended=cluster.spec.suspend or group.suspend)
    for pod in remaining:
        replica = _replica(pod)
        if replica is not None and (pod.finished or pod.terminating):
            broken.setdefault(replica, f"its multi-host replica {replica} lost {pod.name}")
    for pod in [p for p in live if _replica(p) in broken]:
        drop(draft, pod.name, name, broken[str(_replica(pod))])
        live.remove(pod)
    legacy = [pod for pod in live if _replica(pod) is None or _host(pod) is None]
    replicas: dict[str, list[ObservedPod]] = {}
    for pod in live:
        if pod not in legacy:
            replicas.setdefault(str(_replica(pod)), []).append(pod)
    target = 0 if cluster.spec.suspend else group.target
    current = template_hash(cluster, group) if recreating(cluster) else None
    units: list[list[ObservedPod]] = [[pod] for pod in legacy] + list(replicas.values())
    slots = len(legacy) + hosts * len(replicas)
    if slots > target and not cluster.autoscaling:
        why = f"surplus over the group's target of {target}"
        for unit in _surplus(cluster, name, legacy, replicas, current, slots - target, hosts):
            for pod in unit:
                drop(draft, pod.name, name, why)
            units.remove(unit)
    if current is not None and roll:
        for unit in _roll(units, target, current, max_unavailable(cluster)):
            for pod in unit:
                drop(draft, pod.name, name, TEMPLATE_CHANGED)
            units.remove(unit)
    kept = [unit for unit in units if _replica(unit[0]) is not None and _host(unit[0]) is not None]
    for unit in kept:
        _fill(cluster, group, unit, draft)
    slots = sum(1 for unit in units if len(unit) == 1 and unit not in kept) + hosts * len(kept)
    if slots < target:
        count = math.ceil((target - slots) / hosts)
        _new_replicas(cluster, group, pods, [p for u in units for p in u], count, draft)


def _surplus(
    cluster: Cluster,
    group: str,
    legacy: list[ObservedPod],
    replicas: dict[str, list[ObservedPod]],
    current: str | None,
    surplus: int,
    hosts: int,
) -> list[list[ObservedPod]]:
    """Unindexed pods first, one by one; then whole replicas (not all running, outdated, the
    highest index first), never leaving the group short of its target."""
    chosen = [[pod] for pod in surplus_order(cluster, group, legacy, current)[:surplus]]
    rest = surplus - len(chosen)

    def key(unit: list[ObservedPod]) -> tuple[bool, bool, int, str]:
        stale = current is not None and any(outdated(p.metadata.annotations, current) for p in unit)
        running = all(pod.running for pod in unit)
        return (running, not stale, -(index_of(unit[0]) or 0), unit[0].name)

    ordered = sorted(replicas.values(), key=key)
    return chosen + ordered[: rest // hosts]


def _roll(
    units: list[list[ObservedPod]], target: int, current: str, limit: int
) -> list[list[ObservedPod]]:
    """Outdated units to replace now: every one not all ready, and ready ones one at a time
    while the group stays at most ``maxUnavailable`` ready pods short of its target."""
    stale = [u for u in units if any(outdated(p.metadata.annotations, current) for p in u)]
    ready = sum(1 for unit in units for pod in unit if pod.ready)
    budget = min(limit, limit - (target - ready))
    chosen = []
    for unit in sorted(stale, key=lambda u: (all(p.ready for p in u), u[0].name)):
        if not all(pod.ready for pod in unit):
            chosen.append(unit)
        elif budget > 0:
            chosen.append(unit)
            budget -= len(unit)
    return chosen


def _labels(replica: str, index: int, host: int) -> tuple[tuple[str, str], ...]:
    return (
        (lbl.REPLICA_INDEX, str(index)),
        (lbl.REPLICA_NAME, replica),
        (lbl.HOST_INDEX, str(host)),
    )


def _fill(
    cluster: Cluster, group: WorkerGroupSpec, unit: Sequence[ObservedPod], draft: Draft
) -> None:
    """Ask again for the members of a live replica that are not observed."""
    replica, index = str(_replica(unit[0])), index_of(unit[0]) or 0
    present = {_host(pod) for pod in unit}
    for host in range(group.numOfHosts):
        pod = member_name(cluster.name, cluster.uid, group.groupName, replica, host)
        if host not in present and pod not in draft.taken:
            draft.taken.add(pod)
            draft.create.append(Creation(pod, group.groupName, _labels(replica, index, host)))


def _new_replicas(
    cluster: Cluster,
    group: WorkerGroupSpec,
    observed: Sequence[ObservedPod],
    live: Sequence[ObservedPod],
    count: int,
    draft: Draft,
) -> None:
    """``count`` whole replicas: the lowest replica ordinals whose name no observed pod carries
    and whose pods' names are free, and the lowest indices no live replica holds."""
    seen = {_replica(pod) for pod in observed}
    indices = free_indices(live, count)
    ordinal = 0
    for index in indices:
        while True:
            replica = replica_name(cluster.uid, group.groupName, ordinal)
            ordinal += 1
            members = [
                member_name(cluster.name, cluster.uid, group.groupName, replica, host)
                for host in range(group.numOfHosts)
            ]
            if replica not in seen and not draft.taken.intersection(members):
                break
        draft.taken.update(members)
        draft.create += [
            Creation(pod, group.groupName, _labels(replica, index, host))
            for host, pod in enumerate(members)
        ]
