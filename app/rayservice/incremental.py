"""The incremental upgrade (``NewClusterWithIncrementalUpgrade``), as KubeRay steps it: traffic
moves to the pending cluster by ``stepSizePercent`` of the HTTPRoute's weight every
``intervalSeconds``, never past the capacity Ray runs there; Serve's ``target_capacity`` moves by
``maxSurgePercent`` (the pending cluster's up, then the active one's down) once the traffic has
caught up and the Gateway and route are accepted; the pending cluster is promoted when the
active one runs at 0 % and the pending one takes 100 % of the traffic. A goal that leaves the
pending cluster's spec rolls back the same way, traffic and capacity back to the active cluster,
and the pending cluster is dropped once none of either is left there.

Replay-safe: the traffic is read from the route metaray last asked for, the capacity from what
Ray reports running, the time of the last step from the route and the status (the later one).
A stale parent's older status moves nothing backwards: a capacity goes only one way per
direction (``max``/``min`` with what Ray runs), and a weight only from the observed one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.time import parse_time, stamp
from app.raycluster.spec import JSONObject
from app.rayservice.gateway import Observation
from app.rayservice.serve import (
    ApplyServeConfig,
    ServeTarget,
    ServeView,
    applied_capacity,
    canonical,
    deployed,
    running_config,
)
from app.rayservice.serve import ready as serve_ready
from app.rayservice.spec import RayService

FULL = 100
REVERTED = "Goal state reverted to original cluster, rolling back."
CHANGED = "Goal state changed mid-upgrade, rolling back to original cluster."
CAPACITY, TRAFFIC, MIGRATED = "targetCapacity", "trafficRoutedPercent", "lastTrafficMigratedTime"


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One sync of an upgrade between ``active`` and ``pending`` (both live)."""

    active: str
    pending: str
    rolling_back: str | None  # the RollbackInProgress message, None while going forward
    weight: int  # the pending cluster's weight in this answer
    migrated_at: datetime | None  # the last traffic step (this one, if it moved)
    capacity: Mapping[str, int]  # the target_capacity each cluster is asked to run at
    promote: bool  # the upgrade is complete
    rolled_back: bool  # the rollback is complete: the pending cluster goes
    next_step: datetime | None  # when traffic may move again


def _number(side: Any, key: str) -> int | None:
    value = side.get(key) if isinstance(side, Mapping) else None
    return value if type(value) is int else None


def side_of(previous: Mapping[str, Any], key: str, name: str | None) -> Mapping[str, Any]:
    """The previous status of one side, if it was about that cluster."""
    side = previous.get(key)
    if isinstance(side, Mapping) and name is not None and side.get("rayClusterName") == name:
        return side
    return {}


def progress(
    rs: RayService,
    clusters: tuple[str, str],
    before_active: Mapping[str, Any],
    before_pending: Mapping[str, Any],
    observation: Observation,
    views: Mapping[str, ServeView],
    hashes: tuple[str | None, str | None],
    goal: str,
    now: datetime,
) -> Upgrade:
    """``clusters``: (active, pending), both live; ``before_*``: the previous status of each
    side (empty unless about that cluster); ``hashes``: their goal hashes."""
    active, pending = clusters
    options = rs.spec.upgradeStrategy.clusterUpgradeOptions if rs.spec.upgradeStrategy else None
    step = (options.stepSizePercent if options else None) or FULL
    interval = (options.intervalSeconds if options else None) or 1
    surge = options.maxSurgePercent if options else FULL
    back = None if hashes[1] == goal else (REVERTED if hashes[0] == goal else CHANGED)
    if observation.route_seen:
        weight = observation.weight(pending)
    else:
        weight = _number(before_pending, TRAFFIC) or 0
    ray_a, ray_p = applied_capacity(views.get(active)), applied_capacity(views.get(pending))
    was_a = _number(before_active, CAPACITY)
    was_p = _number(before_pending, CAPACITY)
    was_a = FULL if was_a is None else was_a
    was_p = 0 if was_p is None else was_p
    if back is None:
        want_a = min(was_a, FULL if ray_a is None else ray_a)
        want_p = max(was_p, 0 if ray_p is None else ray_p)
    else:
        want_a = max(was_a, 0 if ray_a is None else ray_a)
        want_p = min(was_p, was_p if ray_p is None else ray_p)
    times = [
        observation.migrated_at,
        parse_time(before_pending.get(MIGRATED)),
        parse_time(before_active.get(MIGRATED)),
    ]
    last = max((t for t in times if t is not None), default=None)
    due = last is None or now >= last + timedelta(seconds=interval)
    moved = weight
    if back is None:
        room = min(want_p, 0 if ray_p is None else ray_p)
        if weight < room and due and serve_ready(rs.serve_config, views.get(pending)):
            moved = min(FULL, weight + step, room)
    else:
        room = min(want_a, 0 if ray_a is None else ray_a)
        if FULL - weight < room and due and _running(views.get(active)):
            moved = FULL - min(FULL, FULL - weight + step, room)
    applied = ray_a == want_a and ray_p == want_p
    if observation.ready and applied and moved == weight:
        if back is None and weight == want_p:
            if want_a + want_p > FULL:
                want_a = max(0, want_a - surge)
            else:
                want_p = min(FULL, want_p + surge)
        elif back is not None and FULL - weight == want_a:
            if want_a + want_p > FULL:
                want_p = max(0, want_p - surge)
            else:
                want_a = min(FULL, want_a + surge)
    migrated_at = now if moved != weight else last
    promote = back is None and weight == FULL and ray_a == 0 and want_a == 0
    rolled_back = back is not None and weight == 0 and ray_a == FULL and want_a == FULL
    next_step = None
    if migrated_at is not None and not (promote or rolled_back):
        next_step = migrated_at + timedelta(seconds=interval)
    return Upgrade(
        active,
        pending,
        back,
        moved,
        migrated_at,
        {active: want_a, pending: want_p},
        promote,
        rolled_back,
        next_step,
    )


