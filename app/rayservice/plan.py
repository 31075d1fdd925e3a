"""Which RayClusters a RayService has, and what happens to each: the blue/green upgrade.

Every irreversible step is two-phase. A new cluster's name is written to
``pendingServiceStatus`` first and the cluster is created only by a sync whose parent already
holds that name (and only while every other live cluster is the active one or already
retiring). A cluster leaves only after it has been listed in ``rayClustersToDelete`` with a
deadline, by a sync whose parent holds that entry, once the deadline has passed, and never while
a Service metaray answered sends traffic to it. Traffic moves (the Services' selectors) only to
a cluster whose Serve applications all run the config asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core.observed import Child, ObservedObject
from app.core.time import later, parse_time, stamp
from app.raycluster.spec import JSONObject
from app.rayservice import incremental, names
from app.rayservice.children import with_appended_groups
from app.rayservice.gateway import NOTHING, Observation
from app.rayservice.incremental import Upgrade
from app.rayservice.serve import ApplyServeConfig, ServeTarget, ServeView, canonical, deployed
from app.rayservice.serve import ready as serve_ready
from app.rayservice.spec import RayService, Strategy

ACTIVE, PENDING = "activeServiceStatus", "pendingServiceStatus"
TO_DELETE = "rayClustersToDelete"
RAYCLUSTER = "RayCluster.ray.io/v1"
# Serve state is polled, not watched: look again this soon while something is in motion.
BUSY_RESYNC_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class World:
    """What the sync observed besides the parent: its clusters (terminating ones included),
    what metaray last asked of each child, Ray's word on each cluster, the dashboards it may
    call, and the clusters the observed Services send traffic to."""

    clusters: Mapping[str, ObservedObject]
    applied: Mapping[str, Child]
    views: Mapping[str, ServeView]
    targets: Mapping[str, ServeTarget]
    selected: frozenset[str]
    now: datetime
    # The observed Gateway API children (incremental upgrades only).
    gateway: Observation = NOTHING

    @property
    def live(self) -> dict[str, ObservedObject]:
        return {n: c for n, c in self.clusters.items() if c.metadata.deletionTimestamp is None}

    def hash_of(self, name: str | None) -> str | None:
        cluster = self.live.get(name) if name is not None else None
        return cluster.metadata.annotations.get(names.HASH) if cluster is not None else None

    def view(self, name: str | None) -> ServeView | None:
        return self.views.get(name) if name is not None else None


@dataclass
class Plan:
    active: str | None
    pending: str | None
    to_delete: dict[str, str]  # cluster -> deadline (RFC 3339), as written to status
    build: dict[str, JSONObject] = field(default_factory=dict)
    delete: set[str] = field(default_factory=set)
    promoted: bool = False
    # The active cluster a rayClusterConfig change waits on (upgradeStrategy None).
    waiting_on: str | None = None
    intents: list[ApplyServeConfig] = field(default_factory=list)
    target: str | None = None  # the cluster the Services select
    deadlines: list[datetime] = field(default_factory=list)
    upgrade: Upgrade | None = None  # an incremental upgrade under way
    # A parent older than the one that last wrote the route: traffic and capacity stay put.
    frozen: bool = False


def side(status: Mapping[str, Any], key: str) -> str | None:
    value = status.get(key)
    name = value.get("rayClusterName") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) and name else None


def listed(status: Mapping[str, Any]) -> dict[str, str]:
    entries = status.get(TO_DELETE)
    found: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        when = entry.get("deleteAfter") if isinstance(entry, Mapping) else None
        if isinstance(name, str) and isinstance(when, str) and parse_time(when) is not None:
            found[name] = when
    return found


def decide(
    rs: RayService, previous: Mapping[str, Any], world: World, build: Callable[[str], JSONObject]
) -> Plan:
    """``build(name)`` makes the RayCluster child for the goal under that name."""
    goal = names.goal_hash(rs.cluster_spec)
    live = world.live
    terminating = set(world.clusters) - set(live)
    active = side(previous, ACTIVE)
    active = active if active in live else None
    pending = side(previous, PENDING)
    # A status that names one cluster on both sides (written by someone else) upgrades nothing.
    pending = None if pending in terminating or pending == active else pending
    plan = Plan(active, pending, {})

    def for_goal(name: str) -> bool:
        if name in live:
            return world.hash_of(name) == goal
        return name in names.names_for(rs.name, rs.uid, goal)

    def appended(name: str | None) -> bool:
        if name not in live:
            return False
        annotations = live[name].metadata.annotations
        count = annotations.get(names.WORKER_GROUPS, "")
        groups = int(count) if count.isdigit() else -1
        return 0 <= groups < len(rs.cluster_spec.workerGroupSpecs) and names.goal_hash(
            rs.cluster_spec, groups
        ) == annotations.get(names.HASH)

    def fresh_pending() -> str:
        keep = {plan.active}
        adoptable = sorted(n for n in live if n not in keep and world.hash_of(n) == goal)
        if adoptable:
            return adoptable[0]
        avoid = terminating | {n for n in live if world.hash_of(n) != goal}
        avoid |= {plan.active} if plan.active else set()
        return names.new_cluster_name(rs.name, rs.uid, goal, avoid)

    if rs.strategy == Strategy.INCREMENTAL:
        _routed(world, plan)
        plan.frozen = rs.generation < world.gateway.generation
    else:
        _cut_over_seen(world, plan, goal)
    stepped = rs.strategy == Strategy.INCREMENTAL and plan.active is not None
    rolling_back = False
    if plan.frozen:
        rolling_back = plan.pending is not None  # nothing dropped, nothing moved
    elif stepped and plan.active is not None and plan.pending is not None and plan.pending in live:
        plan.upgrade = _step(rs, previous, world, (plan.active, plan.pending), goal)
        if plan.upgrade.promote:
            plan.active, plan.pending, plan.promoted = plan.pending, None, True
        elif plan.upgrade.rolled_back:
            plan.pending = None
        rolling_back = plan.pending is not None and plan.upgrade.rolling_back is not None
        if plan.upgrade.next_step is not None and plan.pending is not None:
            plan.deadlines.append(plan.upgrade.next_step)
    # Cut-over: the pending cluster runs every application of the config asked for.
    elif (
        not stepped
        and plan.pending in live
        and for_goal(plan.pending)
        and serve_ready(rs.serve_config, world.view(plan.pending))
    ):
        plan.active, plan.pending, plan.promoted = plan.pending, None, True
    in_place: str | None = None
    if rolling_back:
        pass  # traffic and capacity go back to the active cluster first
    elif plan.active is not None:
        if world.hash_of(plan.active) == goal:
            plan.pending = None  # nothing to upgrade, or A→B→A: the unready B is dropped
        elif appended(plan.active) and plan.pending is None:
            in_place = plan.active
        elif rs.strategy == Strategy.NONE:
            plan.pending, plan.waiting_on = None, plan.active
        elif plan.pending is not None and for_goal(plan.pending):
            pass
        elif appended(plan.pending):
            in_place = plan.pending
        else:
            plan.pending = fresh_pending()
    elif plan.pending is None or not for_goal(plan.pending):
        if appended(plan.pending):
            in_place = plan.pending
        else:
            plan.pending = fresh_pending()
    _retire(rs, previous, world, plan)
    _children(previous, world, plan, build, in_place)
    fresh = plan.pending is not None and plan.pending not in live and plan.pending in plan.build
    if rs.strategy == Strategy.INCREMENTAL and plan.active is not None and fresh:
        name = str(plan.pending)
        plan.build[name] = incremental.without_replicas(plan.build[name])
    _serve(rs, world, plan)
    return plan


def _routed(world: World, plan: Plan) -> None:
    """The observed route is newer than a stale parent's status: a live cluster it sends
    traffic to is never dropped. If the status names it neither active nor pending (an older
    status, replayed or written back), the route's backends are the active and pending ones."""
    order = [c for c in world.gateway.order if c in world.live]
    lost = [
        c for c in order if world.gateway.weight(c) > 0 and c not in (plan.active, plan.pending)
    ]
    if lost:
        plan.active = order[0]
        plan.pending = order[1] if len(order) > 1 else None


