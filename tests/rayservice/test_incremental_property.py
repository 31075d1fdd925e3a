"""An incrementally upgraded RayService's whole life, generated: spec edits (new images, reverts,
config changes), a Ray Serve world and a Gateway controller acting between syncs (slow, stuck,
failing or lying clusters; a Gateway not accepted) and stale parents replayed. Whatever happens:
never two pending clusters, never a cluster deleted while the route or the head Service sends
it traffic, traffic never moved to a cluster whose applications do not all run, the route's
weights always sum to 100, and once the world is quiet a fixpoint whose status says what the
children say."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rayservice.gateway_world import GatewayLoop, incremental_object
from tests.rayservice.loop import RAYCLUSTER, SERVE_CONFIG

IMAGES = ("rayproject/ray:2.52.0", "rayproject/ray:2.53.0", "rayproject/ray:2.54.0")
CONFIGS = (SERVE_CONFIG, SERVE_CONFIG.replace("price: 3", "price: 7"))

actions = st.lists(
    st.one_of(
        st.tuples(st.just("image"), st.sampled_from(IMAGES)),
        st.tuples(st.just("config"), st.sampled_from(CONFIGS)),
        st.tuples(st.just("steps"), st.integers(1, 12)),
        st.tuples(st.just("stuck"), st.booleans()),
        st.tuples(st.just("failing"), st.booleans()),
        st.tuples(st.just("liar"), st.booleans()),
        st.tuples(st.just("gateway"), st.booleans()),
        st.tuples(st.just("stale"), st.integers(1, 8), st.booleans()),
    ),
    max_size=20,
)
# (stepSizePercent, intervalSeconds, maxSurgePercent): stepSize <= maxSurge, as validated.
shapes = st.sampled_from([(25, 1, 50), (50, 2, 50), (20, 1, 100), (100, 1, 100)])


def _traffic(loop: GatewayLoop) -> dict[str, int]:
    """Where traffic goes: the route's weights, and the head Service's cluster."""
    found = {c: w for c, w in loop.weights().items() if w > 0}
    head = loop.selector("svc-head-svc")
    if head is not None:
        found.setdefault(head, 0)
    return found


def checked_step(
    loop: GatewayLoop, parent: dict[str, Any] | None = None, write: bool = True
) -> None:
    sent = parent if parent is not None else loop.parent
    listed = {e["name"] for e in (sent.get("status") or {}).get("rayClustersToDelete", [])}
    before_live, before = set(loop.clusters()), _traffic(loop)
    weights_before = loop.weights()
    step = loop.step(parent=parent, write_status=write)
    for created in (c.split("/", 1)[1] for c in step.created if c.startswith("RayCluster/")):
        unsettled = before_live - {created} - set(before) - listed
        assert not unsettled, f"{created} created while {unsettled} were pending"
    after = _traffic(loop)
    for name in step.deleted:
        if (RAYCLUSTER, name) in loop.children:
            assert name not in set(before) | set(after), f"deleted {name} with traffic"
    weights = loop.weights()
    if weights:
        assert sum(weights.values()) == 100, weights
    for name, weight in weights.items():
        if weight > weights_before.get(name, 0) and weights_before:
            assert loop.world.running(name), f"traffic moved to {name}, whose apps do not run"
            assert name not in loop.world.liars
    status = loop.status
    upgrade = next(c for c in status.get("conditions", []) if c["type"] == "UpgradeInProgress")
    if loop.active is not None and loop.pending is not None:
        assert upgrade["status"] == "True", upgrade
    elif loop.active is not None:
        assert upgrade["status"] == "False", upgrade


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(actions, shapes, st.sampled_from([0, 5]))
def test_an_incremental_rayservice_keeps_its_promises(
    plan: list[Any], shape: tuple[int, int, int], delay: int
) -> None:
    step, interval, surge = shape
    rs = incremental_object(step, interval, surge, rayClusterDeletionDelaySeconds=delay)
    loop = GatewayLoop(rs)
    history: list[dict[str, Any]] = []
    for _ in range(6):
        history.append(copy.deepcopy(loop.parent))
        checked_step(loop)
    for action in plan:
        kind = action[0]
        if kind == "image":
            loop.new_image(action[1])
        elif kind == "config":
            loop.edit(serveConfigV2=action[1])
        elif kind == "steps":
            for _ in range(action[1]):
                history.append(copy.deepcopy(loop.parent))
                checked_step(loop)
        elif kind == "gateway":
            loop.gateway_ready = action[1]
        elif kind in ("stuck", "failing", "liar"):
            chosen = {"stuck": loop.world.never_ready, "failing": loop.world.failing}.get(
                kind, loop.world.liars
            )
            if action[1] and loop.pending:
                chosen.add(loop.pending)
            else:
                chosen.clear()
        elif kind == "stale" and history:
            stale = history[-min(action[1], len(history))]
            checked_step(loop, parent=stale, write=action[2])
    # Quiet: the world heals and stays put; metaray settles.
    loop.world.never_ready.clear()
    loop.world.failing.clear()
    loop.world.liars.clear()
    loop.gateway_ready = True
    for _ in range(delay + 120):
        checked_step(loop)
    answers = [loop.history[-1].answer]
    checked_step(loop)
    answers.append(loop.history[-1].answer)
    assert answers[0] == answers[1], "no fixpoint once quiet"
    last = loop.history[-1]
    assert last.created == [] and last.deleted == []
    assert last.desired.intents == ()
    # The status says what the children say.
    active = loop.active
    assert loop.pending is None and loop.clusters() == [active]
    assert loop.weights() == {active: 100}
    assert loop.selector("svc-head-svc") == active
    assert loop.capacity(active) == 100
    side = loop.side("activeServiceStatus")
    assert (side["targetCapacity"], side["trafficRoutedPercent"]) == (100, 100)
    assert loop.side("pendingServiceStatus") == {}
    kinds = {c["type"]: c for c in loop.status["conditions"]}
    assert (kinds["UpgradeInProgress"]["status"], kinds["UpgradeInProgress"]["reason"]) == (
        "False",
        "NoPendingCluster",
    )
    assert "RollbackInProgress" not in kinds
    assert loop.status["numServeEndpoints"] == 1
    assert kinds["Ready"]["status"] == "True"
    serve = loop.world.serves[active or ""]
    wanted = loop.parent["spec"]["serveConfigV2"]
    assert ("price: 7" in wanted) == ("'price': 7" in str(serve.deployed))
    image = loop.parent["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    cluster = loop.children[(RAYCLUSTER, active or "")]["spec"]["headGroupSpec"]["template"]
    assert cluster["spec"]["containers"][0]["image"] == image["containers"][0]["image"]