def without_replicas(cluster: Mapping[str, Any]) -> JSONObject:
    """A new cluster of an upgrade: its worker groups without ``replicas``, so that the
    autoscaler starts them from ``minReplicas`` and grows them with the capacity (KubeRay)."""
    built: JSONObject = copy.deepcopy(dict(cluster))
    for group in built.get("spec", {}).get("workerGroupSpecs") or []:
        if isinstance(group, dict):
            group.pop("replicas", None)
    return built


def _running(view: ServeView | None) -> bool:
    """Every application the cluster runs is RUNNING (whatever config: the active cluster's
    is frozen during an upgrade)."""
    if view is None or not view.fresh or not view.applications:
        return False
    return all(app.status == "RUNNING" for _, app in view.applications)


def capacities(
    upgrade: Upgrade | None, active: str | None, pending: str | None
) -> list[tuple[str, int, bool]]:
    """Which cluster gets which target_capacity, and whether its config is frozen: both during
    an upgrade (the active one frozen until it is alone again, the pending one too while
    rolling back), else the one that serves (at full capacity)."""
    if upgrade is not None and (active, pending) == (upgrade.active, upgrade.pending):
        back = upgrade.rolling_back is not None
        return [
            (upgrade.active, upgrade.capacity[upgrade.active], True),
            (upgrade.pending, upgrade.capacity[upgrade.pending], back),
        ]
    if pending is not None and active is not None:
        return []  # named, not yet live: its first config goes with capacity 0 once it is
    chosen = pending if pending is not None else active
    return [] if chosen is None else [(chosen, FULL, False)]


def intents(
    rs: RayService,
    chosen: list[tuple[str, int, bool]],
    views: Mapping[str, ServeView],
    targets: Mapping[str, ServeTarget],
) -> list[ApplyServeConfig]:
    """A PUT for each (cluster, target capacity, frozen) whose Ray does not run that config at
    that capacity. A frozen cluster keeps the applications it runs (a bundled cluster and
    config change never reaches the live cluster; a rollback leaves the pending one as it is)."""
    config = rs.serve_config
    found = []
    for name, capacity, frozen in chosen:
        view = views.get(name)
        if config is None or name not in targets or view is None or not view.fresh:
            continue
        wanted: Mapping[str, Any] = config
        if frozen and view.applications and not deployed(config, view):
            wanted = running_config(view)
        if deployed(wanted, view) and applied_capacity(view) == capacity:
            continue
        found.append(ApplyServeConfig(name, targets[name].url, canonical(wanted), capacity))
    return found


def side_fields(
    before: Mapping[str, Any], capacity: int | None, traffic: int | None, now: datetime
) -> JSONObject:
    """A side's targetCapacity, trafficRoutedPercent and lastTrafficMigratedTime (stamped when
    its traffic changed, else kept)."""
    fields: JSONObject = {}
    if capacity is not None:
        fields[CAPACITY] = capacity
    if traffic is not None:
        fields[TRAFFIC] = traffic
        kept = before.get(MIGRATED)
        if _number(before, TRAFFIC) != traffic or not isinstance(kept, str):
            fields[MIGRATED] = stamp(now)
        else:
            fields[MIGRATED] = kept
    return fields