def _cut_over_seen(world: World, plan: Plan, goal: str) -> None:
    """The Services already select a live cluster the status does not call active: the status
    is older than the cut-over that moved them (a stale parent's answer written back over it).
    If that cluster is the status's pending one, or is built for the goal, it serves what is
    asked: it is the active one again, never replaced as an unready pending cluster nor listed
    for deletion. Services only ever move to the active cluster, so this cannot undo a cut-over
    whose observed Services lag behind the status: those select the cluster the status just
    retired, which is neither its pending one nor built for the goal."""
    chosen = [c for c in world.selected if c in world.live]
    if len(chosen) != 1 or chosen[0] == plan.active:
        return
    if chosen[0] == plan.pending or world.hash_of(chosen[0]) == goal:
        plan.active, plan.pending, plan.promoted = chosen[0], None, True


def _step(
    rs: RayService, previous: Mapping[str, Any], world: World, clusters: tuple[str, str], goal: str
) -> Upgrade:
    active, pending = clusters
    return incremental.progress(
        rs,
        clusters,
        incremental.side_of(previous, ACTIVE, active),
        incremental.side_of(previous, PENDING, pending),
        world.gateway,
        world.views,
        (world.hash_of(active), world.hash_of(pending)),
        goal,
        world.now,
    )


