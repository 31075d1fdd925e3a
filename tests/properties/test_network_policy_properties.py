"""Properties of ``networkPolicy`` over the generated worlds of ``test_invariants``."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.core.desired import Desired
from app.hooks.request import decode
from app.raycluster.sync import sync
from tests.properties.test_invariants import FAST, SLOW, World, answered_pods, seeded_loop, worlds

MODES = st.sampled_from(["DenyAll", "DenyAllIngress", "DenyAllEgress"])
NETWORK_POLICY = "NetworkPolicy.networking.k8s.io/v1"


@st.composite
def policy_worlds(draw: st.DrawFn) -> World:
    base = draw(worlds())
    parent = copy.deepcopy(base.parent)
    mode = draw(MODES)
    options: dict[str, Any] = {"mode": mode}
    rule = {"ports": [{"port": 53, "protocol": "UDP"}]}
    if mode != "DenyAllIngress" and draw(st.booleans()):
        options["worker"] = {"egressRules": [rule]}
    groups = [g["groupName"] for g in parent["spec"]["workerGroupSpecs"]]
    chosen = draw(st.lists(st.sampled_from(groups), unique=True, max_size=len(groups)))
    options["workerGroups"] = [{"groupName": name} for name in chosen]
    parent["spec"]["networkPolicy"] = options
    request = copy.deepcopy(base.request)
    request["parent"] = parent
    return World(parent, base.pods, request, base.hook_version)


def run(world: World) -> Desired:
    request = decode(world.body())
    return sync(request.parent, request.observed)


def without_policy(world: World) -> World:
    parent = copy.deepcopy(world.parent)
    del parent["spec"]["networkPolicy"]
    request = copy.deepcopy(world.request)
    request["parent"] = parent
    return World(parent, world.pods, request, world.hook_version)


@FAST
@given(policy_worlds())
def test_one_policy_per_group_and_the_same_pods_as_without(world: World) -> None:
    desired = run(world)
    names = sorted(c["metadata"]["name"] for c in desired.children if c["kind"] == "NetworkPolicy")
    expected = [f"{world.name}-head"] + [f"{world.name}-workers-{g}" for g in world.groups]
    assert names == sorted(expected)
    assert answered_pods(desired).keys() == answered_pods(run(without_policy(world))).keys()


@SLOW
@given(policy_worlds())
def test_converges_and_removing_the_field_removes_only_policies(world: World) -> None:
    loop = seeded_loop(world)
    loop.converge()
    before = set(loop.children)
    loop.edit(lambda spec: spec.pop("networkPolicy"))
    loop.converge()
    gone = before - set(loop.children)
    assert {kind for kind, _ in gone} <= {NETWORK_POLICY}
    assert not [k for k in loop.children if k[0] == NETWORK_POLICY]
