"""Incremental upgrades (NewClusterWithIncrementalUpgrade) through many syncs, with the Gateway
API overlay installed: first deploy, traffic and capacity steps to the promotion, rollback,
a Gateway that is not ready, a pending cluster whose applications do not run, stale replays."""

from __future__ import annotations

import copy
import itertools
from datetime import timedelta
from typing import Any

import pytest

from app.core.time import parse_time
from app.rayservice import sync as rayservice
from app.rayservice.gateway import cluster_serve_service
from app.rayservice.incremental import CHANGED, REVERTED
from tests.rayservice.gateway_world import GATEWAY, HTTPROUTE, GatewayLoop, incremental_object
from tests.rayservice.loop import RAYCLUSTER, SERVICE

ACTIVE, PENDING = "activeServiceStatus", "pendingServiceStatus"


def deployed(**options: Any) -> GatewayLoop:
    loop = GatewayLoop(incremental_object(**options))
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    return loop


def upgrading(**options: Any) -> tuple[GatewayLoop, str, str]:
    """Deployed, then a new image, synced until the pending cluster takes some traffic."""
    loop = deployed(**options)
    old = loop.active or ""
    loop.new_image()
    loop.until(lambda s: s.pending is not None and s.weights().get(s.pending, 0) >= 20, 200)
    return loop, old, loop.pending or ""


def condition(loop: GatewayLoop, kind: str) -> dict[str, Any] | None:
    return next((c for c in loop.status.get("conditions", []) if c["type"] == kind), None)


def test_first_deploy_runs_at_full_capacity_behind_a_gateway_and_a_route() -> None:
    loop = GatewayLoop(incremental_object())
    first = loop.step()
    assert first.created == ["Gateway/svc-gateway"]  # the cluster's name goes to status first
    assert loop.side(PENDING)["targetCapacity"] == 100
    loop.until(lambda s: s.active is not None)
    name = loop.active or ""
    assert loop.capacity(name) == 100  # the config went out with target_capacity 100
    gateway = loop.children[(GATEWAY, "svc-gateway")]
    assert gateway["spec"] == {
        "gatewayClassName": "istio",
        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
    }
    assert loop.weights() == {name: 100}
    route = loop.children[(HTTPROUTE, "svc-httproute")]
    [rule] = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"][0]["port"] == 8000
    assert (SERVICE, f"{name}-serve-svc") in loop.children
    assert (SERVICE, "svc-serve-svc") not in loop.children  # the route is the way in
    assert loop.selector("svc-head-svc") == name
    loop.run(2)
    side = loop.side(ACTIVE)
    assert (side["targetCapacity"], side["trafficRoutedPercent"]) == (100, 100)
    assert loop.status["numServeEndpoints"] == 1
    answers = [loop.step().answer for _ in range(2)]
    assert answers[0] == answers[1]  # quiet: a fixpoint


def test_an_upgrade_steps_traffic_and_capacity_to_the_promotion() -> None:
    loop = deployed(step=10, interval=5, surge=20)
    old = loop.active or ""
    loop.new_image()
    moves: list[tuple[Any, int]] = []
    last = 0
    for _ in range(300):
        step = loop.step()
        assert not [c for c in step.created if c.startswith("RayCluster/")] or loop.pending
        new = loop.pending
        weight = loop.weights().get(new or "", 0) if new else 100
        if new is not None:
            # Traffic only where Ray runs the capacity for it, only forward.
            assert weight <= (loop.capacity(new) or 0)
            assert weight >= last
            assert sum(loop.weights().values()) == 100
            if weight != last:
                moves.append((loop.now, weight))
            last = weight
        if loop.active != old:
            break
    else:
        raise AssertionError("never promoted")
    assert [w for _, w in moves] == list(range(10, 101, 10))
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(moves)]
    assert min(gaps) >= 5  # intervalSeconds between two traffic steps
    assert loop.capacity(old) == 0  # the old cluster ran down to nothing before the promotion
    assert loop.weights() == {loop.active: 100}
    cond = condition(loop, "UpgradeInProgress") or {}
    assert (cond["status"], cond["reason"]) == ("False", "NoPendingCluster")
    assert loop.side(ACTIVE)["targetCapacity"] == 100
    loop.until(lambda s: old not in s.clusters(), 80)  # gone after the deletion delay


