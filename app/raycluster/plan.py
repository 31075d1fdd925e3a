"""The pod plan's parts, shared by single-host and multi-host group planning: what stays, what
is created (with which extra labels), what goes and why."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.core.desired import Removal
from app.core.observed import ObservedPod
from app.raycluster.cluster import Cluster
from app.raycluster.names import ordinals
from app.raycluster.reasons import SUSPENDED
from app.raycluster.rollout import outdated


@dataclass(frozen=True, slots=True)
class Creation:
    name: str
    group: str | None  # None for the head
    # Labels of this pod only, over the group's template (replica index, name, host index).
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    keep: tuple[str, ...] = ()
    create: tuple[Creation, ...] = ()
    remove: tuple[Removal, ...] = ()
    # workersToDelete entries that name no pod of their group: reported, never acted on.
    unknown_deletes: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Draft:
    keep: list[str] = field(default_factory=list)
    create: list[Creation] = field(default_factory=list)
    remove: list[Removal] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)


def drop(draft: Draft, name: str, group: str | None, why: str) -> None:
    draft.keep.remove(name)
    draft.remove.append(Removal(name, group, why))


def settle(
    pods: Iterable[ObservedPod], group: str | None, draft: Draft, *, suspended: bool
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


def surplus_order(
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
