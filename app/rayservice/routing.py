"""What an incremental RayService answers besides its clusters: the head Service (the active
cluster's, as for blue/green), each cluster's own serve Service, the Gateway and the HTTPRoute
with this sync's weights; and the status fields of the upgrade (targetCapacity,
trafficRoutedPercent, lastTrafficMigratedTime per side, RollbackInProgress).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.observed import Child, Observed
from app.raycluster.cluster import Options as ClusterOptions
from app.raycluster.spec import JSONObject
from app.raycluster.status import condition
from app.rayservice import children, gateway, names, observe
from app.rayservice.incremental import FULL, side_fields, side_of
from app.rayservice.plan import ACTIVE, PENDING, Plan, World
from app.rayservice.spec import RayService
from app.rayservice.status import Condition

SERVICE = "Service.v1"
ROLLBACK_REASON = "DesiredClusterSpecChanged"


def weights(plan: Plan, world: World) -> dict[str, int]:
    """Each cluster's weight in this answer's route: the active one only, but during an
    upgrade (none before an active cluster exists); as observed for a stale parent."""
    upgrade = plan.upgrade
    if plan.frozen and world.gateway.route_seen:
        return dict(world.gateway.weights)
    if plan.active is None:
        return {}
    if upgrade is not None and (plan.active, plan.pending) == (upgrade.active, upgrade.pending):
        return {upgrade.active: FULL - upgrade.weight, upgrade.pending: upgrade.weight}
    return {plan.active: FULL}


def answer(
    rs: RayService, observed: Observed, world: World, plan: Plan, options: ClusterOptions
) -> list[Child]:
    options_ = rs.spec.upgradeStrategy.clusterUpgradeOptions if rs.spec.upgradeStrategy else None
    class_name = (options_.gatewayClassName if options_ else None) or ""
    built: list[Child] = [gateway.gateway(rs.name, rs.namespace, class_name)]
    head = names.head_service(rs.name)
    if plan.target is not None:
        spec = children.cluster_spec_of(world.applied.get(plan.target), rs.cluster_spec)
        built.append(children.head_service(rs.name, rs.namespace, plan.target, spec, options))
    elif (SERVICE, head) in observed.applied:
        built.append(observed.applied[(SERVICE, head)])
    split = weights(plan, world)
    # A cluster keeps its serve Service while it is asked for or the observed route still
    # sends it traffic.
    served = {plan.active, plan.pending} | {c for c, w in world.gateway.weights.items() if w}
    for name in sorted(n for n in served if n is not None and n in world.live):
        spec = children.cluster_spec_of(world.applied.get(name), rs.cluster_spec)
        built.append(gateway.cluster_service(rs.name, rs.namespace, name, spec))
    route_key = (gateway.HTTPROUTE, gateway.route_name(rs.name))
    if plan.frozen and route_key in observed.applied:
        built.append(observed.applied[route_key])
    elif split:
        backends = [
            gateway.Backend(
                name,
                gateway.serve_port(
                    children.cluster_spec_of(world.applied.get(name), rs.cluster_spec)
                ),
                weight,
            )
            for name, weight in split.items()
        ]
        upgrade = plan.upgrade
        moved = upgrade.migrated_at if upgrade is not None else world.gateway.migrated_at
        built.append(gateway.route(rs.name, rs.namespace, backends, moved, rs.generation))
    elif route_key in observed.applied:
        built.append(observed.applied[route_key])  # no active cluster: left as it is
    return built


def endpoints(related: Observed, plan: Plan, world: World) -> int:
    """Ready endpoints of the serve Services this answer's route sends traffic to (KubeRay
    counts the pending cluster's from its creation: Ready before any traffic reaches it)."""
    return sum(
        observe.endpoints(related, gateway.cluster_serve_service(name))
        for name, weight in weights(plan, world).items()
        if weight > 0
    )


def status_sides(
    previous: Mapping[str, Any],
    plan: Plan,
    world: World,
    sides: tuple[JSONObject, JSONObject],
    now: datetime,
) -> None:
    """Add the upgrade's fields to the active and pending sides of the status."""
    upgrade = plan.upgrade
    split = weights(plan, world)
    ongoing = upgrade is not None and plan.pending == upgrade.pending
    for name, side in zip((plan.active, plan.pending), sides, strict=True):
        if name is None:
            continue
        before = side_of(previous, ACTIVE, name) or side_of(previous, PENDING, name)
        kept = _number(before.get("targetCapacity"))
        if ongoing and upgrade is not None:
            capacity = upgrade.capacity[name]
        elif plan.frozen and kept is not None:
            capacity = kept
        elif name == plan.pending and plan.active is not None:
            capacity = 0  # named during an upgrade: it starts at nothing
        else:
            capacity = FULL
        side.update(side_fields(before, capacity, split.get(name), now))


def _number(value: Any) -> int | None:
    return value if type(value) is int else None


def rollback(previous: Mapping[str, Any], plan: Plan, clock: str) -> list[JSONObject]:
    upgrade = plan.upgrade
    if upgrade is None or upgrade.rolling_back is None or plan.pending is None:
        return []
    message = upgrade.rolling_back
    return [condition(Condition.ROLLBACK, "True", ROLLBACK_REASON, message, previous, clock)]