def test_capacity_moves_by_max_surge_and_only_once_traffic_caught_up() -> None:
    loop, old, new = upgrading(step=10, interval=3, surge=20)
    seen: list[tuple[int | None, int | None, int]] = []
    for _ in range(40):
        loop.step()
        if loop.pending != new:
            break
        seen.append((loop.capacity(old), loop.capacity(new), loop.weights()[new]))
    for before, after in itertools.pairwise(seen):
        if before[:2] != after[:2]:
            changed = [b - a for a, b in zip(before[:2], after[:2], strict=True) if a != b]
            assert changed in ([-20], [20])  # one side by maxSurgePercent at a time
            assert before[2] == before[1]  # the traffic had caught up with the capacity


def test_no_capacity_step_while_the_gateway_is_not_ready() -> None:
    loop = deployed()
    loop.gateway_ready = False
    loop.new_image()
    loop.run(40)
    new = loop.pending or ""
    assert new and (RAYCLUSTER, new) in loop.children
    assert loop.capacity(new) == 0 and loop.capacity(loop.active) == 100
    assert loop.weights()[new] == 0  # no capacity there, so no traffic either
    loop.gateway_ready = True
    loop.until(lambda s: (s.capacity(new) or 0) > 0)


def test_no_traffic_moves_to_a_pending_cluster_whose_apps_do_not_run() -> None:
    loop = deployed(interval=1)
    loop.new_image()
    loop.until(lambda s: s.pending is not None and (RAYCLUSTER, s.pending) in s.children)
    new = loop.pending or ""
    loop.world.never_ready.add(new)
    loop.run(40)
    assert loop.weights()[new] == 0
    loop.world.never_ready.clear()
    loop.until(lambda s: s.weights().get(new, 0) > 0, 40)
    assert loop.world.running(new)


def test_a_revert_mid_upgrade_rolls_traffic_and_capacity_back_then_drops_the_pending() -> None:
    loop, old, new = upgrading(step=10, interval=2, surge=20)
    before = loop.weights()[new]
    loop.new_image("rayproject/ray:2.52.0")  # back to the active cluster's spec: A -> B -> A
    last = before
    for _ in range(120):
        step = loop.step()
        assert not [c for c in step.created if c.startswith("RayCluster/")], "a third cluster"
        if loop.pending is None:
            break
        rollback = condition(loop, "RollbackInProgress") or {}
        assert (rollback["status"], rollback["message"]) == ("True", REVERTED)
        weight = loop.weights()[new]
        assert weight <= last  # only ever back
        last = weight
    else:
        raise AssertionError("the rollback never completed")
    assert loop.active == old and loop.capacity(old) == 100
    assert loop.weights() == {old: 100}
    assert condition(loop, "RollbackInProgress") is None
    upgrade = condition(loop, "UpgradeInProgress") or {}
    assert (upgrade["status"], upgrade["reason"]) == ("False", "NoPendingCluster")
    loop.until(lambda s: new not in s.clusters(), 80)


def test_a_third_goal_mid_upgrade_rolls_back_first_then_upgrades_afresh() -> None:
    loop, _old, new = upgrading(step=20, interval=1, surge=40)
    loop.new_image("rayproject/ray:2.54.0")
    loop.step()
    rollback = condition(loop, "RollbackInProgress") or {}
    assert rollback["message"] == CHANGED
    loop.until(lambda s: s.pending not in (None, new), 120)
    third = loop.pending
    assert loop.weights().get(new, 0) == 0  # no traffic left on the abandoned cluster
    loop.until(lambda s: s.active == third, 300)


def test_a_stale_parent_moves_nothing_backwards_and_creates_nothing() -> None:
    loop, old, new = upgrading(step=10, interval=1, surge=20)
    stale = copy.deepcopy(loop.parent)
    loop.run(12)
    weight, capacities = loop.weights()[new], (loop.capacity(old), loop.capacity(new))
    assert weight > stale["status"][PENDING]["trafficRoutedPercent"]
    for write in (False, True):
        step = loop.step(parent=stale, write_status=write)
        assert step.created == [] and step.deleted == []
        assert loop.weights()[new] >= weight
        assert (loop.capacity(new) or 0) >= (capacities[1] or 0)
        assert (loop.capacity(old) or 0) <= (capacities[0] or 0)
    loop.until(lambda s: s.active == new, 300)


