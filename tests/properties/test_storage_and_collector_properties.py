"""Properties of the embedded GCS store and the history collector over generated worlds."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.core.desired import Desired
from app.hooks.request import decode
from app.raycluster.sync import sync
from tests.properties.test_invariants import FAST, SLOW, World, answered_pods, seeded_loop, worlds

PVC = "PersistentVolumeClaim.v1"
COLLECTOR = {"image": "quay.io/kuberay/collector:nightly"}


@st.composite
def feature_worlds(draw: st.DrawFn) -> tuple[World, str]:
    base = draw(worlds())
    feature = draw(st.sampled_from(["rocksdb", "collector"]))
    parent = copy.deepcopy(base.parent)
    extra: dict[str, Any] = (
        {"gcsFaultToleranceOptions": {"backend": "rocksdb"}}
        if feature == "rocksdb"
        else {"historyServerOptions": {"collectorOptions": COLLECTOR}}
    )
    parent["spec"].update(extra)
    request = copy.deepcopy(base.request)
    request["parent"] = parent
    return World(parent, base.pods, request, base.hook_version), feature


def run(world: World) -> Desired:
    request = decode(world.body())
    return sync(request.parent, request.observed)


def without(world: World, field: str) -> World:
    parent = copy.deepcopy(world.parent)
    del parent["spec"][field]
    request = copy.deepcopy(world.request)
    request["parent"] = parent
    return World(parent, world.pods, request, world.hook_version)


FIELDS = {"rocksdb": "gcsFaultToleranceOptions", "collector": "historyServerOptions"}


@FAST
@given(feature_worlds())
def test_the_same_pods_are_kept_and_created(case: tuple[World, str]) -> None:
    world, feature = case
    desired, plain = run(world), run(without(world, FIELDS[feature]))
    assert answered_pods(desired).keys() == answered_pods(plain).keys()
    observed = {f.name for f in world.pods}
    for name, pod in answered_pods(desired).items():
        if name in observed:
            continue
        containers = [c["name"] for c in pod["spec"]["containers"]]
        if feature == "collector":
            assert "ray-history-collector" in containers, name
        elif pod["metadata"]["labels"]["ray.io/node-type"] == "head":
            volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
            assert "gcs-storage" in volumes
    claims = [c for c in desired.children if c["kind"] == "PersistentVolumeClaim"]
    assert len(claims) == (feature == "rocksdb")


@SLOW
@given(feature_worlds())
def test_converges_with_one_claim_made_once(case: tuple[World, str]) -> None:
    world, feature = case
    loop = seeded_loop(world)
    loop.converge()
    loop.run_pods()
    settled = loop.converge()
    assert settled.created == [] and settled.deleted == []
    claims = [key for key in loop.children if key[0] == PVC]
    assert len(claims) == (feature == "rocksdb")
    if claims:
        uid = loop.children[claims[0]]["metadata"]["uid"]
        loop.edit(lambda spec: spec.pop("gcsFaultToleranceOptions"))
        loop.converge()
        assert loop.children[claims[0]]["metadata"]["uid"] == uid  # kept, never recreated
