"""A RayService's whole life, generated: spec edits, a Ray Serve world acting between syncs
(slow, stuck, failing or lying clusters) and stale parents replayed (their answers written back
or not). Whatever happens: never two pending clusters, never a cluster deleted while a Service
sends it traffic, traffic never moved to a cluster whose applications do not all run, and a
fixpoint once the world is quiet."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rayservice.loop import (
    RAYCLUSTER,
    SERVE_CONFIG,
    SERVICE,
    ServeWorld,
    ServiceLoop,
    rayservice_object,
)

IMAGES = ("rayproject/ray:2.52.0", "rayproject/ray:2.53.0", "rayproject/ray:2.54.0")
CONFIGS = (SERVE_CONFIG, SERVE_CONFIG.replace("price: 3", "price: 7"))

actions = st.lists(
    st.one_of(
        st.tuples(st.just("image"), st.sampled_from(IMAGES)),
        st.tuples(st.just("config"), st.sampled_from(CONFIGS)),
        st.tuples(st.just("steps"), st.integers(1, 6)),
        st.tuples(st.just("stuck"), st.booleans()),
        st.tuples(st.just("failing"), st.booleans()),
        st.tuples(st.just("liar"), st.booleans()),
        st.tuples(st.just("sick"), st.booleans()),
        st.tuples(st.just("stale"), st.integers(1, 4), st.booleans()),
        st.tuples(st.just("upgrade"), st.sampled_from(IMAGES)),
        st.tuples(st.just("old_sick_replay"), st.integers(0, 30), st.booleans()),
    ),
    max_size=25,
)


def _selectors(loop: ServiceLoop) -> set[str]:
    return {
        obj["spec"]["selector"]["ray.io/cluster"]
        for (kind, _), obj in loop.children.items()
        if kind == SERVICE
    }


def _live(loop: ServiceLoop) -> set[str]:
    return set(loop.clusters())


def checked_step(
    loop: ServiceLoop, parent: dict[str, Any] | None = None, write: bool = True
) -> None:
    sent = parent if parent is not None else loop.parent
    listed = {e["name"] for e in (sent.get("status") or {}).get("rayClustersToDelete", [])}
    before_live, before_selected = _live(loop), _selectors(loop)
    step = loop.step(parent=parent, write_status=write)
    created = {c.split("/", 1)[1] for c in step.created if c.startswith("RayCluster/")}
    for name in created:
        others = before_live - {name}
        unsettled = others - before_selected - listed
        assert not unsettled, f"{name} created while {unsettled} were pending"
    after_selected = _selectors(loop)
    for name in step.deleted:
        if (RAYCLUSTER, name) in loop.children:  # a cluster (Services are deleted by suspend)
            assert name not in before_selected | after_selected, f"deleted {name} with traffic"
    for moved in after_selected - before_selected:
        assert loop.world.running(moved), f"traffic moved to {moved}, whose apps do not run"
        assert moved not in loop.world.liars


def _active_of(parent: dict[str, Any]) -> str | None:
    side = (parent.get("status") or {}).get("activeServiceStatus") or {}
    name = side.get("rayClusterName")
    return name if isinstance(name, str) else None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(actions, st.sampled_from([0, 3, 60]))
def test_a_rayservice_lifecycle_keeps_its_promises(plan: list[Any], delay: int) -> None:
    loop = ServiceLoop(rayservice_object(rayClusterDeletionDelaySeconds=delay), world=ServeWorld())
    history: list[dict[str, Any]] = []
    for _ in range(6):
        history.append(copy.deepcopy(loop.parent))
        checked_step(loop)
    for action in plan:
        kind = action[0]
        if kind == "image":
            spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
            spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = action[1]
            loop.edit(rayClusterConfig=spec)
        elif kind == "config":
            loop.edit(serveConfigV2=action[1])
        elif kind == "steps":
            for _ in range(action[1]):
                history.append(copy.deepcopy(loop.parent))
                checked_step(loop)
        elif kind == "sick":
            if action[1]:  # every cluster that takes no traffic now
                loop.world.sick |= _live(loop) - _selectors(loop)
            else:
                loop.world.sick.clear()
        elif kind in ("stuck", "failing", "liar"):
            pending = loop.pending
            chosen = {"stuck": loop.world.never_ready, "failing": loop.world.failing}.get(
                kind, loop.world.liars
            )
            if action[1] and pending:
                chosen.add(pending)
            else:
                chosen.clear()
        elif kind == "upgrade":  # a cluster change, synced until its cut-over (or 15 syncs)
            spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
            spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = action[1]
            loop.edit(rayClusterConfig=spec)
            before = loop.active
            for _ in range(15):
                history.append(copy.deepcopy(loop.parent))
                checked_step(loop)
                if loop.active != before:
                    break
        elif kind == "old_sick_replay":
            # A cluster that served before a cut-over falls sick, then a parent from when it
            # was the status's active cluster is replayed: traffic must not go back to it.
            current = loop.active
            older = [
                p
                for p in history
                if _active_of(p) not in (None, current) and _active_of(p) in _live(loop)
            ]
            if older:
                chosen = older[min(action[1], len(older) - 1)]
                loop.world.sick.add(_active_of(chosen) or "")
                checked_step(loop, parent=chosen, write=action[2])
        elif kind == "stale" and history:
            stale = history[-min(action[1], len(history))]
            checked_step(loop, parent=stale, write=action[2])
    # Quiet: the world heals and stays put; metaray settles and applies the latest config.
    loop.world.never_ready.clear()
    loop.world.failing.clear()
    loop.world.liars.clear()
    loop.world.sick.clear()
    for _ in range(delay + 40):
        checked_step(loop)
    answers = [loop.history[-1].answer]
    checked_step(loop)
    answers.append(loop.history[-1].answer)
    assert answers[0] == answers[1], "no fixpoint once quiet"
    last = loop.history[-1]
    assert last.created == [] and last.deleted == []
    assert last.desired.intents == ()
    assert loop.pending is None and loop.clusters() == [loop.active]
    assert _selectors(loop) == {loop.active}
    serve = loop.world.serves[loop.active or ""]
    wanted = loop.parent["spec"]["serveConfigV2"]
    assert ("price: 7" in wanted) == ("'price': 7" in str(serve.deployed))