def test_a_restart_of_metaray_mid_upgrade_changes_nothing() -> None:
    """Nothing is remembered: the same request, answered twice, gives the same answer."""
    loop, _, _ = upgrading()
    request = loop.request()
    first = loop.decide(request)[1]
    assert loop.decide(request)[1] == first


def test_the_time_of_the_last_step_is_kept_on_the_route() -> None:
    loop, _, new = upgrading(step=10, interval=30)
    route = loop.children[(HTTPROUTE, "svc-httproute")]
    moved = parse_time(route["metadata"]["annotations"]["metaray.io/traffic-migrated-at"])
    assert moved is not None and moved <= loop.now
    assert parse_time(loop.side(PENDING)["lastTrafficMigratedTime"]) == moved
    weight = loop.weights()[new]
    loop.now = moved + timedelta(seconds=27)  # just before the interval ends
    loop.step()
    assert loop.weights()[new] == weight
    loop.until(lambda s: s.weights()[new] > weight, 5)


def test_without_the_overlay_the_strategy_is_refused_with_how_to_install_it() -> None:
    loop = deployed()
    loop.options = rayservice.Options()  # METARAY_GATEWAY_API unset
    before = sorted(loop.children)
    step = loop.step()
    assert step.deleted == [] and sorted(loop.children) == before
    ready = condition(loop, "Ready") or {}
    assert ready["reason"] == "ValidationFailed"
    assert "config/gateway-api" in ready["message"]
    assert "METARAY_GATEWAY_API=on" in ready["message"]


@pytest.mark.parametrize("length", [53, 54, 70])
def test_a_cluster_serve_service_name_fits_a_service(length: int) -> None:
    cluster = "c" * length
    name = cluster_serve_service(cluster)
    assert len(name) <= 63 and name.endswith("-serve-svc")
    assert name != cluster_serve_service("c" * (length + 1))
    if length + len("-serve-svc") <= 63:
        assert name == f"{cluster}-serve-svc"


def test_a_parent_from_before_the_upgrade_replayed_moves_no_traffic_back() -> None:
    """Its spec is the old one and its status knows no pending cluster: the route, written by a
    newer generation, says otherwise, and wins."""
    loop = deployed(step=10, interval=1, surge=20)
    before = copy.deepcopy(loop.parent)
    loop.new_image()
    loop.until(lambda s: s.pending is not None and s.weights().get(s.pending, 0) >= 30, 200)
    new = loop.pending or ""
    for write in (False, True):
        weight, puts = loop.weights()[new], len(loop.world.puts)
        step = loop.step(parent=before, write_status=write)
        assert step.created == [] and step.deleted == [] and step.desired.intents == ()
        assert loop.weights()[new] == weight and len(loop.world.puts) == puts
    loop.until(lambda s: s.active == new, 300)  # the status written back is recovered from


def test_the_customize_hook_asks_for_each_cluster_serve_service_s_endpoint_slices() -> None:
    rules = rayservice.customize(incremental_object())["relatedResources"]
    assert {
        "apiVersion": "discovery.k8s.io/v1",
        "resource": "endpointslices",
        "labelSelector": {"matchLabels": {"ray.io/serve": "svc-serve"}},
        "namespace": "default",
    } in rules


def test_each_capacity_step_and_route_change_is_an_event() -> None:
    loop, _, new = upgrading(step=10, interval=1, surge=20)
    reasons = {e.reason for s in loop.history for e in (s.desired.events if s.desired else ())}
    assert {"CreatedGateway", "CreatedHTTPRoute", "UpdatedHTTPRoute"} <= reasons
    assert "UpdatedServeTargetCapacity" in reasons
    messages = [e.message for s in loop.history for e in s.desired.events]
    assert f"Updated the target_capacity of the RayCluster default/{new} to 20" in messages


def test_the_new_cluster_of_an_upgrade_leaves_its_worker_replicas_to_the_autoscaler() -> None:
    loop = deployed()
    old = loop.active or ""
    groups = loop.children[(RAYCLUSTER, old)]["spec"]["workerGroupSpecs"]
    assert all("replicas" in g for g in groups)  # the first cluster: as asked
    loop.new_image()
    loop.until(lambda s: s.pending is not None and (RAYCLUSTER, s.pending) in s.children)
    groups = loop.children[(RAYCLUSTER, loop.pending or "")]["spec"]["workerGroupSpecs"]
    assert groups and all("replicas" not in g for g in groups)