def _retire(rs: RayService, previous: Mapping[str, Any], world: World, plan: Plan) -> None:
    """List every other observed cluster for deletion; delete those listed in the observed
    status whose time has come (never one a Service sends traffic to)."""
    keep = {plan.active, plan.pending}
    before = listed(previous)
    deadline = later(world.now, rs.deletion_delay) or world.now
    for name in sorted(world.clusters):
        if name in keep:
            continue
        if name in before:
            plan.to_delete[name] = before[name]
        elif name in world.live:
            plan.to_delete[name] = stamp(deadline)
    for name, when in plan.to_delete.items():
        due = parse_time(when)
        if name not in world.live or due is None:
            continue
        if name in before and due <= world.now and name not in world.selected:
            plan.delete.add(name)
        elif due > world.now:
            plan.deadlines.append(due)


def _children(
    previous: Mapping[str, Any],
    world: World,
    plan: Plan,
    build: Callable[[str], JSONObject],
    in_place: str | None,
) -> None:
    live = world.live
    pending = plan.pending
    listed_before = set(listed(previous))
    others_settled = all(n in (plan.active, pending) or n in listed_before for n in live)
    if (
        pending is not None
        and pending not in live
        and pending == side(previous, PENDING)
        and others_settled
    ):
        plan.build[pending] = build(pending)
    if in_place is not None and in_place in world.applied:
        plan.build[in_place] = with_appended_groups(world.applied[in_place], build(in_place))


def _serve(rs: RayService, world: World, plan: Plan) -> None:
    """Where traffic goes, and which cluster gets the Serve config: the pending one during an
    upgrade, else the active one (a bundled cluster and config change never touches the live
    cluster)."""
    active = plan.active
    selected = sorted(world.selected)
    if active is not None and (
        active in world.selected or serve_ready(rs.serve_config, world.view(active))
    ):
        plan.target = active
    elif selected and selected[0] in world.live:
        plan.target = selected[0]
    config = rs.serve_config
    if config is None:
        return
    if rs.strategy == Strategy.INCREMENTAL:
        if plan.frozen:
            return
        sides = incremental.capacities(plan.upgrade, plan.active, plan.pending)
        plan.intents += incremental.intents(rs, sides, world.views, world.targets)
        return
    chosen = plan.pending if plan.pending is not None else active
    if chosen is None or chosen not in world.live or chosen not in world.targets:
        return
    view = world.view(chosen)
    if view is None or not view.fresh or deployed(config, view):
        return
    plan.intents.append(ApplyServeConfig(chosen, world.targets[chosen].url, canonical(config)))
